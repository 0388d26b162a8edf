"""Inference units: a cell inline, a shard of a cell under torchrun, an API cell.

Each is cached under its `Cell.unit_key` (what it computes plus its retryable
failures), which the flow computes once the frame index's head is written and hands over with
`with_options(cache_key_fn=fixed_key(key))`: a clean finished unit is a cache hit, a
unit with retryable failures runs again, and one whose logs miss a sample is refreshed.
"""

from __future__ import annotations

from dataclasses import asdict

from prefect import get_run_logger, task
from prefect.states import Failed

from evalcore.cell import Cell
from evalcore.config import ApiSettings, InferenceSettings
from evalcore.inference import infer_inline
from evalcore.inference.torchrun.plan import Shard
from evalcore.inference.torchrun.shard import infer_shard
from evalcore.models import Runtime
from evalcore.workspace import Workspace
from tasks.secrets import KEY_RESOLVER, ApiKeyMissing, resolve_api_key


def fixed_key(key: str):
    """A cache_key_fn that returns a key computed by the flow."""

    def cache_key(context, parameters) -> str:
        return key

    return cache_key


@task(name="infer", persist_result=True)
def infer(cell: Cell, ws: Workspace, settings: InferenceSettings) -> dict:
    """Inline, a replica runs on the first of `settings.gpus` (else on the CPU)."""
    gpus = settings.gpus
    runtime = Runtime(device=f"cuda:{gpus[0]}") if gpus else Runtime(device="cpu")
    return asdict(infer_inline(cell, ws, runtime, prefetch=settings.prefetch))


# Tag `gpu` (given by the flow to shards that will run, not to cache hits): a server-side
# concurrency limit on it bounds torchrun jobs across flow runs (docs/operations.md);
# within a run, shards already take one device group at a time.
@task(name="infer-shard", persist_result=True, retry_delay_seconds=1)
def infer_shard_task(
    cell: Cell, shard: Shard, settings: InferenceSettings, ws: Workspace, run: str = ""
) -> dict:
    """`run`: the flow call's mark; its retries share the crash limit of a poison sample."""
    return infer_shard(cell, shard, settings, ws, run).as_dict()


@task(name="infer-api", persist_result=True)
def infer_api(cell: Cell, ws: Workspace, api: ApiSettings) -> dict:
    """One Prefect task per API cell (never per request): the requests go to a Dask
    cluster in batches. The key is resolved here, never a parameter or a result."""
    from evalcore.api.endpoint import parse_endpoint
    from evalcore.api.fanout import KeyUnavailable
    from evalcore.inference.api import infer_api_cell  # here: the HTTP stack, for API cells only

    try:
        api_key = resolve_api_key(parse_endpoint(cell.model.params))
        summary = infer_api_cell(cell, ws, api, api_key, key_resolver=KEY_RESOLVER)
    except (ApiKeyMissing, KeyUnavailable) as exc:  # the user's to fix: no traceback
        message = f"{type(exc).__name__}: {exc}"
        get_run_logger().error("%s: %s", cell.label, message)
        return Failed(message=message)
    get_run_logger().info("%s: %s", cell.label, summary.describe())
    return asdict(summary)
