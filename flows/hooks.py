"""Flow state hooks. The run summary is a markdown artifact on every `eval` flow run,
failed ones included: a hook (`on_completion` and `on_failure`), not a task at the end
of the flow, so a run that failed still says which stage failed and what is already
done; after `prefect flow-run retry` the new attempt's summary shows what was restored
from cache and which shards ran again. Key `eval-run-summary`: one version per flow run
attempt, the latest on top (`prefect artifact inspect eval-run-summary`).
"""

from __future__ import annotations

import logging
import time
from collections import Counter

from evalcore.config import EvalConfig, describe_errors
from evalcore.reports.run_summary import (
    _TERMINAL,
    SUMMARY_KEY,
    TaskRunView,
    cache_counts,
    changes_markdown,
    sample_counts,
    stage_stats,
    summary_markdown,
)

log = logging.getLogger(__name__)


def end_orphaned_task_runs(flow, flow_run, state) -> None:
    """Flow state hook (running): end as Crashed the task runs left open by crashed flow
    runs and by this run's earlier attempts (`flows.cli.zombies.end_orphaned_task_runs`), so
    no bar runs on for ever in a timeline. It never raises: the run goes on regardless."""
    from flows.cli.zombies import end_orphaned_task_runs as end_them

    try:
        if n := end_them(flow_run.id):
            log.info("ended %d task run(s) left open by crashed flow runs as Crashed", n)
    except Exception:  # noqa: BLE001 - tidying the UI must never stop a run
        log.exception("task runs of crashed flow runs could not be ended")


def publish_run_summary(flow, flow_run, state) -> None:
    """Flow state hook (completed, failed, crashed): build the summary and publish it as
    an artifact of `flow_run`. It never raises: a run whose parameters were invalid gets
    a summary that says so, and a hook error is logged, not added to the run's."""
    try:
        _publish_run_summary(flow_run, state)
    except Exception:  # noqa: BLE001 - a summary must never fail (or mask) the run itself
        log.exception("run summary for %s could not be published", flow_run.name)


def _publish_run_summary(flow_run, state) -> None:
    from prefect.artifacts import create_markdown_artifact
    from prefect.client.orchestration import get_client
    from pydantic import ValidationError

    try:
        config = EvalConfig.model_validate(flow_run.parameters["config"])
    except (KeyError, ValidationError) as exc:
        # describe_errors never echoes a value (a pasted key must not reach an artifact)
        why = describe_errors(exc, "config") if isinstance(exc, ValidationError) else str(exc)
        create_markdown_artifact(
            markdown=f"# Run summary: {flow_run.name} ({state.name})\n\n"
            f"The run's parameters are not a valid config, so nothing ran:\n\n```\n{why}\n```\n",
            key=SUMMARY_KEY,
            description=f"{flow_run.name}: invalid parameters",
        )
        return
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
        changes=_changes(config),
    )
    create_markdown_artifact(
        markdown=markdown, key=SUMMARY_KEY, description=f"{flow_run.name}, attempt {attempt}"
    )


def _changes(config: EvalConfig) -> str:
    """The flips since the last snapshot; a failure to read them costs that section only."""
    try:
        return changes_markdown(config)
    except Exception:  # noqa: BLE001 - the rest of the summary still matters
        log.exception("run summary: changes since the last snapshot could not be listed")
        return ""


def _settled_task_runs(client, flow_run_id, attempt: int, timeout: float = 10.0):
    """Task runs reach the API through events, a fraction of a second after they end:
    read until every task run this attempt created (counted in its flow-run context,
    which the hook runs in) is there and finished. Outside that context, until this
    attempt's runs are all finished and unchanged for a second."""
    from prefect.client.schemas.filters import FlowRunFilter

    expected = _created_task_runs(flow_run_id)
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
        if expected is not None:
            seen = Counter(r.task_key for r in current)
            if settled and all(seen[key] >= n for key, n in expected.items()):
                return runs
        elif current != previous or not settled:
            previous, stable_since = current, time.monotonic()
        elif time.monotonic() - stable_since >= 1.0:
            return runs
        if time.monotonic() > deadline:
            log.warning("run summary: task runs still changing after %.0f s", timeout)
            return runs
        time.sleep(0.05 if expected is not None else 0.25)


def _created_task_runs(flow_run_id) -> dict[str, int] | None:
    """Task key -> task runs this process created in the flow run, from its run context
    (Prefect numbers each task's calls there); None outside the flow run's context."""
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    if context is None or context.flow_run is None or context.flow_run.id != flow_run_id:
        return None
    counts = context.task_run_dynamic_keys
    return {key: n + 1 for key, n in counts.items() if isinstance(n, int)}


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
