"""The `leaderboard` flow, deployed as `leaderboard/nightly` on a cron schedule.

It evaluates the configured model x dataset matrix as `eval` subflows, one per dataset
with only the models whose cell is not current (no report yet, a sample without a
record under its current answer key, a retryable failure, or with a judge, answers it
has not scored), then freezes a dated snapshot (with each cell's per-sample outcomes)
and publishes the leaderboard: files, the PNG charts, and the Prefect artifacts with
stable keys. Each cell's change since the
previous snapshot is tested on the same questions (paired, clustered by video) and
marked significant or not; each `eval` subflow's run summary lists the questions that
flipped. Only the samples whose answer key changed are asked again (a
replaced video: its questions; changed model settings: all). A failed subflow does not
stop the others or the publishing; the flow run fails at the end.
"""

from __future__ import annotations

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from evalcore.config import EvalConfig
from evalcore.reports.history import cells_to_evaluate
from evalcore.storage import check_storage
from evalcore.workspace import Workspace
from flows.eval import eval_flow
from flows.hooks import end_orphaned_task_runs
from tasks.reports import publish


@task(name="plan-cells", task_run_name="plan cells", cache_policy=NO_CACHE)
def plan_cells(config: EvalConfig, ws: Workspace) -> dict[str, dict[str, str]]:
    """Dataset -> {model: why it is evaluated again}."""
    plan = cells_to_evaluate(config, ws)
    for dataset in config.datasets:
        for model in config.models:
            why = plan[dataset.dataset_name].get(model.name)
            print(f"{model.name} x {dataset.dataset_name}: {why or 'current, kept'}")
    return plan


@flow(name="leaderboard", log_prints=True, on_running=[end_orphaned_task_runs])
def leaderboard_flow(config: EvalConfig) -> dict:
    """Re-evaluate what changed, then publish the leaderboard with a dated snapshot."""
    check_storage(config)  # before the plan fingerprints any video
    ws = Workspace.of(config)
    plan = plan_cells(config, ws)
    failed = []
    for dataset in config.datasets:
        models = [m for m in config.models if m.name in plan[dataset.dataset_name]]
        if models:
            cells = config.model_copy(update={"datasets": [dataset], "models": models})
            if eval_flow(cells, return_state=True).is_failed():
                failed.append(dataset.dataset_name)
    board = publish(ws, snapshot=True)
    if failed:
        raise RuntimeError(f"evaluation failed for dataset(s) {', '.join(failed)}")
    return {"leaderboard": board, "evaluated": plan}
