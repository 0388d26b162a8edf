"""Chaos: `evalcore run` of a 500-sample benchmark killed with SIGKILL at ten seeded-random
moments (start-up, frames, inference, scoring, publishing, the summary hook), each kill
followed by a resume; the end is what an uninterrupted run gives."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import yaml
from doubles.models import COUNTING, read_calls
from test_kill_resume import answered, leftovers, run_cli

from evalcore.cell import find_cell
from evalcore.config import parse_config
from evalcore.predictions import iter_records
from evalcore.workspace import Workspace
from tests.doubles.records import cell_records

# end to end (CLI runs, each with its temporary Prefect server) and the longest module:
# the quick tier skips it, and under xdist it starts first
pytestmark = pytest.mark.slow

N_SAMPLES = 500


@pytest.fixture(scope="module")
def bench_500(tmp_path_factory) -> Path:
    from evalcore.dataset.synthetic import generate_benchmark

    out = tmp_path_factory.mktemp("bench500")
    return generate_benchmark(out, n_videos=125, seed=3, name="Chaos", min_seconds=2, max_seconds=3)


def write_config(bench: Path, root: Path) -> tuple[Path, dict]:
    raw = {
        "datasets": [{"tsv": str(bench)}],
        "models": [
            {
                "name": "ref",
                "kind": COUNTING,
                "params": {"calls_file": str(root / "calls.txt"), "delay_s": 0.02},
                "batch_size": 4,
            }
        ],
        "work_dir": str(root / "work"),
        "output_dir": str(root / "outputs"),
    }
    root.mkdir(parents=True, exist_ok=True)
    config = root / "eval.yaml"
    config.write_text(yaml.safe_dump(raw))
    return config, raw


class Run:
    """One `evalcore run` process and what can be seen of it from outside."""

    def __init__(self, config: Path, root: Path, home: str) -> None:
        self.root, self.home = root, home
        self.log = root / f"run-{home}.log"
        self.log.unlink(missing_ok=True)
        self.started = time.monotonic()
        self.proc = run_cli(config, root, home=home)

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_until(self, predicate, what: str, timeout: float = 240) -> bool:
        """True once `predicate()` holds; False if the run ended first."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if self.proc.poll() is not None:
                return False
            assert time.monotonic() < deadline, f"{what}: {self.text()[-2000:]}"
            time.sleep(0.02)
        return True

    def sleep(self, seconds: float) -> bool:
        """Wait `seconds`; False if the run ended first."""
        until = time.monotonic() + seconds
        return self.wait_until(lambda: time.monotonic() >= until, "sleep")

    def logged(self, pattern: str):
        return lambda: re.search(pattern, self.text())


def gone(mark: bytes, grace: float = 20.0) -> bool:
    """No process of that run is left once `grace` seconds have passed (its reaper and
    server notice the CLI's end by polling)."""
    deadline = time.monotonic() + grace
    while leftovers(mark) and time.monotonic() < deadline:
        time.sleep(0.2)
    return not leftovers(mark)


# One kill per moment, in this order (a later moment needs the earlier stages done).
MOMENTS = [
    "start-up",
    "frames",
    "frames",
    "inference",
    "inference",
    "inference",
    "inference",
    "scoring",
    "publishing",
    "summary hook",
]


def test_ten_kills_at_random_moments_then_resume_equals_an_uninterrupted_run(bench_500, tmp_path):
    rng = random.Random(20261203)

    # The uninterrupted run, timed stage by stage from its log.
    calm_config, _ = write_config(bench_500, tmp_path / "calm")
    calm = Run(calm_config, tmp_path / "calm", "calm")
    assert calm.proc.wait(timeout=300) == 0, calm.text()[-3000:]
    calm_log = calm.text()

    config, raw = write_config(bench_500, tmp_path / "chaos")
    parsed = parse_config(raw)
    ws = Workspace(parsed.work_dir, parsed.output_dir)
    cell = find_cell(parsed)
    log_dir = cell.log_dir(ws)
    calls_file = tmp_path / "chaos" / "calls.txt"
    home_mark = lambda home: f"PREFECT_HOME={tmp_path / 'chaos' / home}".encode()  # noqa: E731

    thresholds = sorted(rng.sample(range(20, N_SAMPLES - 20), 4))
    killed_in: list[str] = []
    for i, moment in enumerate(MOMENTS):
        home = f"home-{i}"
        run = Run(config, tmp_path / "chaos", home)
        if moment == "start-up":
            alive = run.sleep(rng.uniform(1, 4))
        elif moment == "frames":
            alive = run.wait_until(run.logged("Beginning flow run"), "flow start")
            alive = alive and run.sleep(rng.uniform(0, 1.2))
        elif moment == "inference":
            k = thresholds.pop(0)
            alive = run.wait_until(lambda k=k: len(answered(log_dir)) >= k, "inference")
        else:
            after = {
                "scoring": r"Task run 'infer .*Finished",
                "publishing": r"Task run 'score .*Finished",
                "summary hook": r"Running hook 'publish_run_summary'",
            }[moment]
            alive = run.wait_until(run.logged(after), moment) and run.sleep(rng.uniform(0, 0.3))
        done_before = set(answered(log_dir))
        calls_before = len(read_calls(calls_file))
        os.kill(run.proc.pid, signal.SIGKILL)  # the CLI alone, as `kill -9 <pid>` does
        run.proc.wait()
        killed_in.append(moment if alive else f"{moment} (run had ended)")
        assert gone(home_mark(home)), f"kill {i} ({moment}) left processes behind"
        # Nothing finished before a kill is computed again by any later run.
        recomputed = set(read_calls(calls_file)[calls_before:])
        assert not done_before & recomputed, f"kill {i}: finished samples computed again"

    print("kills:", killed_in)
    assert killed_in == MOMENTS, killed_in  # every kill hit a live run in its stage
    final = Run(config, tmp_path / "chaos", "final")
    assert final.proc.wait(timeout=300) == 0, final.text()[-3000:]
    assert gone(home_mark("final")), "the final run left processes behind"

    # Each sample answered exactly once, by some run; and the same answers as the calm run.
    oks = Counter(r.sample_id for p in log_dir.glob("*.jsonl") for r in iter_records(p) if r.ok)
    assert len(oks) == N_SAMPLES and max(oks.values()) == 1
    calm_parsed = parse_config(yaml.safe_load(calm_config.read_text()))
    calm_ws = Workspace(calm_parsed.work_dir, calm_parsed.output_dir)
    expected = cell_records(find_cell(calm_parsed), calm_ws)
    resumed = cell_records(cell, ws)
    assert {r.sample_id: r.prediction for r in resumed.values()} == {
        r.sample_id: r.prediction for r in expected.values()
    }
    calls = read_calls(calls_file)
    assert len(calls) <= N_SAMPLES + 4 * len(MOMENTS)  # at most a batch in flight per kill

    # The published results match the calm run's.
    out, calm_out = tmp_path / "chaos/outputs", tmp_path / "calm/outputs"
    sheet, calm_sheet = (pd.read_excel(d / "ref/ref_Chaos.xlsx") for d in (out, calm_out))
    assert len(sheet) == N_SAMPLES and sheet["index"].is_unique
    cols = ["index", "prediction", "hit"] if "hit" in sheet else ["index", "prediction"]
    key = cols[0]
    pd.testing.assert_frame_equal(
        sheet[cols].sort_values(key).reset_index(drop=True),
        calm_sheet[cols].sort_values(key).reset_index(drop=True),
    )
    result, calm_result = (
        json.loads((d / "ref/ref_Chaos.json").read_text()) for d in (out, calm_out)
    )
    assert result["metric"] == calm_result["metric"]
    board = json.loads((out / "leaderboard.json").read_text())
    assert [(r["model"], r["n"], r["failed"]) for r in board] == [("ref", N_SAMPLES, 0)]
    assert "Finished in state Completed" in calm_log
