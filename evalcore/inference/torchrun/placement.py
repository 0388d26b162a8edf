"""Shards placed on other hosts (`inference.placement: pool`): what travels, and how a
host takes one of its own device groups.

A `ShardOrder` is the one value a placed shard is made of: the flow's host builds it
from the cell and the shard, it travels as the parameter of a flow run of the
`eval/shard` deployment (JSON, shown in the UI), and the host whose worker takes the
run rebuilds the same cell and shard from it (`resolve`), refusing to run if they
differ (the dataset changed between the two: the digest of the shard's ids says so).

The order's config holds only the cell's model and dataset, every path in it absolute
(the work dir is shared: the same path on every host), except `local_dir`, which names
each host's own disk.

On its host, a shard takes a free device group under a host-local lock
(`take_device_group`): a worker runs as many shard flows as its `--limit` allows, and
each takes the first group no other shard of that host holds. The lock files say which
host, process and shard hold a group.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from evalcore.cell import Cell, cells_of
from evalcore.config import EvalConfig
from evalcore.inference.torchrun.plan import (
    DeviceGroup,
    Shard,
    dataset_videos,
    device_groups,
    plan_shards,
)
from evalcore.predictions.lock import UnitLock
from evalcore.workspace import Workspace

SHARD_DEPLOYMENT = "eval/shard"  # flow `eval`, deployment `shard` (deployments/prefect.yaml)


class PlacedShardFailed(RuntimeError):
    """A placed shard's flow run did not complete (its host died, it failed, it was
    cancelled or never taken): the shard task fails, and its retry places it again."""


class OrderMismatch(RuntimeError):
    """The host rebuilt another cell or shard than the order names: it would answer the
    wrong samples, so it refuses."""


class ShardOrder(BaseModel):
    """One shard of one cell, to be run on whichever host takes it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    config: EvalConfig  # the cell's model and dataset only; absolute paths
    trial: int
    shard: int
    shards: int
    digest: str  # of the shard's ids (`Shard.digest`)
    cell_key: str  # `Cell.key`
    run: str  # the flow call's mark (`infer_shard`'s `run`)

    @classmethod
    def of(cls, config: EvalConfig, cell: Cell, shard: Shard, run: str) -> ShardOrder:
        model = next(m for m in config.models if m.name == cell.model.name)
        dataset = next(d for d in config.datasets if d.dataset_name == cell.dataset.dataset_name)
        narrowed = config.model_copy(
            update={
                "models": [model],
                "datasets": [_absolute_dataset(dataset)],
                "work_dir": config.work_dir.resolve(),
                "output_dir": config.output_dir.resolve(),
            }
        )
        return cls(
            config=EvalConfig.model_validate(narrowed.model_dump(mode="json")),
            trial=cell.trial,
            shard=shard.index,
            shards=shard.count,
            digest=shard.digest,
            cell_key=cell.key,
            run=run,
        )

    @property
    def label(self) -> str:
        model, dataset = self.config.models[0].name, self.config.datasets[0].dataset_name
        return f"{model} x {dataset} t{self.trial} shard{self.shard}-of-{self.shards}"

    def resolve(self) -> tuple[Cell, Shard, Workspace]:
        """The cell, the shard (its group still to be taken) and the workspace, rebuilt
        here; `OrderMismatch` if they are not the ones the order was made from."""
        cell = next(c for c in cells_of(self.config) if c.trial == self.trial)
        if cell.key != self.cell_key:
            raise OrderMismatch(
                f"{self.label}: this host builds cell key {cell.key}, the order names "
                f"{self.cell_key} (a different package version or config on this host?)"
            )
        plan = plan_shards(dataset_videos(cell.dataset), [DeviceGroup(0)], self.shards)
        shard = next((s for s in plan if s.index == self.shard and s.count == self.shards), None)
        if shard is None or shard.digest != self.digest:
            raise OrderMismatch(
                f"{self.label}: the dataset here gives this shard other samples than the "
                "flow's host gave it (was the TSV changed during the run?)"
            )
        return cell, shard, Workspace.of(self.config)

    def idempotency_key(self, flow_run_id: str, attempt: int) -> str:
        """One flow run per attempt of the shard task: a flow-run retry of the parent
        finds (and waits for) the shard flow run its crashed attempt left running."""
        return f"{flow_run_id}:{self.cell_key}:{self.shards}:{self.shard}:{self.digest}:{attempt}"


def _absolute_dataset(dataset):
    """A dataset spec whose path fields are absolute (the order runs in another cwd)."""
    update = {
        name: Path(value).resolve()
        for name, value in dataset.model_dump().items()
        if isinstance(value, Path)
    }
    return dataset.model_copy(update=update)


def host_device_groups(config: EvalConfig) -> list[DeviceGroup]:
    """This host's device groups: the config's gpus / cpu_groups describe one host."""
    s = config.inference
    return device_groups(s.gpus, s.ranks_per_shard, s.gpus_per_rank, s.cpu_groups)


def device_lock_dir(ws: Workspace) -> Path:
    """Where a host's device-group locks live: its own disk (`local_dir`, required with
    placement pool): a lock on the shared work dir would hold a group on every host."""
    if ws.local_dir is None:
        raise ValueError("local_dir is not set: a host has no place of its own for its locks")
    return Path(ws.local_dir) / "device-groups"


@contextmanager
def take_device_group(
    groups: Sequence[DeviceGroup],
    lock_dir: Path,
    label: str,
    *,
    poll_s: float = 0.5,
    on_wait: Callable[[str], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[DeviceGroup]:
    """The first free group of this host, held (flock, dropped when this process dies)
    while the block runs; waits, polling, while every group is held."""
    told = False
    while True:
        for group in groups:
            lock = UnitLock(lock_dir, f"device-group-{group.index}", label=label, timeout_s=0)
            try:
                lock.acquire()
            except TimeoutError:
                continue
            try:
                yield group
            finally:
                lock.release()
            return
        if not told and on_wait is not None:
            on_wait(f"all {len(groups)} device group(s) of this host are busy (pid {os.getpid()})")
            told = True
        sleep(poll_s)
