"""bench/gpu.py --tiny: the GPU benchmark's code end to end on the CPU, tiny shapes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_gpu_benchmark_runs_ours_and_the_peers_on_the_same_work(tmp_path):
    figures = tmp_path / "gpu.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "bench/gpu.py", "--tiny", "--dir", str(tmp_path / "w"), "--json",
         str(figures)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads(figures.read_text())
    assert set(results) == {
        f"{arch} {mode}"
        for arch in ("qwen2_5_vl", "llava_onevision")
        for mode in ("nframe64", "fps2")
    }
    for runs in results.values():
        assert set(runs) == {"ours-cold", "ours-warm", "peers"}
        for run in runs.values():
            assert run["answered"] == run["samples"] == 4
            assert run["first_answer_s"] > 0 and 0 < run["host_busy"] <= 1
            assert run["gpu_busy"] is None and run["peak_bytes"] is None  # no GPU here
        frames = {run["frames_per_sample"] for run in runs.values()}
        assert frames == {8}, "ours and the peers must see the same frames"
    assert "| ours-warm |" in done.stdout and "goals qwen2_5_vl nframe64:" in done.stdout


def test_gpu_busy_is_the_mean_of_the_drivers_samples_inside_the_window(monkeypatch):
    """GpuBusy against a stand-in for NVML: samples come in batches since the last
    timestamp seen, 'not found' when none is new; the mean counts the window only."""
    import importlib.util
    import threading

    spec = importlib.util.spec_from_file_location("gpu_bench_script", ROOT / "bench" / "gpu.py")
    gpu = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "gpu_bench_script", gpu)  # dataclasses look it up
    spec.loader.exec_module(gpu)

    class NotFound(Exception):
        pass

    class Sample:
        def __init__(self, t: float, value: int) -> None:
            self.timeStamp = int(t * 1e6)
            self.sampleValue = type("V", (), {"uiVal": value})()

    batches = [[Sample(10.0, 0), Sample(11.0, 100)], [], [Sample(12.0, 50), Sample(13.0, 0)]]
    drained = threading.Event()

    class FakeNvml:
        NVMLError = Exception
        NVMLError_NotFound = NotFound
        NVML_GPU_UTILIZATION_SAMPLES = 1

        def nvmlDeviceGetSamples(self, handle, kind, last):
            if not batches:
                drained.set()
                raise NotFound
            batch = [s for s in batches.pop(0) if s.timeStamp > last]
            if not batch:
                raise NotFound
            return 0, batch

    busy = gpu.GpuBusy(0, nvml=FakeNvml(), handle="gpu0")
    with busy:
        assert drained.wait(10)
    assert busy.mean(10.5, 12.5) == 0.75  # 100 and 50
    assert busy.mean(9.0, 14.0) == 0.375
    assert busy.mean(20.0, 21.0) is None
