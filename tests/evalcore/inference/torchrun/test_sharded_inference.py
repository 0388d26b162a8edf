"""Shards as real torchrun jobs on CPU: failures, hangs, crash budgets and resume."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from evalcore.benchmarks import load_samples
from evalcore.cell import Cell, extract_dataset_frames
from evalcore.config import DatasetSpec, InferenceSettings, ModelSpec
from evalcore.dataset import LETTERS
from evalcore.frames import FrameSettings
from evalcore.inference.torchrun.launch import ShardFailed
from evalcore.inference.torchrun.plan import dataset_videos, device_groups, plan_shards
from evalcore.inference.torchrun.shard import infer_shard, shard_paths
from evalcore.predictions import FailureKind
from evalcore.predictions.log import iter_records
from evalcore.processes import alive
from tests.doubles.records import cell_records
from tests.doubles.scripted_model import FAKE_KIND, read_calls


def cell_of(model: ModelSpec, dataset: DatasetSpec) -> Cell:
    return Cell(model=model, dataset=dataset, trial=0, seed=0, frames=FrameSettings())


def plan_cell_shards(dataset: DatasetSpec, inference: InferenceSettings):
    groups = device_groups([], inference.ranks_per_shard, 1, inference.cpu_groups)
    return plan_shards(dataset_videos(dataset), groups, inference.shards)


def read_predictions(ws, model, dataset) -> dict:
    """The records that count, by sample id."""
    return cell_records(cell_of(model, dataset), ws)


def fake_model(tmp_path: Path, batch_size: int = 2, **params) -> ModelSpec:
    params = {"calls_file": str(tmp_path / "calls.jsonl"), **params}
    return ModelSpec(name="fake", kind=FAKE_KIND, params=params, batch_size=batch_size)


def settings(**kw) -> InferenceSettings:
    return InferenceSettings(launcher="torchrun", watchdog_s=60, grace_s=2, **kw)


def infer(ws, model, dataset, inference, shards=None):
    """Run the given shards (default all) concurrently, as the flow would."""
    extract_dataset_frames(dataset, FrameSettings(), ws)  # cache hits: this limit's index
    plan = plan_cell_shards(dataset, inference)
    plan = [s for s in plan if shards is None or s.index in shards]
    with ThreadPoolExecutor(len(plan)) as pool:
        futures = [
            pool.submit(infer_shard, cell_of(model, dataset), s, inference, ws) for s in plan
        ]
        return [f.result() for f in futures]


def expected(dataset: DatasetSpec) -> dict[str, str]:
    """What ScriptedModel answers (seed 0), whoever answers it."""
    out = {}
    for s in load_samples(dataset):
        digest = hashlib.sha256(f"0:{s.sample_id}".encode()).digest()
        out[s.sample_id] = LETTERS[int.from_bytes(digest[:8], "big") % len(s.options)]
    return out


def ok_counts(log_dir: Path) -> Counter:
    return Counter(r.sample_id for p in log_dir.glob("*.jsonl") for r in iter_records(p) if r.ok)


def test_rank_error_fails_fast_then_resumes_with_other_shard_count_and_world_size(
    ws, small_bench, tmp_path
):
    dataset = DatasetSpec(tsv=small_bench)
    budget = tmp_path / "budget"
    budget.write_text("1")
    model = fake_model(
        tmp_path, fault="raise", fault_after_calls=3, fault_rank=0, fault_budget_file=str(budget)
    )
    first = settings(shards=1, ranks_per_shard=2, cpu_groups=1, process_group=True)
    with pytest.raises(ShardFailed) as failure:
        infer(ws, model, dataset, first)
    failed_at = time.time()
    message = str(failure.value)
    assert "rank 0" in message and "InjectedCrash: injected crash in rank 0" in message
    assert "Traceback" in message and "scripted_model.py" in message  # the rank's own traceback
    crash_call = [c for c in read_calls(tmp_path / "calls.jsonl") if c["rank"] == 0][-1]
    # torchrun noticed and the parent reported, not the watchdog (60 s) or the deadline
    assert ": torchrun exited with " in message
    assert failed_at - crash_call["t"] < 60  # slack for a busy machine

    log_dir = cell_of(model, dataset).log_dir(ws)
    done_before = {i for i, r in read_predictions(ws, model, dataset).items() if r.ok}
    calls_before = len(read_calls(tmp_path / "calls.jsonl"))
    assert 0 < len(done_before) < 48

    summaries = infer(ws, model, dataset, settings(shards=2, ranks_per_shard=1, cpu_groups=2))
    assert sum(s.skipped for s in summaries) == len(done_before)
    records = read_predictions(ws, model, dataset)
    assert {i: r.prediction for i, r in records.items()} == expected(dataset)
    assert set(ok_counts(log_dir).values()) == {1}  # no sample answered twice
    again = {i for c in read_calls(tmp_path / "calls.jsonl")[calls_before:] for i in c["ids"]}
    assert not again & done_before


def test_hung_rank_is_stopped_by_the_watchdog_and_leaves_no_process(ws, small_bench, tmp_path):
    dataset = DatasetSpec(tsv=small_bench, limit=16)
    model = fake_model(tmp_path, fault="hang", fault_after_calls=1, fault_rank=1)
    inference = settings(shards=1, ranks_per_shard=2, cpu_groups=1).model_copy(
        update={"watchdog_s": 4.0, "grace_s": 1.0, "deadline_s": 60.0}
    )
    # stopped by the watchdog (the deadline, 60 s, would say "deadline"), whatever the load
    stuck = r"watchdog: rank 1 made no progress for 4 s \(phase ready\)"
    with pytest.raises(ShardFailed, match=stuck):
        infer(ws, model, dataset, inference)
    launch = next(shard_paths(cell_of(model, dataset), ws).root.glob("shard0-*/launch-0"))
    pids = [int((launch / "torchrun.pid").read_text())]
    pids += [json.loads(p.read_text())["pid"] for p in launch.glob("rank*.json")]
    assert len(pids) == 3
    assert not [p for p in pids if alive(p)]
    for pid in pids:  # torchrun and each rank led their own process group: all empty
        with pytest.raises(ProcessLookupError):
            os.killpg(pid, 0)


def test_sample_that_keeps_killing_its_rank_becomes_a_failure_record(ws, small_bench, tmp_path):
    dataset = DatasetSpec(tsv=small_bench, limit=12)
    culprit = load_samples(dataset)[5].sample_id
    model = fake_model(tmp_path, batch_size=4, fault="kill", fault_ids=[culprit])
    inference = settings(shards=1, ranks_per_shard=1, max_attempts=2)
    for _ in range(2):
        with pytest.raises(ShardFailed, match="SIGKILL"):
            infer(ws, model, dataset, inference)
    # Launch 1 died on the culprit's batch of 4; launch 2 ran those 4 alone, last, and
    # died on the culprit again before its 2 successors; launch 3 gives up on the culprit.
    (summary,) = infer(ws, model, dataset, inference)
    assert (summary.gave_up, summary.launched, summary.answered) == (1, 2, 2)
    records = read_predictions(ws, model, dataset)
    assert records[culprit].error_type == FailureKind.RankCrashed and records[culprit].attempts == 2
    assert all(r.ok for i, r in records.items() if i != culprit) and len(records) == 12
    calls = read_calls(tmp_path / "calls.jsonl")
    assert sum(culprit in c["ids"] for c in calls) == 2
    assert [culprit] in [c["ids"] for c in calls]  # second launch: tried alone, last


def test_model_that_cannot_load_fails_the_shard_with_the_ranks_traceback(ws, small_bench, tmp_path):
    dataset = DatasetSpec(tsv=small_bench, limit=4)
    model = fake_model(tmp_path, fault="load")
    with pytest.raises(ShardFailed) as failure:
        infer(ws, model, dataset, settings(shards=1, ranks_per_shard=1))
    message = str(failure.value)
    assert "rank 0" in message and "RuntimeError: cannot load weights in rank 0" in message
    assert "Traceback" in message and "scripted_model.py" in message
    assert list(failure.value.launch_dir.glob("torchrun/*/attempt_0/0/error.json"))  # @record


PARENT = """
import sys
from pathlib import Path
from evalcore.cell import Cell
from evalcore.config import DatasetSpec, InferenceSettings, ModelSpec
from evalcore.frames import FrameSettings
from evalcore.inference.torchrun.shard import infer_shard
from evalcore.inference.torchrun.plan import DeviceGroup, dataset_videos, plan_shards
from evalcore.workspace import Workspace

tsv, calls, kind = sys.argv[1], sys.argv[3], sys.argv[4]
ws = Workspace(Path(sys.argv[2]), Path(sys.argv[2]))
dataset = DatasetSpec(tsv=tsv, limit=16)
model = ModelSpec(name="fake", kind=kind, params={"calls_file": calls, "delay_s": 5})
inference = InferenceSettings(launcher="torchrun", shards=1, ranks_per_shard=2, cpu_groups=1)
(shard,) = plan_shards(dataset_videos(dataset), [DeviceGroup(0)], 1)
cell = Cell(model=model, dataset=dataset, trial=0, seed=0, frames=FrameSettings())
infer_shard(cell, shard, inference, ws)
"""


def test_killing_the_parent_with_sigkill_leaves_no_rank_running(ws, small_bench, tmp_path):
    dataset = DatasetSpec(tsv=small_bench, limit=16)
    extract_dataset_frames(dataset, FrameSettings(), ws)
    args = [str(small_bench), str(ws.work_dir), str(tmp_path / "calls"), FAKE_KIND]
    parent = subprocess.Popen([sys.executable, "-c", PARENT, *args])
    model = ModelSpec(
        name="fake", kind=FAKE_KIND, params={"calls_file": str(tmp_path / "calls"), "delay_s": 5}
    )  # the one PARENT builds
    root = shard_paths(cell_of(model, dataset), ws).root
    deadline = time.monotonic() + 60
    statuses: list[dict] = []
    while len(statuses) < 2 or any(s["phase"] != "ready" for s in statuses):
        assert time.monotonic() < deadline and parent.poll() is None
        time.sleep(0.2)
        statuses = [json.loads(p.read_text()) for p in root.glob("shard0-*/launch-0/rank*.json")]
    launch = next(root.glob("shard0-*/launch-0"))
    pids = [int((launch / "torchrun.pid").read_text()), *(s["pid"] for s in statuses)]
    parent.kill()  # SIGKILL: no cleanup code of the parent runs
    parent.wait()
    deadline = time.monotonic() + 10
    while [p for p in pids if alive(p)] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in pids if alive(p)]  # torchrun and both ranks died with it


def test_records_of_a_two_shard_run_count_in_a_three_shard_run(ws, small_bench, tmp_path):
    dataset = DatasetSpec(tsv=small_bench)
    two = settings(shards=2, ranks_per_shard=1, cpu_groups=2)
    victim = plan_cell_shards(dataset, two)[1].ids[-1]  # shard 1 crashes on its last video
    budget = tmp_path / "budget"
    budget.write_text("1")
    model = fake_model(tmp_path, fault="raise", fault_ids=[victim], fault_budget_file=str(budget))
    with pytest.raises(ShardFailed, match="InjectedCrash"):
        infer(ws, model, dataset, two)
    done_before = {i for i, r in read_predictions(ws, model, dataset).items() if r.ok}
    calls_before = len(read_calls(tmp_path / "calls.jsonl"))
    assert 24 <= len(done_before) < 48  # shard 0 whole, shard 1 in part

    three = settings(shards=3, ranks_per_shard=1, cpu_groups=2)
    assert {s.ids for s in plan_cell_shards(dataset, three)}.isdisjoint(
        {s.ids for s in plan_cell_shards(dataset, two)}
    )  # other shards, other cache keys: only the logs carry progress over
    summaries = infer(ws, model, dataset, three)
    assert sum(s.skipped for s in summaries) == len(done_before)
    assert sum(s.answered for s in summaries) == 48 - len(done_before)
    records = read_predictions(ws, model, dataset)
    assert {i: r.prediction for i, r in records.items()} == expected(dataset)
    assert set(ok_counts(cell_of(model, dataset).log_dir(ws)).values()) == {1}
    again = {i for c in read_calls(tmp_path / "calls.jsonl")[calls_before:] for i in c["ids"]}
    assert again and not again & done_before
