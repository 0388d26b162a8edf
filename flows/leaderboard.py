"""The `leaderboard` flow, deployed as `leaderboard/nightly` on a cron schedule.

It evaluates the configured model x dataset matrix as `eval` subflows, one per dataset
with only the models whose cell is not current (no result, changed model/dataset/
settings, changed sample count, or failed samples), then freezes a dated snapshot and
publishes the leaderboard: files, the PNG chart, and the Prefect artifacts with stable
keys. A cell whose settings changed starts from empty prediction logs (logs are keyed by
the settings, so old answers are kept but never reused); one with failed samples
resumes and retries just those. A failed subflow
does not stop the others or the publishing; the flow run fails at the end.
"""

from __future__ import annotations

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from evalcore.config import EvalConfig
from evalcore.reports.history import cells_to_evaluate
from evalcore.stages import load_all_datasets
from evalcore.workspace import Workspace
from flows.eval import eval_flow
from tasks.reports import publish


@task(name="plan-cells", cache_policy=NO_CACHE)
def plan_cells(config: EvalConfig, ws: Workspace) -> dict[str, dict[str, str]]:
    """Dataset -> {model: why it is evaluated again}."""
    counts = {name: len(samples) for name, samples in load_all_datasets(config).items()}
    plan = cells_to_evaluate(config, ws, counts)
    for dataset in config.datasets:
        for model in config.models:
            why = plan[dataset.dataset_name].get(model.name)
            print(f"{model.name} x {dataset.dataset_name}: {why or 'current, kept'}")
    return plan


@flow(name="leaderboard", log_prints=True)
def leaderboard_flow(config: EvalConfig) -> dict:
    """Re-evaluate what changed, then publish the leaderboard with a dated snapshot."""
    ws = Workspace(config.work_dir, config.output_dir)
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
