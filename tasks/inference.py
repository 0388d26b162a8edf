"""Inference of one model x dataset x trial in the flow's process."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from prefect import task
from prefect.context import TaskRunContext

from evalcore.stages import infer_inline
from tasks.keys import inference_key


def infer_cache_key(context: TaskRunContext, p: dict[str, Any]) -> str:
    return inference_key("infer", p)


@task(name="infer", cache_key_fn=infer_cache_key, persist_result=True)
def infer(model, dataset, trial: int, config_seed: int, frames, ws) -> dict:
    return asdict(infer_inline(model, dataset, trial, config_seed, frames, ws))
