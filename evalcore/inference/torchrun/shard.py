"""The parent side of one shard: subtract progress, record what needs no model, write the
to-do list, launch torchrun, check that every id of the shard ended with a record.

The shard may start while its frames are still being extracted: samples whose frames
are known to have failed at launch are recorded here (no launch for them); the ranks
take the rest, each sample as its frames arrive, and record the failures found later.

Called once per attempt (a Prefect retry calls it again): each call reads the logs
afresh, so an attempt resumes where the last one stopped, whatever the shard count or
world size of the run that wrote them. The attempts of one run pass the same `run`
mark: a sample is given up on (`RankCrashed`) only in a run that asked it and saw its
rank die again (`attempts.RunCrashes`), so the next run asks it again.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from evalcore.benchmarks import load_samples
from evalcore.cell import Cell
from evalcore.config import InferenceSettings
from evalcore.dataset import Sample
from evalcore.frames import FrameCache
from evalcore.frames.index import read_frame_index
from evalcore.inference.runner import UnitState, split
from evalcore.inference.torchrun.attempts import RunCrashes, crash_counts, rank_writer
from evalcore.inference.torchrun.job import ShardJob, ShardPaths
from evalcore.inference.torchrun.launch import ShardFailed, run_torchrun
from evalcore.inference.torchrun.plan import Shard
from evalcore.predictions import FailureKind, Journal, PredictionRecord
from evalcore.predictions.lock import UnitLock
from evalcore.workspace import Workspace


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


def shard_paths(cell: Cell, ws: Workspace) -> ShardPaths:
    return ShardPaths(cell.shard_dir(ws).resolve())


def infer_shard(
    cell: Cell, shard: Shard, settings: InferenceSettings, ws: Workspace, run: str = ""
) -> ShardSummary:
    """Answer the pending samples of one shard with a torchrun job (one attempt of the
    run `run`; every call without one counts as the same run)."""
    started = time.perf_counter()
    samples = [s for s in load_samples(cell.dataset) if s.sample_id in set(shard.ids)]
    cache = FrameCache(ws.frame_cache_dir, ws.fingerprint_memo_path)
    index = read_frame_index(cell.frame_index_path(ws), cache)  # so far
    log_dir = cell.log_dir(ws)
    paths = shard_paths(cell, ws)
    unit = f"shard{shard.index}of{shard.count}"  # the lock's file name
    with UnitLock(log_dir, unit, label=f"{cell.label} {shard.label}"):
        state = UnitState.read(cell, samples, index.videos, ws)
        keys = {state.answer_keys[i] for i in shard.ids}
        crashes = crash_counts(paths.started_dir, log_dir)
        this_run = RunCrashes.begin(
            paths.run_file(shard.index, shard.count),
            run,
            {k: n for k, n in crashes.items() if k in keys},
        )
        # a RankCrashed record is final for the run that wrote it, asked again by the next
        pending = {
            i for i in state.pending(shard.ids) if state.answer_keys[i] not in this_run.gave_up
        }
        no_frames, ready = split(samples, state, index)
        todo, gave_up = [], []
        for s in ready:
            key = state.answer_keys[s.sample_id]
            if key in this_run.gave_up:
                continue
            if this_run.exhausted(key, crashes, settings.max_attempts):
                gave_up.append(s)
            else:
                todo.append(s.sample_id)
        if no_frames or gave_up:
            # Recorded here, without a launch: torchrun is only for samples a model can answer.
            with Journal(log_dir, f"shard{shard.index}-parent") as log:
                for record in no_frames:
                    log.append(record)
                for s in gave_up:
                    log.append(
                        _rank_crashed(
                            s, state, crashes, this_run, paths.shard_dir(shard.index, shard.count)
                        )
                    )
            this_run.give_up(state.answer_keys[s.sample_id] for s in gave_up)

        answered = failed_n = calls = 0
        launch_seconds = 0.0
        if todo:
            suspects = [i for i in todo if state.answer_keys[i] in crashes]
            result = _launch(cell, shard, settings, ws, state, todo, suspects)
            launch_seconds = result.seconds
            for status in result.statuses.values():
                counts = status.get("summary", {})
                answered += counts.get("answered", 0)
                failed_n += counts.get("failed", 0)
                calls += counts.get("model_calls", 0)

        after = UnitState.read(cell, samples, index.videos, ws)
        missing = [i for i in shard.ids if i not in after.records]
    if missing:
        raise ShardFailed(
            f"{shard.label}: {len(missing)} id(s) have no record after "
            f"a clean exit, e.g. {missing[:5]}",
            paths.shard_dir(shard.index, shard.count),
        )
    return ShardSummary(
        model=cell.model.name,
        dataset=cell.dataset.dataset_name,
        trial=cell.trial,
        shard=shard.index,
        shards=shard.count,
        device=shard.group.label,
        ids=len(shard.ids),
        skipped=len(shard.ids) - len(pending),
        launched=len(todo),
        answered=answered,
        failed=failed_n + len(no_frames) + len(gave_up),
        gave_up=len(gave_up),
        model_calls=calls,
        launch_seconds=round(launch_seconds, 3),
        seconds=round(time.perf_counter() - started, 3),
    )


def _launch(
    cell: Cell,
    shard: Shard,
    settings: InferenceSettings,
    ws: Workspace,
    state: UnitState,
    todo: list[str],
    suspects: list[str],
):
    nproc = min(settings.ranks_per_shard, len(todo))  # never start a rank with nothing to do
    paths = shard_paths(cell, ws)
    log_dir = cell.log_dir(ws).resolve()
    launch_dir = paths.new_launch_dir(shard.index, shard.count)
    job = ShardJob(
        shard=shard.index,
        shard_count=shard.count,
        model_kind=cell.model.kind,
        model_params=dict(cell.model.params),
        generation=cell.generation.model_dump(mode="json"),
        batch_size=cell.model.batch_size,
        dataset=cell.dataset.model_dump(mode="json"),
        frame_index=str(cell.frame_index_path(ws).resolve()),
        frame_cache=str(ws.frame_cache_dir.resolve()),
        fingerprint_memo=str(ws.fingerprint_memo_path.resolve()),
        log_dir=str(log_dir),
        started_dir=str(paths.started_dir),
        launch_dir=str(launch_dir),
        todo=todo,
        answer_keys={i: state.answer_keys[i] for i in todo},
        attempts={i: state.next_attempt(i) - 1 for i in todo},
        suspects=suspects,
        device="cpu" if shard.group.is_cpu else "cuda",
        gpus_per_rank=settings.gpus_per_rank,
        process_group=settings.process_group,
        timeout_s=settings.watchdog_s,
        prefetch=settings.prefetch,
    )
    job_path = job.write(launch_dir / "job.json")
    progress = {r: [log_dir / f"{rank_writer(shard.index, r)}.jsonl"] for r in range(nproc)}
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
        label=f"{cell.label} {shard.label} on {shard.group.label}",
        preload_modules=_preload_modules(cell.model.kind) if settings.preload else None,
    )


def _rank_crashed(
    sample: Sample,
    state: UnitState,
    crashes: Mapping[str, int],
    this_run: RunCrashes,
    shard_dir: Path,
) -> PredictionRecord:
    """The `RankCrashed` record of a sample given up on; its attempts: its crashes under
    this answer key (at least one more than its last record's, so the cache key moves)."""
    key = state.answer_keys[sample.sample_id]
    n, here = crashes[key], this_run.in_run(key, crashes)
    earlier = f", {n - here} of them in earlier runs" if n > here else ""
    return state.failure(
        sample,
        FailureKind.RankCrashed,
        f"its rank died (crash, kill or watchdog) while answering it in {n} launches{earlier}; "
        f"not asked again in this run (the next run or a flow-run retry asks it once more); "
        f"see {shard_dir}",
        tries=max(1, n - state.next_attempt(sample.sample_id, 0)),
    )


def _preload_modules(kind: str) -> list[str]:
    """What a rank imports: the worker's modules, then the model kind's (if it imports
    here; else the rank imports it itself, and says why it failed)."""
    from evalcore.inference.torchrun.rank import PRELOAD_MODULES
    from evalcore.models import kind_modules

    try:
        return [*PRELOAD_MODULES, *kind_modules(kind)]
    except (ImportError, AttributeError, KeyError):
        return list(PRELOAD_MODULES)
