"""Sharded local inference: one Prefect task per shard, each attempt a fresh torchrun.

A shard's result is cached under its model, data, frames, trial and id list, plus the
failed records among its ids: a re-run (or `prefect flow-run retry`) skips finished
shards and recomputes a failed one, which resumes from the durable logs.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from prefect import allow_failure, task
from prefect.context import TaskRunContext
from prefect.futures import PrefectFuture

from evalcore.config import EvalConfig, ModelSpec
from evalcore.stages import infer_shard, inference_device_groups, plan_cell_shards
from evalcore.workspace import Workspace
from tasks.keys import inference_key, refresh_if_gaps


def shard_cache_key(context: TaskRunContext, p: dict[str, Any]) -> str:
    shard = p["shard"]
    # shard.digest: which ids (the shard count changes it, the device group does not)
    return inference_key("infer-shard", p, shard.ids, shard.digest)


# Tag `gpu`: a server-side concurrency limit on it bounds torchrun jobs across flow runs
# (docs/operations.md); within a run, shards already take one device group at a time.
@task(
    name="infer-shard",
    tags=["gpu"],
    cache_key_fn=shard_cache_key,
    persist_result=True,
    retry_delay_seconds=1,
)
def infer_shard_task(model, dataset, trial: int, config_seed: int, frames, inference, shard, ws):
    return infer_shard(model, dataset, trial, config_seed, frames, inference, shard, ws).as_dict()


def submit_shards(
    config: EvalConfig,
    ws: Workspace,
    frames: dict[str, PrefectFuture],
    result_storage: str | Path,
    models: list[ModelSpec] | None = None,
) -> list[PrefectFuture]:
    """Submit every shard of every local model x dataset x trial.

    Shards take the device groups in turn; a shard waits for the previous shard on its
    group (finished or failed: one bad shard stops nothing else), so at most one shard
    runs per group and all groups work side by side.
    """
    storage = Path(result_storage)  # a str would name a Prefect block (FIELD-NOTES)
    groups = inference_device_groups(config.inference)
    previous: dict[int, PrefectFuture] = {}
    futures = []
    for dataset in config.datasets:
        plan = plan_cell_shards(dataset, config.inference)
        for model in models if models is not None else config.models:
            for trial in range(config.trials):
                for shard in plan:
                    group = groups[len(futures) % len(groups)]
                    wait = [frames[dataset.dataset_name]]
                    if group.index in previous:
                        wait.append(allow_failure(previous[group.index]))
                    name = (
                        f"infer-{model.name}-{dataset.dataset_name}-t{trial}"
                        f"-shard{shard.index}of{shard.count}"
                    )
                    future = infer_shard_task.with_options(
                        task_run_name=name,
                        result_storage=storage,
                        retries=config.inference.retries,
                        **refresh_if_gaps(
                            ws, model, dataset, config.frames, config.seed, trial, shard.ids
                        ),
                    ).submit(
                        model,
                        dataset,
                        trial,
                        config.seed,
                        config.frames,
                        config.inference,
                        replace(shard, group=group),
                        ws,
                        wait_for=wait,
                    )
                    previous[group.index] = future
                    futures.append(future)
    return futures
