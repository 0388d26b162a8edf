"""A sample that keeps crashing its rank is given up on (`RankCrashed`) for one run only:
the next run, or a flow-run retry, asks it again, so a fixed cause is seen."""

from __future__ import annotations

import json

import pytest

from evalcore.benchmarks import load_samples
from evalcore.cell import extract_dataset_frames
from evalcore.config import DatasetSpec
from evalcore.frames import FrameSettings
from evalcore.inference.runner import unit_cache_key
from evalcore.inference.torchrun.launch import ShardFailed
from evalcore.inference.torchrun.shard import infer_shard, shard_paths
from evalcore.predictions import FailureKind
from evalcore.workspace import Workspace
from tests.doubles.scripted_model import read_calls
from tests.evalcore.inference.torchrun.test_sharded_inference import (
    cell_of,
    fake_model,
    plan_cell_shards,
    read_predictions,
    settings,
)


def run_shard(ws, model, dataset, inference, run: str):
    """The one shard of the cell, as one attempt of the run `run` (a shard task would)."""
    extract_dataset_frames(dataset, FrameSettings(), ws)
    (shard,) = plan_cell_shards(dataset, inference)
    return infer_shard(cell_of(model, dataset), shard, inference, ws, run)


def test_given_up_sample_is_final_for_its_run_only_and_answered_once_its_cause_is_gone(
    small_bench, tmp_path
):
    # a work dir of its own: extracting 12 of the benchmark's videos into the shared
    # (symlinked) frame index of the `ws` fixture would cut it short for later tests
    ws = Workspace(tmp_path / "work", tmp_path / "out")
    dataset = DatasetSpec(tsv=small_bench, limit=12)
    culprit = load_samples(dataset)[5].sample_id
    cause = tmp_path / "poison"  # while it holds a count above 0, the culprit kills its rank
    cause.write_text("1000")
    model = fake_model(
        tmp_path, batch_size=4, fault="kill", fault_ids=[culprit], fault_budget_file=str(cause)
    )
    inference = settings(shards=1, ranks_per_shard=1, max_attempts=2)
    cell = cell_of(model, dataset)
    (shard,) = plan_cell_shards(dataset, inference)

    # Run 1: two launches die on the culprit, the third answers the rest and gives up on it.
    for _ in range(2):
        with pytest.raises(ShardFailed, match="SIGKILL"):
            run_shard(ws, model, dataset, inference, run="run-1")
    key_before = unit_cache_key(cell, ws, "infer-shard", shard.ids)[0]
    summary = run_shard(ws, model, dataset, inference, run="run-1")
    assert (summary.gave_up, summary.launched, summary.answered) == (1, 2, 2)
    record = read_predictions(ws, model, dataset)[culprit]
    assert record.error_type == FailureKind.RankCrashed and record.attempts == 2
    # ... so the next run's unit is no cache hit: its key moved with the record
    assert unit_cache_key(cell, ws, "infer-shard", shard.ids)[0] != key_before

    # Another attempt of run 1 (a shard task's retry): the record is final for it.
    summary = run_shard(ws, model, dataset, inference, run="run-1")
    assert (summary.gave_up, summary.launched) == (0, 0)
    assert summary.skipped == 12  # the RankCrashed record counts as done in its run

    # Run 2, the cause still there: the culprit is asked once more (alone), dies, and is
    # given up on again without another launch.
    with pytest.raises(ShardFailed, match="SIGKILL"):
        run_shard(ws, model, dataset, inference, run="run-2")
    assert read_calls(tmp_path / "calls.jsonl")[-1]["ids"] == [culprit]
    summary = run_shard(ws, model, dataset, inference, run="run-2")
    assert (summary.gave_up, summary.launched) == (1, 0)
    record = read_predictions(ws, model, dataset)[culprit]
    assert record.error_type == FailureKind.RankCrashed and record.attempts == 3
    assert "in 3 launches, 2 of them in earlier runs" in record.error

    # The cause removed: run 3 asks it again and it is answered.
    cause.unlink()
    summary = run_shard(ws, model, dataset, inference, run="run-3")
    assert (summary.launched, summary.answered, summary.gave_up) == (1, 1, 0)
    records = read_predictions(ws, model, dataset)
    assert records[culprit].ok and all(r.ok for r in records.values()) and len(records) == 12
    calls = read_calls(tmp_path / "calls.jsonl")
    assert sum(culprit in c["ids"] for c in calls) == 4  # 2 + 1 crashes, then its answer
    run_file = shard_paths(cell, ws).run_file(shard.index, shard.count)
    assert json.loads(run_file.read_text())["run"] == "run-3"
