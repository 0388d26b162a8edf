"""The shard plan: which samples each shard answers, on which devices, and which rank of
a shard answers which sample.

A shard is the unit of retry: one torchrun job over a fixed list of sample ids. The
plan depends only on the manifest and the settings, never on progress, so a shard's
ids (and hence its cache key) are the same in every run. Progress is subtracted at
launch time (`todo`), and a rank takes the ids whose stable hash falls on it, so no
rank ever reads another rank's progress while it is being written.

Both assignments hash the sample's *video* (`video_key`), not its id: every question
about one video goes to one shard and, inside it, to one rank, which reads the clip's
frames once and can ask them in one request (pack mode). A video's shard does not
depend on the other rows, so appending rows moves no video to another shard.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from evalcore.benchmarks import adapter_of, load_samples
from evalcore.config import DatasetSpec
from evalcore.dataset import Sample


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
    """Shard `index` (0-based, see `shard_label`) of `count` over a fixed, ordered list of
    sample ids."""

    index: int
    count: int
    ids: tuple[str, ...]
    group: DeviceGroup

    @property
    def name(self) -> str:
        return f"shard{self.index}"

    @property
    def label(self) -> str:
        """How every name, message and log line spells the shard: its folder's name."""
        return shard_label(self.index, self.count)

    @property
    def digest(self) -> str:
        """Fingerprint of the id list: part of the shard's cache key."""
        return ids_digest(self.ids)


def shard_label(index: int, count: int) -> str:
    """`shard{index}-of-{count}`, 0-based like the folders, logs and marks on disk
    (`shard1-of-2` is the second of two): the name of the shard in task runs, errors and
    logs is the name of its folder, so what a message names can be found as it is."""
    return f"shard{index}-of-{count}"


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


def video_key(sample: Sample, root: Path) -> str:
    """What ties a sample to its shard and rank: its video file (or frame folder), all
    clips of it together, named relative to the dataset `root` so that the plan is the
    same wherever the data lives; the TSV's `video` when the path could not be resolved."""
    if sample.video_path is None:
        return f"video:{sample.video}"
    return Path(os.path.relpath(sample.video_path, os.path.abspath(root))).as_posix()


def dataset_videos(dataset: DatasetSpec, samples: Sequence[Sample] | None = None) -> dict[str, str]:
    """Sample id -> `video_key`, in manifest order (`samples`: the dataset's, if read)."""
    root = adapter_of(dataset).videos_under(dataset)
    samples = load_samples(dataset) if samples is None else samples
    return {s.sample_id: video_key(s, root) for s in samples}


def bucket(key: str, count: int, purpose: str) -> int:
    """A stable hash of `key` into `count` buckets, the same in every process and run
    (Python's `hash` of a str is salted per process). `purpose` keeps assignments
    independent: with the same hash for shards and ranks, 2 shards x 2 ranks would give
    each shard's videos to one rank only."""
    digest = hashlib.sha256(f"{purpose}\0{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % count


def plan_shards(
    videos: Mapping[str, str], groups: Sequence[DeviceGroup], shards: int | None = None
) -> list[Shard]:
    """Shard k holds the samples whose video hashes to k, in manifest order; `videos`:
    sample id -> video key in manifest order (`dataset_videos`). Shard k runs on group
    k mod G. The count is `shards` (default: one per device group), at most one per
    video; a shard no video hashed to is left out.
    """
    if not groups:
        raise ValueError("no device groups")
    count = min(shards or len(groups), max(1, len(set(videos.values()))))
    ids: list[list[str]] = [[] for _ in range(count)]
    for sample_id, video in videos.items():
        ids[bucket(video, count, "shard")].append(sample_id)
    return [Shard(k, count, tuple(ids[k]), groups[k % len(groups)]) for k in range(count) if ids[k]]


def rank_of(video: str, world_size: int) -> int:
    """The rank of a shard that answers the samples of `video` (a `video_key`)."""
    return bucket(video, world_size, "rank")
