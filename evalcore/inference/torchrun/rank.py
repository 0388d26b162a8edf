"""One torchrun rank of a shard: `python -m evalcore.inference.torchrun.rank JOB.json`.

The rank answers the ids of the job's to-do list whose video's stable hash falls on
it (`shards.rank_of`), with the shared inference loop (`run_unit`), as their frames
arrive in the frame index, appending to its own prediction log. While it waits for
frames it rewrites its phase file now and then, which the parent's watchdog counts as
progress (a rank stuck in the model writes nothing). Ranks
never talk to each other: a rank that dies cannot block another on a collective, and
the parent learns everything it needs from the logs. A process group is created only
if the job asks for one (a model that shards itself across ranks), with a timeout.

`@record` writes an uncaught exception to torchrun's per-rank error file, which the
parent quotes in the shard's failure message.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from dataclasses import asdict
from pathlib import Path

from evalcore.benchmarks import adapter_of, load_samples
from evalcore.inference.torchrun.attempts import StartLog, rank_writer
from evalcore.inference.torchrun.job import RankStatus, ShardJob
from evalcore.inference.torchrun.plan import dataset_videos, rank_of
from evalcore.processes import die_with_parent_now

HEARTBEAT_S = 5.0  # how often a rank waiting for frames says it is alive

# What a rank imports before it can answer, for a preload server to import once
# (evalcore.inference.torchrun.preload): torch, torchrun's module, this module and the modules
# its functions import when they run.
PRELOAD_MODULES = (
    "torch",
    "torch.distributed.run",
    "torch.distributed.elastic.multiprocessing.errors",
    "evalcore.inference.torchrun.rank",
    "evalcore.config",
    "evalcore.frames",
    "evalcore.frames.index",
    "evalcore.inference.prefetch",
    "evalcore.inference.replica",
    "evalcore.inference.runner",
    "evalcore.models.base",
    "evalcore.predictions",
)


class MarkedModel:
    """The model, with every sample marked as in flight before the model sees it."""

    def __init__(self, model, marks: StartLog, answer_keys: dict[str, str]) -> None:
        self.model = model
        self.name = getattr(model, "name", "model")
        self._marks = marks
        self._keys = answer_keys

    def generate(self, requests, generation):
        ids = [i for r in requests for i in (r.pack_ids or (r.sample_id,))]
        self._marks.started([self._keys[i] for i in ids])
        return self.model.generate(requests, generation)


def rank_runtime(job: ShardJob, rank: int, world_size: int):
    """The devices this rank sees: torchrun's --virtual-local-rank (one GPU) or
    `_pin_devices` (several) leave them numbered from 0."""
    from evalcore.models import Runtime

    if job.device == "cpu":
        return Runtime(device="cpu", rank=rank, world_size=world_size)
    devices = tuple(f"cuda:{i}" for i in range(job.gpus_per_rank))
    return Runtime(device=devices[0], devices=devices, rank=rank, world_size=world_size)


def answer_share(job: ShardJob, rank: int, world_size: int, marks: StartLog, status: RankStatus):
    """Run this rank's share of the job; returns the `InferenceSummary`."""
    from evalcore.config import DatasetSpec
    from evalcore.frames import FrameCache
    from evalcore.frames.index import read_frame_index
    from evalcore.inference.prefetch import read_ahead
    from evalcore.inference.replica import Replica
    from evalcore.inference.runner import UnitState, run_unit
    from evalcore.models import GenerationConfig
    from evalcore.predictions import Journal

    todo = set(job.todo)
    suspects = set(job.suspects)
    dataset = DatasetSpec.model_validate(job.dataset)
    benchmark = adapter_of(dataset)
    samples = load_samples(dataset)
    videos = dataset_videos(dataset, samples)
    mine = [
        s
        for s in samples
        if s.sample_id in todo and rank_of(videos[s.sample_id], world_size) == rank
    ]
    by_id = {s.sample_id: s for s in mine}
    cache = FrameCache(Path(job.frame_cache), Path(job.fingerprint_memo))
    index = read_frame_index(Path(job.frame_index), cache)
    # Samples that crashed a rank before go last and alone, so the rest finish first
    # and a crash can be pinned on one sample.
    first = [s for s in mine if s.sample_id not in suspects]
    last = [s for s in mine if s.sample_id in suspects]
    prefetcher, index = read_ahead(index, by_id, job.prefetch)
    state = UnitState(job.answer_keys, {}, job.attempts)
    generation = GenerationConfig.model_validate(job.generation)
    replica = Replica(
        job.model_kind,
        job.model_params,
        rank_runtime(job, rank, world_size),
        on_ready=lambda: status.set("ready"),
    )
    marked: MarkedModel | None = None

    def model() -> MarkedModel:
        nonlocal marked
        if marked is None:  # loaded once for both passes
            marked = MarkedModel(replica(), marks, job.answer_keys)
        return marked

    def finished(record) -> None:
        marks.finished(record.answer_key)
        prefetcher.release(record.sample_id)

    last_beat = time.monotonic()

    def waiting() -> None:  # for frames: alive, though no record is written
        nonlocal last_beat
        if time.monotonic() - last_beat >= min(HEARTBEAT_S, job.timeout_s / 4):
            status.beat()
            last_beat = time.monotonic()

    log_dir = Path(job.log_dir)
    with replica, prefetcher, Journal(log_dir, rank_writer(job.shard, rank)) as log:
        args = (state, index, model, generation, log, benchmark)
        summary = run_unit(
            first, *args, job.batch_size, finished, pack=dataset.pack, on_wait=waiting
        )
        if last:  # suspects go alone: unpacked
            summary = summary.add(run_unit(last, *args, 1, finished, on_wait=waiting))
    return summary


def _pin_devices(job: ShardJob) -> None:
    """With several GPUs per rank, each rank keeps its own slice of the group's GPUs
    (torchrun's --virtual-local-rank covers the one-GPU case). Before CUDA starts."""
    if job.device != "cuda" or job.gpus_per_rank == 1:
        return
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    mine = visible[local * job.gpus_per_rank : (local + 1) * job.gpus_per_rank]
    os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(mine)


def _init_process_group(job: ShardJob) -> None:
    from datetime import timedelta

    import torch
    import torch.distributed as dist

    backend = "nccl" if job.device == "cuda" else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(0)
    dist.init_process_group(backend, timeout=timedelta(seconds=job.timeout_s))


def _main(argv: list[str]) -> int:
    from torch.distributed.elastic.multiprocessing.errors import record

    @record
    def run() -> int:
        import torch

        rank = int(os.environ.get("RANK", "0"))
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        job = ShardJob.read(Path(argv[0]))
        status = RankStatus(Path(job.launch_dir), rank)
        status.set("started")
        marks = StartLog(Path(job.started_dir) / f"shard{job.shard}-rank{rank}.txt")

        def on_sigterm(signum, frame):  # torchrun or the parent stops the shard
            marks.interrupted()
            os._exit(128 + signum)

        signal.signal(signal.SIGTERM, on_sigterm)
        if job.device == "cpu":
            torch.set_num_threads(1)  # measured: 2 threads per rank on 2 cores ran 7x slower
        _pin_devices(job)
        if job.process_group:
            _init_process_group(job)
        try:
            summary = answer_share(job, rank, world_size, marks, status)
        finally:
            marks.close()
        status.set("done", summary=asdict(summary))
        if job.process_group:
            import torch.distributed as dist

            dist.destroy_process_group()
        return 0

    return run()


if __name__ == "__main__":
    die_with_parent_now()  # first: torchrun dying must take this rank with it
    sys.exit(_main(sys.argv[1:]))
