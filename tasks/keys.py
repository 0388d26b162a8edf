"""Explicit cache keys. Prefect's default includes the flow-run id (nothing resumes across
runs) and `INPUTS` alone ignores which task it is; these name the stage and a version.

An inference unit (a cell, or a shard of one) is keyed by what it computes plus the
failed records among its ids. That alone would trust a persisted result after its
logs were deleted, so `refresh_if_gaps` makes the flow run a unit whose logs miss a
sample even when Prefect holds a result for its key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from evalcore.config import DatasetSpec, ModelSpec, settings_hash
from evalcore.dataset import dataset_fingerprint
from evalcore.frames import FrameSettings
from evalcore.stages import PIPELINE_VERSION, cell_log_dir, log_state
from evalcore.workspace import Workspace


def stage_key(stage: str, *parts: Any) -> str:
    return f"{stage}-v{PIPELINE_VERSION}-{settings_hash(*parts)}"


def inference_key(stage: str, p: dict[str, Any], ids: Sequence[str] | None = None, *extra) -> str:
    """Model spec, data, frames, trial, seed, work dir, and the unit's failed records."""
    model, dataset, ws = p["model"], p["dataset"], p["ws"]
    log_dir = cell_log_dir(ws, model, dataset, p["frames"], p["config_seed"], p["trial"])
    return stage_key(
        stage,
        model,
        dataset_fingerprint(dataset.tsv),
        dataset.dataset_name,
        dataset.limit,
        p["frames"],
        p["trial"],
        p["config_seed"],
        str(ws.work_dir.resolve()),
        *extra,
        log_state(log_dir, dataset, ids).failure_digest,
    )


def refresh_if_gaps(
    ws: Workspace,
    model: ModelSpec,
    dataset: DatasetSpec,
    frames: FrameSettings,
    seed: int,
    trial: int,
    ids: Sequence[str] | None = None,
) -> dict[str, bool]:
    """`with_options` keywords: refresh the cache of a unit whose logs miss a sample."""
    log_dir = cell_log_dir(ws, model, dataset, frames, seed, trial)
    return {"refresh_cache": log_state(log_dir, dataset, ids).has_gaps}
