"""The `eval` flow: frames -> inference -> scoring -> leaderboard, for a model x dataset grid."""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path

from prefect import allow_failure, flow
from prefect.futures import PrefectFuture, wait
from prefect.task_runners import ThreadPoolTaskRunner

from evalcore.cell import Cell, cells_of, frame_index_path, frame_plans
from evalcore.config import EvalConfig
from evalcore.inference.runner import unit_cache_key
from evalcore.inference.shards import device_groups, plan_shards
from evalcore.workspace import Workspace
from flows.hooks import publish_run_summary
from tasks.frames import extract_frames
from tasks.inference import fixed_key, infer, infer_api, infer_shard_task
from tasks.reports import publish
from tasks.scoring import score
from tasks.secrets import endpoint_tag


@flow(
    name="eval",
    task_runner=ThreadPoolTaskRunner(max_workers=8),
    log_prints=True,
    on_completion=[publish_run_summary],  # the run-summary artifact, failed runs included
    on_failure=[publish_run_summary],
)
def eval_flow(config: EvalConfig) -> dict:
    """Evaluate every model on every dataset and publish the leaderboard.

    Returns small summaries: the leaderboard rows, what extraction did per dataset and
    frame plan, and the inference counts per unit (a cached unit returns the counts of
    the run that made it).
    """
    ws = Workspace(config.work_dir, config.output_dir)
    for dataset in config.datasets:  # a malformed dataset fails here, before any decoding
        dataset.samples()
    results = ws.prefect_results_dir.resolve()  # a Path: a str would name a Prefect block

    frames = {
        frame_index_path(d, f, ws): extract_frames.submit(d, f, ws) for d, f in frame_plans(config)
    }
    cells = cells_of(config)
    units: list[PrefectFuture] = []
    shard_queue = ShardQueue(config)
    for cell in cells:  # in dataset order: a dataset's cells go once its frames are ready
        extraction = frames[cell.frame_index_path(ws)]
        wait([extraction])
        if extraction.state.is_failed():
            continue  # reported below; the other datasets go on
        units += submit_cell(cell, config, ws, results, extraction, shard_queue)
    wait(units)
    frame_summaries = [f.result() for f in frames.values()]  # raises the first failure
    inference = [f.result() for f in units]

    by_pair: dict[tuple[str, str], list[Cell]] = {}
    for cell in cells:
        by_pair.setdefault((cell.model.name, cell.dataset.dataset_name), []).append(cell)
    for trials in by_pair.values():
        score(trials, ws)
    return {
        "leaderboard": publish(ws),
        "frames": [asdict(s) for s in frame_summaries],
        "inference": inference,
    }


def submit_cell(
    cell: Cell,
    config: EvalConfig,
    ws: Workspace,
    results: Path,
    extraction: PrefectFuture,
    shards: ShardQueue,
) -> list[PrefectFuture]:
    """The inference units of one cell: one task inline or per API cell, one per shard
    under torchrun. Each is keyed by `Cell.unit_key` and refreshed when its logs miss a
    sample (deleted logs are never shadowed by a persisted result)."""
    if cell.device_class == "api":
        key, gaps = unit_cache_key(cell, ws, "infer-api")
        options = dict(tags=[endpoint_tag(cell.model)], task_run_name=f"infer {cell.label}")
        return [
            infer_api.with_options(
                result_storage=results, cache_key_fn=fixed_key(key), refresh_cache=gaps, **options
            ).submit(cell, ws, config.api, wait_for=[extraction])
        ]
    if config.inference.launcher == "inline":
        key, gaps = unit_cache_key(cell, ws, "infer")
        return [
            infer.with_options(
                result_storage=results,
                cache_key_fn=fixed_key(key),
                refresh_cache=gaps,
                task_run_name=f"infer {cell.label}",
            ).submit(cell, ws, list(config.inference.gpus), wait_for=[extraction])
        ]
    return shards.submit(cell, ws, results, extraction)


class ShardQueue:
    """Shards take the device groups in turn; a shard waits for the previous shard on its
    group (finished or failed: one bad shard stops nothing else), so at most one shard
    runs per group and all groups work side by side."""

    def __init__(self, config: EvalConfig) -> None:
        self.settings = config.inference
        self.groups = device_groups(
            config.inference.gpus,
            config.inference.ranks_per_shard,
            config.inference.gpus_per_rank,
            config.inference.cpu_groups,
        )
        self.previous: dict[int, PrefectFuture] = {}
        self.count = 0

    def submit(
        self, cell: Cell, ws: Workspace, results: Path, extraction: PrefectFuture
    ) -> list[PrefectFuture]:
        ids = [s.sample_id for s in cell.dataset.samples()]
        futures = []
        for shard in plan_shards(ids, self.groups, self.settings.shards):
            group = self.groups[self.count % len(self.groups)]
            self.count += 1
            wait_for = [extraction]
            if group.index in self.previous:
                wait_for.append(allow_failure(self.previous[group.index]))
            key, gaps = unit_cache_key(cell, ws, f"infer-shard-{shard.digest}", shard.ids)
            future = infer_shard_task.with_options(
                task_run_name=f"infer {cell.label} shard {shard.index + 1}/{shard.count}",
                result_storage=results,
                retries=self.settings.retries,
                cache_key_fn=fixed_key(key),
                refresh_cache=gaps,
            ).submit(cell, replace(shard, group=group), self.settings, ws, wait_for=wait_for)
            self.previous[group.index] = future
            futures.append(future)
        return futures
