"""Real `evalcore run` processes: kill -9 mid-inference then a resume, and two runs on
one work dir at once."""

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
from doubles.models import COUNTING, read_calls

from evalcore.cell import Cell, extract_dataset_frames, find_cell
from evalcore.config import DatasetSpec, ModelSpec, parse_config
from evalcore.frames import FrameSettings
from evalcore.inference import infer_inline
from evalcore.predictions import iter_records, merge_records, read_records
from evalcore.workspace import Workspace
from tests.doubles.prefect_home import prefect_home
from tests.doubles.records import cell_records

TESTS_DIR = Path(__file__).resolve().parent.parent
# The repo root first: tests/evalcore (no __init__) must not shadow the evalcore package.
PYTHONPATH = os.pathsep.join([str(TESTS_DIR.parent), str(TESTS_DIR)])


def run_cli(config: Path, cwd: Path, home: str = "prefect-home") -> subprocess.Popen:
    env = {
        **os.environ,
        "PYTHONPATH": PYTHONPATH,
        "PREFECT_HOME": str(prefect_home(cwd / home)),
    }
    env.pop("PREFECT_API_URL", None)
    return subprocess.Popen(
        [sys.executable, "-m", "flows.cli.main", "run", str(config)],
        cwd=cwd,
        env=env,
        start_new_session=True,  # its own process group: kill -9 takes everything it started
        stdout=subprocess.DEVNULL,
        stderr=open(cwd / f"run-{home}.log", "ab"),  # noqa: SIM115
    )


def counting_config(small_bench, tmp_path: Path, delay_s: float) -> tuple[Path, dict]:
    raw = {
        "datasets": [{"tsv": str(small_bench)}],
        "models": [
            {
                "name": "ref",
                "kind": COUNTING,
                "params": {"calls_file": str(tmp_path / "calls.txt"), "delay_s": delay_s},
                "batch_size": 2,
            }
        ],
        "work_dir": str(tmp_path / "work"),
        "output_dir": str(tmp_path / "outputs"),
    }
    config = tmp_path / "eval.yaml"
    config.write_text(yaml.safe_dump(raw))
    return config, raw


def leftovers(mark: bytes) -> list[int]:
    """Processes (of this test's runs) whose environment carries `mark`."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            try:
                if mark in (proc / "environ").read_bytes().split(b"\0"):
                    pids.append(int(proc.name))
            except OSError:
                continue
    return pids


def answered(log_dir: Path) -> dict:
    """Every sample with a record in the logs (answer keys not checked: one config)."""
    return merge_records(read_records(log_dir))


def test_kill_9_mid_inference_then_resume(small_bench, tmp_path):
    calls = tmp_path / "calls.txt"
    config, raw = counting_config(small_bench, tmp_path, delay_s=0.25)
    parsed = parse_config(raw)
    ws = Workspace(parsed.work_dir, parsed.output_dir)
    cell = find_cell(parsed)
    log_dir = cell.log_dir(ws)

    proc = run_cli(config, tmp_path)
    deadline = time.monotonic() + 180
    while len(answered(log_dir)) < 12:
        assert proc.poll() is None, (tmp_path / "run-prefect-home.log").read_text()[-3000:]
        assert time.monotonic() < deadline, "inference never started"
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)  # the CLI alone, as `kill -9 <pid>` does
    proc.wait()
    home = f"PREFECT_HOME={tmp_path / 'prefect-home'}".encode()
    deadline = time.monotonic() + 15
    while leftovers(home) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not leftovers(home), "the run left processes behind (its Prefect server?)"
    done_before_kill = set(answered(log_dir))
    calls_before_kill = len(read_calls(calls))
    assert 12 <= len(done_before_kill) < 48

    proc = run_cli(config, tmp_path)
    assert proc.wait(timeout=300) == 0, (tmp_path / "run-prefect-home.log").read_text()[-3000:]

    recomputed = read_calls(calls)[calls_before_kill:]
    assert not done_before_kill & set(recomputed), "finished samples were computed again"
    oks = Counter(r.sample_id for p in log_dir.glob("*.jsonl") for r in iter_records(p) if r.ok)
    assert sorted(oks) == sorted(str(i) for i in range(48))
    assert max(oks.values()) == 1, "a sample was answered twice"

    # The same predictions as an uninterrupted run (no Prefect, fresh work dir).
    ws = Workspace(tmp_path / "fresh", tmp_path / "fresh-out")
    dataset, frames = DatasetSpec(tsv=small_bench), FrameSettings()
    reference = ModelSpec(name="ref", kind="reference")
    extract_dataset_frames(dataset, frames, ws)
    fresh = Cell(reference, dataset, trial=0, seed=0, frames=frames)
    infer_inline(fresh, ws)
    expected = cell_records(fresh, ws)
    resumed = cell_records(cell, Workspace(parsed.work_dir, parsed.output_dir))
    assert {k: r.prediction for k, r in resumed.items()} == {
        k: r.prediction for k, r in expected.items()
    }
    sheet = pd.read_excel(tmp_path / "outputs/ref/ref_Tiny.xlsx")
    assert len(sheet) == 48 and sheet["index"].is_unique
    board = json.loads((tmp_path / "outputs/leaderboard.json").read_text())
    assert board[0]["n"] == 48 and board[0]["failed"] == 0


def test_two_runs_on_one_work_dir_at_once_share_the_work(small_bench, tmp_path):
    """Started together: one writes the cell while the other waits for it, then finds
    every answer there. No duplicate ids, no torn line, no model call repeated beyond
    the samples in flight."""
    calls = tmp_path / "calls.txt"
    config, raw = counting_config(small_bench, tmp_path, delay_s=0.05)
    runs = [run_cli(config, tmp_path, home=f"home-{i}") for i in range(2)]
    for i, proc in enumerate(runs):
        code = proc.wait(timeout=400)
        assert code == 0, (tmp_path / f"run-home-{i}.log").read_text()[-3000:]
    in_flight = raw["models"][0]["batch_size"]
    assert 48 <= len(read_calls(calls)) <= 48 + in_flight
    log_dir = find_cell(parse_config(raw)).log_dir(Workspace(tmp_path / "work", tmp_path))
    lines = [line for p in log_dir.glob("*.jsonl") for line in p.read_text().splitlines()]
    records = [r for p in log_dir.glob("*.jsonl") for r in iter_records(p)]
    assert len(lines) == len(records)  # every line parses: no torn record
    oks = Counter(r.sample_id for r in records if r.ok)
    assert sorted(oks, key=int) == [str(i) for i in range(48)]
    assert max(oks.values()) == 1  # the second run waited for the cell, then had nothing
    sheet = pd.read_excel(tmp_path / "outputs/ref/ref_Tiny.xlsx")
    assert len(sheet) == 48 and sheet["index"].is_unique
