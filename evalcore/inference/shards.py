"""The shard plan: which samples each shard answers, on which devices, and which rank of
a shard answers which sample.

A shard is the unit of retry: one torchrun job over a fixed list of sample ids. The
plan depends only on the manifest and the settings, never on progress, so a shard's
ids (and hence its cache key) are the same in every run. Progress is subtracted at
launch time (`todo`), and a rank takes the ids whose stable hash falls on it, so no
rank ever reads another rank's progress while it is being written.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class DeviceGroup:
    """The devices one shard runs on: `gpus` (CUDA ordinals) or, when empty, the CPU."""

    index: int
    gpus: tuple[int, ...] = ()

    @property
    def is_cpu(self) -> bool:
        return not self.gpus

    @property
    def label(self) -> str:
        return "cpu" if self.is_cpu else "gpu" + ",".join(map(str, self.gpus))

    @property
    def cuda_visible_devices(self) -> str:
        """The value for the shard's torchrun; empty on CPU, so no rank touches a GPU."""
        return ",".join(map(str, self.gpus))


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `count` over a fixed, ordered list of sample ids."""

    index: int
    count: int
    ids: tuple[str, ...]
    group: DeviceGroup

    @property
    def name(self) -> str:
        return f"shard{self.index}"

    @property
    def digest(self) -> str:
        """Fingerprint of the id list: part of the shard's cache key."""
        return ids_digest(self.ids)


def ids_digest(ids: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16]


def device_groups(
    gpus: Sequence[int],
    ranks_per_shard: int,
    gpus_per_rank: int = 1,
    cpu_groups: int | None = None,
) -> list[DeviceGroup]:
    """Split the GPUs into groups of ranks_per_shard x gpus_per_rank, in the given order.

    Without GPUs, a CPU group is `ranks_per_shard` cores (one thread per rank), so the
    default count is the usable cores // ranks_per_shard, at least one.
    """
    if not gpus:
        n = cpu_groups or max(1, usable_cores() // ranks_per_shard)
        return [DeviceGroup(i) for i in range(n)]
    size = ranks_per_shard * gpus_per_rank
    if len(gpus) % size:
        raise ValueError(f"{len(gpus)} GPUs do not split into groups of {size}")
    return [
        DeviceGroup(i, tuple(gpus[i * size : (i + 1) * size])) for i in range(len(gpus) // size)
    ]


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def plan_shards(
    sample_ids: Sequence[str], groups: Sequence[DeviceGroup], shards: int | None = None
) -> list[Shard]:
    """Contiguous, balanced slices of the manifest (questions on one video stay
    together, so a rank reuses what it just read); shard k runs on group k mod G.

    Empty shards (more shards than samples) are left out.
    """
    if not groups:
        raise ValueError("no device groups")
    count = min(shards or len(groups), max(1, len(sample_ids)))
    base, extra = divmod(len(sample_ids), count)
    plan, start = [], 0
    for k in range(count):
        size = base + (k < extra)
        ids = tuple(sample_ids[start : start + size])
        start += size
        if ids:
            plan.append(Shard(k, count, ids, groups[k % len(groups)]))
    return plan


def rank_of(sample_id: str, world_size: int) -> int:
    """The rank that answers `sample_id`: a hash that is the same in every process and
    run (Python's `hash` of a str is salted per process)."""
    digest = hashlib.sha256(sample_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") % world_size


def ids_for_rank(ids: Sequence[str], rank: int, world_size: int) -> list[str]:
    return [i for i in ids if rank_of(i, world_size) == rank]
