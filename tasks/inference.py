"""Inference of one model x dataset x trial in the flow's process."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from prefect import task
from prefect.context import TaskRunContext

from evalcore.dataset import dataset_fingerprint
from evalcore.stages import failure_digest, infer_inline
from tasks.keys import stage_key


def infer_cache_key(context: TaskRunContext, p: dict[str, Any]) -> str:
    """Model, data, frames, trial, and the failed records so far: a clean finished cell is
    a cache hit; one that ended with failures runs again and retries just those."""
    model, dataset, ws = p["model"], p["dataset"], p["ws"]
    return stage_key(
        "infer",
        model,
        dataset_fingerprint(dataset.tsv),
        dataset.dataset_name,
        dataset.limit,
        p["frames"],
        p["trial"],
        p["config_seed"],
        str(ws.work_dir.resolve()),
        failure_digest(ws, model.name, dataset.dataset_name, p["trial"]),
    )


@task(name="infer", cache_key_fn=infer_cache_key, persist_result=True)
def infer(model, dataset, trial: int, config_seed: int, frames, ws) -> dict:
    return asdict(infer_inline(model, dataset, trial, config_seed, frames, ws))
