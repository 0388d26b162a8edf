"""The `eval` flow with a sample that kills its torchrun rank: given up on in one run
(`RankCrashed`, the run completes with one failure), answered by the next run once the
cause is gone; and the shard's task runs named like its folder."""

from __future__ import annotations

import pytest

from evalcore.benchmarks import load_samples
from evalcore.cell import find_cell
from evalcore.config import DatasetSpec, EvalConfig, InferenceSettings, ModelSpec
from evalcore.predictions import FailureKind
from evalcore.workspace import Workspace
from flows.eval import eval_flow
from tests.doubles.records import cell_records
from tests.doubles.scripted_model import FAKE_KIND, read_calls

pytestmark = pytest.mark.usefixtures("subprocess_imports_tests")  # ranks import tests.doubles


def task_run_names(flow_run_id) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    return sorted(r.name for r in runs)


def test_a_sample_given_up_in_one_run_is_answered_by_the_next_once_its_cause_is_gone(
    prefect_harness, small_bench, tmp_path
):
    dataset = DatasetSpec(tsv=small_bench, limit=12)
    culprit = load_samples(dataset)[5].sample_id
    cause = tmp_path / "poison"  # while it holds a count above 0, the culprit kills its rank
    cause.write_text("1000")
    params = {"calls_file": str(tmp_path / "calls.jsonl"), "fault": "kill"}
    params.update(fault_ids=[culprit], fault_budget_file=str(cause))
    config = EvalConfig(
        datasets=[dataset],
        models=[ModelSpec(name="fake", kind=FAKE_KIND, params=params, batch_size=4)],
        inference=InferenceSettings(
            launcher="torchrun",
            shards=1,
            cpu_groups=1,
            retries=2,
            max_attempts=2,  # given up on in the shard task's third attempt
            watchdog_s=60,
            grace_s=2,
        ),
        output_dir=tmp_path / "outputs",
        work_dir=tmp_path / "work",
    )
    ws = Workspace(config.work_dir, config.output_dir)

    first = eval_flow(config, return_state=True)
    assert first.is_completed()
    (row,) = first.result()["leaderboard"]
    assert (row["n"], row["failed"]) == (12, 1)
    assert cell_records(find_cell(config), ws)[culprit].error_type == FailureKind.RankCrashed
    names = task_run_names(first.state_details.flow_run_id)
    assert "infer fake x Tiny t0 shard0-of-1" in names  # as its folder shard0-of-1/ is named

    cause.unlink()  # the cause is fixed; a new run (a flow-run retry does the same)
    second = eval_flow(config)
    (row,) = second["leaderboard"]
    assert (row["n"], row["failed"]) == (12, 0)
    assert cell_records(find_cell(config), ws)[culprit].ok
    calls = read_calls(tmp_path / "calls.jsonl")
    assert [c["ids"] for c in calls if culprit in c["ids"]][-1] == [culprit]  # asked alone
