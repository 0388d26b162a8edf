"""Inference units: a cell inline, a shard of a cell under torchrun, an API cell, and
their submission (`submit_units`).

Each unit is cached under its `Cell.unit_key` (what it computes plus its retryable
failures), computed once the frame index's head is written (`unit_cache_key`): a clean
finished unit is a cache hit, a unit with retryable failures runs again, and one whose
logs miss a sample is refreshed (deleted logs are never shadowed by a persisted result).
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from pathlib import Path

from prefect import allow_failure, get_run_logger, task
from prefect.futures import PrefectFuture
from prefect.results import ResultStore, resolve_result_storage
from prefect.states import Failed

from evalcore.cell import Cell
from evalcore.config import ApiSettings, EvalConfig, InferenceSettings
from evalcore.inference import infer_inline
from evalcore.inference.runner import unit_cache_key
from evalcore.inference.torchrun.placement import ShardOrder, host_device_groups
from evalcore.inference.torchrun.plan import Shard, dataset_videos, plan_shards
from evalcore.inference.torchrun.shard import infer_shard, shard_paths
from evalcore.models import Runtime
from evalcore.storage import StorageError
from evalcore.workspace import Workspace
from tasks.frames import FrameExtraction
from tasks.placement import run_placed_shard
from tasks.secrets import KEY_RESOLVER, ApiKeyMissing, endpoint_tag, resolve_api_key


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
    cell: Cell,
    shard: Shard,
    settings: InferenceSettings,
    ws: Workspace,
    run: str = "",
    order: ShardOrder | None = None,
) -> dict:
    """`run`: the flow call's mark; its retries share the crash limit of a poison sample.
    With an `order` (placement pool), the shard runs on a host of the `gpu` pool."""
    if order is not None:
        return run_placed_shard(order, shard_paths(cell, ws))
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


@dataclass
class Units:
    """The inference units of a run, by cell number (a cell whose extraction failed before
    its index began has none), and whether any of them computes (is not a cache hit)."""

    by_cell: dict[int, list[PrefectFuture]] = field(default_factory=dict)
    computing: bool = False

    def futures(self) -> list[PrefectFuture]:
        return [f for futures in self.by_cell.values() for f in futures]


def submit_units(
    config: EvalConfig, ws: Workspace, cells: list[Cell], extractions: dict[Path, FrameExtraction]
) -> Units:
    """Every cell's units, in dataset order: a dataset's cells go once its frame index has
    begun (`FrameExtraction.begun`), while its frames are decoded; each unit then takes
    frames as they arrive."""
    units = Units()
    persisted = _Persisted(config.results_storage or ws.prefect_results_dir.resolve())
    shards = _ShardQueue(config, persisted)
    for n, cell in enumerate(cells):
        if not extractions[cell.frame_index_path(ws)].begun():
            continue  # its extraction failed first: its cells are not scored
        units.by_cell[n], computes = _submit_cell(cell, config, ws, persisted, shards)
        units.computing = units.computing or computes
    return units


def check_results_storage(config: EvalConfig) -> None:
    """`StorageError` (exit 2, before any work) if `results_storage` names a block this
    server does not have, or one that cannot hold results."""
    if config.results_storage is None:
        return
    try:
        block = resolve_result_storage(config.results_storage)
    except (ValueError, KeyError) as exc:
        raise StorageError(
            f"results_storage: no block {config.results_storage!r} on this Prefect server "
            f"({exc}); create it first (docs/cluster.md)"
        ) from None
    if not hasattr(block, "read_path") or not hasattr(block, "write_path"):
        raise StorageError(
            f"results_storage: {config.results_storage!r} is not a storage block (it "
            "cannot read and write paths)"
        )


@dataclass(frozen=True)
class _Persisted:
    """Where unit results persist: a folder (a Path), or a storage block every host reads
    (a str: `config.results_storage`, e.g. `s3-bucket/evalcore-results`), and the options
    that key one unit's result there."""

    results: Path | str

    @cached_property
    def store(self) -> ResultStore:
        return ResultStore(result_storage=resolve_result_storage(self.results))

    def options(self, cell: Cell, ws: Workspace, kind: str, ids=None) -> tuple[dict, bool]:
        """A unit's cache options, and whether its persisted result stands (a cache hit:
        Prefect will not run it), asked of the storage itself as Prefect will ask it."""
        key, gaps = unit_cache_key(cell, ws, kind, ids)
        options = dict(result_storage=self.results, cache_key_fn=_fixed(key), refresh_cache=gaps)
        return options, not gaps and self.store.exists(key)


def _fixed(key: str):
    """A cache_key_fn that returns a key computed before submission."""

    def cache_key(context, parameters) -> str:
        return key

    return cache_key


def _submit_cell(
    cell: Cell, config: EvalConfig, ws: Workspace, persisted: _Persisted, shards: _ShardQueue
) -> tuple[list[PrefectFuture], bool]:
    """The units of one cell: one task inline or per API cell, one per shard under torchrun."""
    if cell.device_class == "api":
        options, cached = persisted.options(cell, ws, "infer-api")
        future = infer_api.with_options(
            tags=[endpoint_tag(cell.model)], task_run_name=f"infer {cell.label}", **options
        ).submit(cell, ws, config.api)
        return [future], not cached
    if config.inference.launcher == "inline":
        options, cached = persisted.options(cell, ws, "infer")
        future = infer.with_options(task_run_name=f"infer {cell.label}", **options).submit(
            cell, ws, config.inference
        )
        return [future], not cached
    return shards.submit(cell, ws)


class _ShardQueue:
    """Shards take the device groups in turn; a shard waits for the previous shard on its
    group (finished or failed: one bad shard stops nothing else), so at most one shard
    runs per group and all groups work side by side."""

    def __init__(self, config: EvalConfig, persisted: _Persisted) -> None:
        self.config = config
        self.settings = config.inference
        self.persisted = persisted
        self.groups = host_device_groups(config)  # the flow's host: local shards
        self.previous: dict[int, PrefectFuture] = {}
        self.count = 0
        # this flow call (a run, or a flow-run retry's attempt): a sample that crashed its
        # rank max_attempts times in an earlier run is asked again in this one
        self.run = uuid.uuid4().hex

    def submit(self, cell: Cell, ws: Workspace) -> tuple[list[PrefectFuture], bool]:
        futures, computes = [], False
        for shard in plan_shards(dataset_videos(cell.dataset), self.groups, self.settings.shards):
            group = self.groups[self.count % len(self.groups)]
            self.count += 1
            wait_for = []
            if group.index in self.previous:
                wait_for.append(allow_failure(self.previous[group.index]))
            options, cached = self.persisted.options(
                cell, ws, f"infer-shard-{shard.digest}", shard.ids
            )
            computes = computes or not cached
            order = None
            if self.settings.placement == "pool":  # the host's worker takes a group there
                order, wait_for = ShardOrder.of(self.config, cell, shard, self.run), []
            future = infer_shard_task.with_options(
                task_run_name=f"infer {cell.label} {shard.label}",
                tags=[] if cached else ["gpu"],  # a cache hit takes no gpu slot
                retries=self.settings.retries,
                **options,
            ).submit(
                cell,
                replace(shard, group=group),
                self.settings,
                ws,
                self.run,
                order,
                wait_for=wait_for,
            )
            self.previous[group.index] = future
            futures.append(future)
        return futures, computes
