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
