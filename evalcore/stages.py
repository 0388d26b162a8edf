"""The pipeline's stages as plain functions: each Prefect task wraps exactly one of these.

Every stage reads and writes durable state through `Workspace`, so any stage can be
re-run alone and picks up where the last run stopped.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from tqdm import tqdm

from evalcore.atomic import atomic_write_text
from evalcore.config import DatasetSpec, EvalConfig, InferenceSettings, ModelSpec, settings_hash
from evalcore.dataset import Sample, dataset_fingerprint, load_tsv
from evalcore.frames import FrameCache, FrameSettings, VideoJob, extract_videos
from evalcore.inference import (
    InferenceSummary,
    pending_samples,
    read_frame_index,
    run_samples,
    write_frame_index,
)
from evalcore.inference.frame_index import video_job
from evalcore.inference.shard_job import ShardPaths
from evalcore.inference.sharded import ShardCell, ShardSummary, run_shard
from evalcore.inference.shards import DeviceGroup, Shard, device_groups, plan_shards
from evalcore.models.registry import accepts_seed, build_model, resolve_factory
from evalcore.predictions import PredictionLog, failure_digest, has_gaps, read_predictions
from evalcore.prompts import TEMPLATE_VERSION
from evalcore.reports import (
    collect_cells,
    leaderboard_rows,
    write_cell_json,
    write_cell_xlsx,
)
from evalcore.reports.history import cell_settings, publish_with_history
from evalcore.scoring import aggregate_trials, score_samples, summarize
from evalcore.workspace import Workspace

PIPELINE_VERSION = "1"  # bump when a change must invalidate persisted Prefect results


def load_samples(dataset: DatasetSpec) -> list[Sample]:
    samples = load_tsv(dataset.tsv, name=dataset.dataset_name, root=dataset.root)
    return samples[: dataset.limit] if dataset.limit else samples


def load_all_datasets(config: EvalConfig) -> dict[str, list[Sample]]:
    """Parse every dataset up front: a malformed row fails the run before any work."""
    return {d.dataset_name: load_samples(d) for d in config.datasets}


def frame_index_path(dataset: DatasetSpec, frames: FrameSettings, ws: Workspace) -> Path:
    digest = settings_hash(
        frames, dataset_fingerprint(dataset.tsv), str(dataset.root), dataset.limit
    )
    return ws.frame_index_path(dataset.dataset_name, digest)


@dataclass(frozen=True)
class FramesSummary:
    dataset: str
    index_path: str
    videos: int
    hits: int
    decoded: int
    failed: int
    seconds: float


def progress_bar(total: int, desc: str, unit: str) -> tqdm:
    """A terminal progress bar; silent when output is not a terminal (logs, CI)."""
    return tqdm(total=total, desc=desc, unit=unit, disable=None, leave=False)


def prepare_frames(dataset: DatasetSpec, frames: FrameSettings, ws: Workspace) -> FramesSummary:
    """Extract (or find cached) frames for every distinct clip of a dataset."""
    samples = load_samples(dataset)
    jobs: list[VideoJob] = list(dict.fromkeys(j for s in samples if (j := video_job(s))))
    with progress_bar(len(jobs), f"frames {dataset.dataset_name}", "video") as bar:
        report = extract_videos(
            jobs, FrameCache(ws.frame_cache_dir), frames, on_done=lambda *_: bar.update()
        )
    index = write_frame_index(frame_index_path(dataset, frames, ws), samples, report)
    return FramesSummary(
        dataset=dataset.dataset_name,
        index_path=str(index),
        videos=len(jobs),
        hits=report.hits,
        decoded=report.decoded,
        failed=report.failed,
        seconds=round(report.seconds, 3),
    )


def model_params(model: ModelSpec, trial: int, base_seed: int) -> dict:
    """Trial t of a seeded model uses seed base_seed + t (+ the spec's own seed)."""
    params = dict(model.params)
    if accepts_seed(model.kind):
        params["seed"] = int(params.get("seed", 0)) + base_seed + trial
    return params


def answer_key(model: ModelSpec, dataset: DatasetSpec, frames: FrameSettings, seed: int) -> str:
    """Hash of everything a model's answers depend on: model kind and params, the
    dataset's content and video root, the sampled frames (not decoder, workers or
    timeout), the prompt template and the base seed. Not `limit` or `batch_size`."""
    sampling = frames.model_dump(
        include={"nframe", "fps", "max_frames", "max_side", "jpeg_quality"}
    )
    return settings_hash(
        model.kind,
        model.params,
        dataset_fingerprint(dataset.tsv),
        str((dataset.root or dataset.tsv.parent).resolve()),
        sampling,
        TEMPLATE_VERSION,
        seed,
    )


def cell_log_dir(
    ws: Workspace,
    model: ModelSpec,
    dataset: DatasetSpec,
    frames: FrameSettings,
    seed: int,
    trial: int,
) -> Path:
    """The prediction logs of one model x dataset x trial under these settings."""
    key = answer_key(model, dataset, frames, seed)
    return ws.predictions_dir(model.name, dataset.dataset_name, key, trial)


@dataclass(frozen=True)
class LogState:
    """What the logs of one cell (or one shard's ids) hold, for cache decisions."""

    failure_digest: str
    has_gaps: bool


def log_state(log_dir: Path, dataset: DatasetSpec, ids: Sequence[str] | None = None) -> LogState:
    records = read_predictions(log_dir)
    wanted = list(ids) if ids is not None else [s.sample_id for s in load_samples(dataset)]
    return LogState(failure_digest(records, wanted), has_gaps(records, wanted))


def infer_inline(
    model: ModelSpec,
    dataset: DatasetSpec,
    trial: int,
    config_seed: int,
    frames: FrameSettings,
    ws: Workspace,
    writer: str = "main",
) -> InferenceSummary:
    """Answer the pending samples of one cell in this process (CPU models, small runs)."""
    import torch

    torch.set_num_threads(1)  # FIELD-NOTES: >1 thread per process on 2 shared cores is 7x slower
    samples = load_samples(dataset)
    lookup = read_frame_index(frame_index_path(dataset, frames, ws), FrameCache(ws.frame_cache_dir))
    log_dir = cell_log_dir(ws, model, dataset, frames, config_seed, trial)
    previous = read_predictions(log_dir)
    params = model_params(model, trial, config_seed)
    todo = len(pending_samples(samples, previous))
    desc = f"{model.name} x {dataset.dataset_name} t{trial}"
    with (
        PredictionLog(log_dir / f"{writer}.jsonl") as log,
        progress_bar(todo, desc, "sample") as bar,
    ):
        return run_samples(
            samples,
            lookup,
            lambda: build_model(model.kind, params),
            log,
            previous,
            batch_size=model.batch_size,
            on_record=lambda _: bar.update(),
        )


def score_cell(model: ModelSpec, dataset: DatasetSpec, config: EvalConfig, ws: Workspace) -> dict:
    """Score every trial of a cell from the logs; write its xlsx (last trial) and JSON."""
    samples = load_samples(dataset)
    name = dataset.dataset_name
    trial_scores = []
    scored = []
    for trial in range(config.trials):
        records = read_predictions(
            cell_log_dir(ws, model, dataset, config.frames, config.seed, trial)
        )
        scored = score_samples(samples, records)
        trial_scores.append(summarize(model.name, name, trial, scored))
    summary = aggregate_trials(trial_scores)
    write_cell_xlsx(ws.cell_xlsx(model.name, name), scored)
    settings = cell_settings(model, dataset, config)
    write_cell_json(ws.cell_json(model.name, name), summary, trial_scores, settings)
    return asdict(summary)


def publish_leaderboard(
    ws: Workspace, snapshot: bool = False
) -> tuple[list[dict], dict[str, Path]]:
    """Rebuild `results.json` (every cell's full JSON) and the leaderboard files and chart
    from the cells, with the change against the last snapshot; `snapshot` freezes a new one."""
    cells = collect_cells(ws.results_dir)
    atomic_write_text(ws.output_dir / "results.json", json.dumps(cells, indent=2, sort_keys=True))
    return publish_with_history(ws, leaderboard_rows(cells.values()), snapshot=snapshot)


# --- Sharded local inference (docs/sharding.md) -------------------------------------


def shard_paths(log_dir: Path, ws: Workspace) -> ShardPaths:
    """Launch files of the shards writing to `log_dir` (same model, dataset, key, trial)."""
    return ShardPaths(
        (ws.work_dir / "shards" / log_dir.relative_to(ws.work_dir / "predictions")).resolve()
    )


def inference_device_groups(inference: InferenceSettings) -> list[DeviceGroup]:
    return device_groups(
        inference.gpus, inference.ranks_per_shard, inference.gpus_per_rank, inference.cpu_groups
    )


def plan_cell_shards(dataset: DatasetSpec, inference: InferenceSettings) -> list[Shard]:
    """The shards of one model x dataset x trial: fixed by the manifest and the settings."""
    ids = [s.sample_id for s in load_samples(dataset)]
    return plan_shards(ids, inference_device_groups(inference), inference.shards)


def infer_shard(
    model: ModelSpec,
    dataset: DatasetSpec,
    trial: int,
    config_seed: int,
    frames: FrameSettings,
    inference: InferenceSettings,
    shard: Shard,
    ws: Workspace,
) -> ShardSummary:
    """Answer the pending samples of one shard with a torchrun job (one attempt)."""
    params = model_params(model, trial, config_seed)
    takes_device = "device" in inspect.signature(resolve_factory(model.kind)).parameters
    if takes_device and "device" not in params:  # a factory that can run on GPU or CPU
        params["device"] = "cpu" if shard.group.is_cpu else "cuda"
    log_dir = cell_log_dir(ws, model, dataset, frames, config_seed, trial)
    cell = ShardCell(
        model=model.name,
        model_kind=model.kind,
        model_params=params,
        batch_size=model.batch_size,
        dataset=dataset.dataset_name,
        dataset_json=dataset.model_dump(mode="json"),
        trial=trial,
        frame_index=frame_index_path(dataset, frames, ws).resolve(),
        frame_cache=ws.frame_cache_dir.resolve(),
        log_dir=log_dir.resolve(),
        paths=shard_paths(log_dir, ws),
    )
    lookup = read_frame_index(cell.frame_index, FrameCache(ws.frame_cache_dir))
    return run_shard(cell, load_samples(dataset), lookup, shard, inference)
