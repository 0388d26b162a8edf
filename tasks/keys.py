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

from evalcore.config import DatasetSpec, settings_hash
from evalcore.dataset import dataset_fingerprint
from evalcore.stages import PIPELINE_VERSION, log_state
from evalcore.workspace import Workspace


def stage_key(stage: str, *parts: Any) -> str:
    return f"{stage}-v{PIPELINE_VERSION}-{settings_hash(*parts)}"


def inference_key(stage: str, p: dict[str, Any], ids: Sequence[str] | None = None, *extra) -> str:
    """Model spec, data, frames, trial, seed, work dir, and the unit's failed records."""
    model, dataset, ws = p["model"], p["dataset"], p["ws"]
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
        log_state(ws, model.name, dataset, p["trial"], ids).failure_digest,
    )


def refresh_if_gaps(
    ws: Workspace, model: str, dataset: DatasetSpec, trial: int, ids: Sequence[str] | None = None
) -> dict[str, bool]:
    """`with_options` keywords: refresh the cache of a unit whose logs miss a sample."""
    return {"refresh_cache": log_state(ws, model, dataset, trial, ids).has_gaps}
