"""The run summary: a markdown artifact on every `eval` flow run, failed ones included.

It is a flow state hook (`on_completion` and `on_failure` of the `eval` flow), not a task
at the end of the flow, so a run that failed still says which stage failed and what is
already done; after `prefect flow-run retry` the new attempt's summary shows what was
restored from cache and which shards ran again. Key `eval-run-summary`: one version per
flow run attempt, the latest on top (`prefect artifact inspect eval-run-summary`).

Sources: task runs of this attempt from the Prefect API (cached, completed, failed,
retried, wall time per stage), the prediction logs on disk (samples answered now,
restored from earlier attempts or runs, failed, missing), and the flow's return value
when it completed (frame-cache hits; API cache hits once an API branch reports them).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from evalcore.config import EvalConfig
from evalcore.predictions import read_predictions
from evalcore.stages import cell_log_dir, load_samples
from evalcore.workspace import Workspace

SUMMARY_KEY = "eval-run-summary"
_TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
_DEFAULT_RUN_NAME = re.compile(r"-[0-9a-f]{3}$")  # Prefect names a task run `{task}-{3 hex}`
log = logging.getLogger(__name__)
_NEVER = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True)
class TaskRunView:
    """What the summary needs of one task run (a plain copy of the API object)."""

    name: str
    task_key: str
    state_type: str
    state_name: str
    run_count: int
    attempt: int  # the flow run's attempt (run_count) this task run belongs to
    start: datetime | None
    end: datetime | None


@dataclass(frozen=True)
class StageStats:
    stage: str
    runs: int
    cached: int
    ran: int
    failed: int
    retried: int
    seconds: float


def stage_stats(task_runs: Sequence[TaskRunView], attempt: int) -> list[StageStats]:
    """Per task (stage) of this attempt, in order of first start. `retried`: runs that
    needed a task-level retry, plus, in a flow-run retry, units that ran again where an
    earlier attempt of the same stage failed (the others were restored from cache)."""
    groups: dict[str, list[TaskRunView]] = {}
    for tr in sorted(task_runs, key=lambda t: t.start or _NEVER):
        if tr.attempt == attempt:
            groups.setdefault(tr.task_key, []).append(tr)
    stats = []
    for key, runs in groups.items():
        cached = sum(r.state_name == "Cached" for r in runs)
        failed = sum(r.state_type in ("FAILED", "CRASHED") for r in runs)
        ran_ok = sum(r.state_type == "COMPLETED" and r.state_name != "Cached" for r in runs)
        failed_before = sum(
            t.task_key == key and t.attempt < attempt and t.state_type in ("FAILED", "CRASHED")
            for t in task_runs
        )
        starts = [r.start for r in runs if r.start]
        ends = [r.end for r in runs if r.end]
        stats.append(
            StageStats(
                stage=_stage_label(runs[0]),
                runs=len(runs),
                cached=cached,
                ran=len(runs) - cached,
                failed=failed,
                retried=sum(r.run_count > 1 for r in runs) + min(ran_ok, failed_before),
                seconds=round((max(ends) - min(starts)).total_seconds(), 2)
                if starts and ends
                else 0.0,
            )
        )
    return stats


def sample_counts(config: EvalConfig, since: float) -> dict[str, int]:
    """Samples of every model x dataset x trial, by what the logs say now: answered in
    this attempt, restored (answered before `since`), failed, missing (never run)."""
    ws = Workspace(config.work_dir, config.output_dir)
    counts = {"total": 0, "answered": 0, "restored": 0, "failed": 0, "missing": 0}
    for dataset in config.datasets:
        ids = [s.sample_id for s in load_samples(dataset)]
        for model in config.models:
            for trial in range(config.trials):
                records = read_predictions(
                    cell_log_dir(ws, model, dataset, config.frames, config.seed, trial)
                )
                for sample_id in ids:
                    rec = records.get(sample_id)
                    counts["total"] += 1
                    if rec is None:
                        counts["missing"] += 1
                    elif not rec.ok:
                        counts["failed"] += 1
                    elif rec.finished_at >= since:
                        counts["answered"] += 1
                    else:
                        counts["restored"] += 1
    return counts


def cache_counts(outcome: dict | None, api_cells_restored: int) -> dict[str, str]:
    """Frame-cache and API response-cache hits from the flow's return value (None when the
    run failed). An API cell restored from the Prefect cache returns the counts of the run
    that made it, so its hits are not this attempt's: the line says how many such cells."""
    if not isinstance(outcome, dict):
        return {"frame-cache hits": "n/a (run failed)", "API cache hits": "n/a (run failed)"}
    frames = outcome.get("frames") or []
    hits, videos = sum(f.get("hits", 0) for f in frames), sum(f.get("videos", 0) for f in frames)
    api = [c for c in outcome.get("inference") or [] if isinstance(c, dict) and "cache_hits" in c]
    api_line = "no API models"
    if api:
        api_line = f"{sum(c['cache_hits'] for c in api)} requests over {len(api)} cells"
        if api_cells_restored:
            api_line += f" ({api_cells_restored} cells restored from an earlier run)"
    return {"frame-cache hits": f"{hits} of {videos} videos", "API cache hits": api_line}


def summary_markdown(
    run_name: str,
    attempt: int,
    final_state: str,
    wall_seconds: float,
    samples: dict[str, int],
    stages: Sequence[StageStats],
    caches: dict[str, str],
) -> str:
    lines = [
        f"# Run summary: {run_name} (attempt {attempt}, {final_state})\n",
        f"Wall time {wall_seconds:.1f} s.\n",
        "| samples | total | answered now | restored | failed | missing |",
        "|---|---|---|---|---|---|",
        "| | " + " | ".join(str(samples[k]) for k in samples) + " |",
        "",
        "| stage | task runs | cached | ran | failed | retried shards | wall s |",
        "|---|---|---|---|---|---|---|",
        *(
            f"| {s.stage} | {s.runs} | {s.cached} | {s.ran} | {s.failed} | {s.retried} "
            f"| {s.seconds:.2f} |"
            for s in stages
        ),
        "",
        *(f"- {k}: {v}" for k, v in caches.items()),
    ]
    return "\n".join(lines) + "\n"


def publish_run_summary(flow, flow_run, state) -> None:
    """Flow state hook: build the summary and publish it as an artifact of `flow_run`."""
    from prefect.artifacts import create_markdown_artifact
    from prefect.client.orchestration import get_client

    config = EvalConfig.model_validate(flow_run.parameters["config"])
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(flow_run.id)
        attempt = max(run.run_count, 1)
        running = [s for s in client.read_flow_run_states(flow_run.id) if s.type.value == "RUNNING"]
        started = running[-1].timestamp if running else run.start_time
        task_runs = _settled_task_runs(client, flow_run.id, attempt)
    wall = (time.time() - started.timestamp()) if started else 0.0
    outcome = state.result(raise_on_failure=False) if state.is_completed() else None
    stages = stage_stats(task_runs, attempt)
    api_restored = sum(s.cached for s in stages if s.stage in ("infer-api", "infer_api"))
    markdown = summary_markdown(
        run_name=flow_run.name,
        attempt=attempt,
        final_state=state.name,
        wall_seconds=wall,
        samples=sample_counts(config, since=started.timestamp() if started else 0.0),
        stages=stages,
        caches=cache_counts(outcome, api_restored),
    )
    create_markdown_artifact(
        markdown=markdown, key=SUMMARY_KEY, description=f"{flow_run.name}, attempt {attempt}"
    )


def _settled_task_runs(client, flow_run_id, attempt: int, timeout: float = 10.0):
    """Task runs reach the API through events, a fraction of a second after they end:
    read until this attempt's runs are all finished and unchanged for a second."""
    from prefect.client.schemas.filters import FlowRunFilter

    deadline = time.monotonic() + timeout
    previous, stable_since = None, time.monotonic()
    while True:
        runs = [
            _view(tr)
            for tr in client.read_task_runs(
                flow_run_filter=FlowRunFilter(id={"any_": [flow_run_id]})
            )
        ]
        current = [r for r in runs if r.attempt == attempt]
        settled = all(r.state_type in _TERMINAL for r in current)
        if current != previous or not settled:
            previous, stable_since = current, time.monotonic()
        elif time.monotonic() - stable_since >= 1.0:
            return runs
        if time.monotonic() > deadline:
            log.warning("run summary: task runs still changing after %.0f s", timeout)
            return runs
        time.sleep(0.25)


def _stage_label(run: TaskRunView) -> str:
    """The task's name when the run has Prefect's default name (`infer-3f2`), else the
    task function's name (a run named per shard, `infer-m-d-t0-shard1of2`)."""
    if _DEFAULT_RUN_NAME.search(run.name):
        return _DEFAULT_RUN_NAME.sub("", run.name)
    return run.task_key.rsplit("-", 1)[0]


def _view(tr) -> TaskRunView:
    return TaskRunView(
        name=tr.name,
        task_key=tr.task_key,
        state_type=tr.state_type.value if tr.state_type else "",
        state_name=tr.state_name or "",
        run_count=tr.run_count,
        attempt=tr.flow_run_run_count,
        start=tr.start_time,
        end=tr.end_time,
    )
