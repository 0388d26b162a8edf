"""kill -9 of a real `evalcore run` process mid-inference, then a resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import yaml
from doubles.models import read_calls

from evalcore.config import DatasetSpec, ModelSpec, parse_config
from evalcore.frames import FrameSettings
from evalcore.predictions.log import iter_records, read_predictions
from evalcore.stages import cell_log_dir, infer_inline, prepare_frames
from evalcore.workspace import Workspace

TESTS_DIR = Path(__file__).resolve().parent.parent
# The repo root first: tests/evalcore (no __init__) must not shadow the evalcore package.
PYTHONPATH = os.pathsep.join([str(TESTS_DIR.parent), str(TESTS_DIR)])


def run_cli(config: Path, cwd: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "PYTHONPATH": PYTHONPATH,
        "PREFECT_HOME": str(cwd / "prefect-home"),
    }
    env.pop("PREFECT_API_URL", None)
    return subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "run", str(config)],
        cwd=cwd,
        env=env,
        start_new_session=True,  # its own process group: kill -9 takes everything it started
        stdout=subprocess.DEVNULL,
        stderr=open(cwd / "run.log", "ab"),  # noqa: SIM115
    )


def test_kill_9_mid_inference_then_resume(small_bench, tmp_path):
    calls = tmp_path / "calls.txt"
    raw = {
        "datasets": [{"tsv": str(small_bench)}],
        "models": [
            {
                "name": "ref",
                "kind": "doubles.models:counting",
                "params": {"calls_file": str(calls), "delay_s": 0.25},
                "batch_size": 2,
            }
        ],
        "work_dir": str(tmp_path / "work"),
        "output_dir": str(tmp_path / "outputs"),
    }
    config = tmp_path / "eval.yaml"
    config.write_text(yaml.safe_dump(raw))
    parsed = parse_config(raw)
    ws = Workspace(parsed.work_dir, parsed.output_dir)
    log_dir = cell_log_dir(ws, parsed.models[0], parsed.datasets[0], parsed.frames, 0, 0)

    proc = run_cli(config, tmp_path)
    deadline = time.monotonic() + 180
    while len(read_predictions(log_dir)) < 12:
        assert proc.poll() is None, (tmp_path / "run.log").read_text()[-3000:]
        assert time.monotonic() < deadline, "inference never started"
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before_kill = set(read_predictions(log_dir))
    calls_before_kill = len(read_calls(calls))
    assert 12 <= len(done_before_kill) < 48

    proc = run_cli(config, tmp_path)
    assert proc.wait(timeout=300) == 0, (tmp_path / "run.log").read_text()[-3000:]

    recomputed = read_calls(calls)[calls_before_kill:]
    assert not done_before_kill & set(recomputed), "finished samples were computed again"
    oks = Counter(r.sample_id for p in log_dir.glob("*.jsonl") for r in iter_records(p) if r.ok)
    assert sorted(oks) == sorted(str(i) for i in range(48))
    assert max(oks.values()) == 1, "a sample was answered twice"

    # The same predictions as an uninterrupted run (no Prefect, fresh work dir).
    ws = Workspace(tmp_path / "fresh", tmp_path / "fresh-out")
    dataset, frames = DatasetSpec(tsv=small_bench), FrameSettings()
    reference = ModelSpec(name="ref", kind="reference")
    prepare_frames(dataset, frames, ws)
    infer_inline(reference, dataset, 0, 0, frames, ws)
    expected = read_predictions(cell_log_dir(ws, reference, dataset, frames, 0, 0))
    resumed = read_predictions(log_dir)
    assert {k: r.prediction for k, r in resumed.items()} == {
        k: r.prediction for k, r in expected.items()
    }
    sheet = pd.read_excel(tmp_path / "outputs/ref_Tiny.xlsx")
    assert len(sheet) == 48 and sheet["index"].is_unique
    board = json.loads((tmp_path / "outputs/leaderboard.json").read_text())
    assert board[0]["n"] == 48 and board[0]["failed"] == 0
