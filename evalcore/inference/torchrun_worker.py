"""One torchrun rank of a shard: `python -m evalcore.inference.torchrun_worker JOB.json`.

The rank answers the ids of the job's to-do list whose stable hash falls on it, with
the shared inference loop (`run_samples`), appending to its own prediction log. Ranks
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
from dataclasses import asdict
from pathlib import Path

from evalcore.inference.attempts import StartLog, rank_log_name
from evalcore.inference.pdeathsig import die_with_parent_now
from evalcore.inference.shard_job import RankStatus, ShardJob
from evalcore.inference.shards import rank_of


class MarkedModel:
    """The model, with every sample marked as in flight before the model sees it."""

    def __init__(self, model, marks: StartLog) -> None:
        self.model = model
        self.name = getattr(model, "name", "model")
        self._marks = marks

    def generate(self, requests):
        self._marks.started([r.sample_id for r in requests])
        return self.model.generate(requests)


def answer_share(job: ShardJob, rank: int, world_size: int, marks: StartLog, status: RankStatus):
    """Run this rank's share of the job; returns the `InferenceSummary`."""
    from evalcore.config import DatasetSpec
    from evalcore.frames import FrameCache
    from evalcore.inference import read_frame_index, run_samples
    from evalcore.inference.prefetch import FramePrefetcher
    from evalcore.models.registry import build_model
    from evalcore.predictions import PredictionLog, read_predictions
    from evalcore.stages import load_samples

    todo = set(job.todo)
    suspects = set(job.suspects)
    mine = [
        s
        for s in load_samples(DatasetSpec.model_validate(job.dataset))
        if s.sample_id in todo and rank_of(s.sample_id, world_size) == rank
    ]
    # Samples that crashed a rank before go last and alone, so the rest finish first
    # and a crash can be pinned on one sample.
    first = [s for s in mine if s.sample_id not in suspects]
    last = [s for s in mine if s.sample_id in suspects]
    lookup = read_frame_index(Path(job.frame_index), FrameCache(Path(job.frame_cache)))
    prefetcher = FramePrefetcher(lookup, [s.sample_id for s in first + last], job.prefetch)
    frames = prefetcher.lookup if job.prefetch > 0 else lookup
    log_dir = Path(job.log_dir)
    previous = read_predictions(log_dir)
    model = None

    def build():
        nonlocal model
        if model is None:  # loaded once for both passes
            model = MarkedModel(build_model(job.model_kind, job.model_params), marks)
            status.set("ready")
        return model

    def finished(record) -> None:
        marks.finished(record.sample_id)

    with prefetcher, PredictionLog(log_dir / rank_log_name(job.shard, rank)) as log:
        summary = run_samples(first, frames, build, log, previous, job.batch_size, finished)
        if last:
            summary = summary.add(run_samples(last, frames, build, log, previous, 1, finished))
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
            torch.set_num_threads(1)  # FIELD-NOTES: 2 threads per rank on 2 cores ran 7x slower
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
