"""The parent side of one shard: subtract progress, write the to-do list, launch torchrun,
check that every id of the shard ended with a record.

Called once per attempt (a Prefect retry calls it again): each call reads the logs
afresh, so an attempt resumes where the last one stopped, whatever the shard count or
world size of the run that wrote them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from evalcore.config import InferenceSettings
from evalcore.dataset import Sample
from evalcore.frames import FrameFailure
from evalcore.inference.attempts import crash_counts, rank_log_name
from evalcore.inference.frame_index import FrameLookup
from evalcore.inference.launcher import ShardFailed, run_torchrun
from evalcore.inference.runner import frames_for, run_samples
from evalcore.inference.shard_job import ShardJob, ShardPaths
from evalcore.inference.shards import Shard
from evalcore.predictions import PredictionLog, failed, read_predictions

RANK_CRASHED = "RankCrashed"


@dataclass(frozen=True)
class ShardSummary:
    """What a shard task returns (small: Prefect persists it)."""

    model: str
    dataset: str
    trial: int
    shard: int
    shards: int
    device: str
    ids: int
    skipped: int  # answered by an earlier run or attempt
    launched: int  # ids handed to torchrun by this attempt (0: no launch)
    answered: int
    failed: int
    gave_up: int  # crashed their rank max_attempts times: now RankCrashed failures
    model_calls: int
    launch_seconds: float
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ShardCell:
    """Where one model x dataset x trial lives and what its ranks need to know."""

    model: str
    model_kind: str
    model_params: dict[str, Any]
    batch_size: int
    dataset: str
    dataset_json: dict[str, Any]  # the DatasetSpec, for the ranks to load the samples
    trial: int
    frame_index: Path
    frame_cache: Path
    log_dir: Path
    paths: ShardPaths


def run_shard(
    cell: ShardCell,
    samples: Sequence[Sample],
    lookup: FrameLookup,
    shard: Shard,
    settings: InferenceSettings,
) -> ShardSummary:
    started = time.perf_counter()
    by_id = {s.sample_id: s for s in samples}
    previous = read_predictions(cell.log_dir)
    pending = [i for i in shard.ids if not (i in previous and previous[i].ok)]
    crashes = crash_counts(cell.paths.started_dir, cell.log_dir)

    no_frames, todo, gave_up = [], [], []
    for sample_id in pending:
        prev = previous.get(sample_id)
        if isinstance(frames_for(sample_id, lookup), FrameFailure):
            no_frames.append(by_id[sample_id])
        elif prev is not None and prev.error_type == RANK_CRASHED:
            continue  # final: it crashed its rank max_attempts times (see docs/sharding.md)
        elif crashes.get(sample_id, 0) >= settings.max_attempts:
            gave_up.append(sample_id)
        else:
            todo.append(sample_id)

    parent_failed = 0
    if no_frames or gave_up:
        # Recorded here, without a launch: torchrun is only for samples a model can answer.
        with PredictionLog(cell.log_dir / f"shard{shard.index}-parent.jsonl") as log:
            parent_failed = run_samples(no_frames, lookup, _no_model, log, previous).failed
            for sample_id in gave_up:
                n = crashes[sample_id]
                log.append(
                    failed(
                        sample_id,
                        RANK_CRASHED,
                        f"its rank died (crash, kill or watchdog) while answering it in {n} "
                        f"launches; see {cell.paths.shard_dir(shard.index, shard.count)}",
                        attempts=n,
                    )
                )

    answered = failed_n = calls = 0
    launch_seconds = 0.0
    if todo:
        result = _launch(cell, shard, settings, todo, [i for i in todo if i in crashes])
        launch_seconds = result.seconds
        for status in result.statuses.values():
            counts = status.get("summary", {})
            answered += counts.get("answered", 0)
            failed_n += counts.get("failed", 0)
            calls += counts.get("model_calls", 0)

    merged = read_predictions(cell.log_dir)
    missing = [i for i in shard.ids if i not in merged]
    if missing:
        raise ShardFailed(
            f"shard {shard.index}/{shard.count}: {len(missing)} id(s) have no record after "
            f"a clean exit, e.g. {missing[:5]}",
            cell.paths.shard_dir(shard.index, shard.count),
        )
    return ShardSummary(
        model=cell.model,
        dataset=cell.dataset,
        trial=cell.trial,
        shard=shard.index,
        shards=shard.count,
        device=shard.group.label,
        ids=len(shard.ids),
        skipped=len(shard.ids) - len(pending),
        launched=len(todo),
        answered=answered,
        failed=failed_n + parent_failed + len(gave_up),
        gave_up=len(gave_up),
        model_calls=calls,
        launch_seconds=round(launch_seconds, 3),
        seconds=round(time.perf_counter() - started, 3),
    )


def _no_model():
    raise AssertionError("only samples without frames are recorded in the parent")


def _launch(
    cell: ShardCell,
    shard: Shard,
    settings: InferenceSettings,
    todo: list[str],
    suspects: list[str],
):
    nproc = min(settings.ranks_per_shard, len(todo))  # never start a rank with nothing to do
    launch_dir = cell.paths.new_launch_dir(shard.index, shard.count)
    job = ShardJob(
        shard=shard.index,
        shard_count=shard.count,
        model_kind=cell.model_kind,
        model_params=cell.model_params,
        batch_size=cell.batch_size,
        dataset=cell.dataset_json,
        frame_index=str(cell.frame_index),
        frame_cache=str(cell.frame_cache),
        log_dir=str(cell.log_dir),
        started_dir=str(cell.paths.started_dir),
        launch_dir=str(launch_dir),
        todo=todo,
        suspects=suspects,
        device="cpu" if shard.group.is_cpu else "cuda",
        gpus_per_rank=settings.gpus_per_rank,
        process_group=settings.process_group,
        timeout_s=settings.watchdog_s,
        prefetch=settings.prefetch,
    )
    job_path = job.write(launch_dir / "job.json")
    progress = {r: [cell.log_dir / rank_log_name(shard.index, r)] for r in range(nproc)}
    return run_torchrun(
        job_path,
        launch_dir,
        nproc,
        shard.group,
        progress,
        gpus_per_rank=settings.gpus_per_rank,
        deadline_s=settings.deadline_s,
        watchdog_s=settings.watchdog_s,
        startup_s=settings.startup_s,
        grace_s=settings.grace_s,
        label=f"{cell.model}/{cell.dataset}/trial-{cell.trial} shard {shard.index} of "
        f"{shard.count} on {shard.group.label}",
    )
