"""The run summary's arithmetic over task runs (no server: plain records), its samples
table and its changes since the latest snapshot."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from evalcore.api.endpoint import EndpointSpec
from evalcore.config import EvalConfig
from evalcore.reports.history import publish_leaderboard
from evalcore.reports.run_summary import (
    TaskRunView,
    cache_counts,
    changes_markdown,
    stage_stats,
    summary_markdown,
)
from tests.doubles.judged_cells import judged_cell, report_judged
from tests.evalcore.reports.test_compare import A_SAYS, two_models  # noqa: F401 - a fixture

T0 = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)


def run(name, key, state, attempt, start_s, end_s, run_count=1, state_name=None):
    return TaskRunView(
        name=name,
        task_key=key,
        state_type=state,
        state_name=state_name or state.title(),
        run_count=run_count,
        attempt=attempt,
        start=T0 + timedelta(seconds=start_s),
        end=T0 + timedelta(seconds=end_s),
    )


def test_retry_attempt_counts_cached_and_retried_shards():
    runs = [
        # attempt 1: frames ok, one unit ok, one unit failed
        run("extract-frames-a1b", "extract_frames-x", "COMPLETED", 1, 0, 4),
        run("infer-0c1", "infer-y", "COMPLETED", 1, 4, 9),
        run("infer-d2e", "infer-y", "FAILED", 1, 4, 5),
        # attempt 2 (flow-run retry): the good unit is restored, the failed one runs again
        run("extract-frames-f3a", "extract_frames-x", "COMPLETED", 2, 20, 21),
        run("infer-b4c", "infer-y", "COMPLETED", 2, 21, 21.1, state_name="Cached"),
        run("infer-e5f", "infer-y", "COMPLETED", 2, 21, 26),
        # a shard named per shard, retried once by Prefect inside attempt 2
        run("infer-m-D-t0-shard1of2", "infer_shard_task-z", "COMPLETED", 2, 21, 30, run_count=2),
    ]
    stats = {s.stage: s for s in stage_stats(runs, attempt=2)}
    assert list(stats) == ["extract-frames", "infer", "infer_shard_task"]
    infer = stats["infer"]
    assert (infer.runs, infer.cached, infer.ran, infer.failed, infer.retried) == (2, 1, 1, 0, 1)
    assert infer.seconds == 5.0
    assert stats["infer_shard_task"].retried == 1
    assert stats["extract-frames"].retried == 0

    first = {s.stage: s for s in stage_stats(runs, attempt=1)}
    assert (first["infer"].failed, first["infer"].retried) == (1, 0)


def test_cache_lines_and_markdown():
    outcome = {
        "frames": [{"hits": 3, "videos": 4}],
        "inference": [{"answered": 2}, {"answered": 5, "cache_hits": 4}],
    }
    caches = cache_counts(outcome, api_cells_restored=0)
    assert caches == {
        "frame-cache hits": "3 of 4 videos",
        "API cache hits": "4 requests over 1 cells",
    }
    assert cache_counts(None, 0)["frame-cache hits"].startswith("n/a")
    samples = {"m x D": {"total": 8, "answered": 2, "restored": 5, "failed": 1, "missing": 0}}
    text = summary_markdown("r", 2, "Completed", 3.2, samples, [], caches)
    assert "attempt 2, Completed" in text and "| m x D | 8 | 2 | 5 | 1 | 0 |" in text
    assert "all cells" not in text  # one cell: no sum row


def test_samples_table_names_each_cell_and_sums_them():
    samples = {
        "a x D": {"total": 4, "answered": 4, "restored": 0, "failed": 0, "missing": 0},
        "b x D": {"total": 4, "answered": 1, "restored": 2, "failed": 1, "missing": 0},
    }
    lines = summary_markdown("r", 1, "Completed", 1.0, samples, [], {}).splitlines()
    header = "| samples of | total | answered now | restored | failed | missing |"
    table = lines[lines.index(header) :]
    assert table[1:5] == [
        "|---|---|---|---|---|---|",
        "| a x D | 4 | 4 | 0 | 0 | 0 |",
        "| b x D | 4 | 1 | 2 | 1 | 0 |",
        "| all cells | 8 | 5 | 2 | 1 | 0 |",
    ]
    assert not any(line.startswith("| |") for line in lines)  # no row without a name


def test_changes_name_the_cells_the_snapshot_lacks_instead_of_calling_them_unchanged(
    two_models,  # noqa: F811 - the fixture imported above
):
    config, ws, answer = two_models
    answer("a", A_SAYS)
    publish_leaderboard(ws, snapshot=True)  # a snapshot of model a only
    answer("b", A_SAYS)  # b is new since it

    text = changes_markdown(config)
    assert text.startswith("No question changed its outcome since the snapshot of")
    assert "so nothing to compare: b x D (new)." in text and "a x D (new)" not in text
    only_b = config.model_copy(update={"models": [config.models[1]]})
    text = changes_markdown(only_b)
    assert "No question changed" not in text
    assert text.startswith("Not in the snapshot of") and "b x D (new)" in text


def test_changes_name_a_cell_without_a_score_instead_of_comparing_it(tmp_path):
    cell, ws = judged_cell(tmp_path, {str(i): 3.0 for i in range(8)})
    report_judged(cell, ws)
    publish_leaderboard(ws, snapshot=True)  # every answer scored 3
    other = EndpointSpec(base_url="http://127.0.0.1:9/v1", model="another-judge")
    report_judged(cell, ws, judge=other)  # a new judge has judged nothing yet
    config = EvalConfig(
        datasets=[cell.dataset],
        models=[cell.model],
        output_dir=ws.output_dir,
        work_dir=ws.work_dir,
    )
    text = changes_markdown(config)
    assert text == (
        "No score, so nothing compared: m x MMBench-Video (8 unjudged: not judged yet).\n"
    )
