"""The `eval` flow: frames -> inference -> scoring -> leaderboard, for a model x dataset grid."""

from __future__ import annotations

from dataclasses import asdict

from prefect import flow
from prefect.futures import wait
from prefect.task_runners import ThreadPoolTaskRunner

from evalcore.api.model import is_api_kind
from evalcore.config import EvalConfig
from evalcore.stages import load_all_datasets
from evalcore.workspace import Workspace
from tasks.api import endpoint_tag, infer_api
from tasks.frames import extract_frames
from tasks.inference import infer
from tasks.keys import refresh_if_gaps
from tasks.reports import publish
from tasks.scoring import score
from tasks.shards import submit_shards
from tasks.summary import publish_run_summary


@flow(
    name="eval",
    task_runner=ThreadPoolTaskRunner(max_workers=8),
    log_prints=True,
    on_completion=[publish_run_summary],  # the run-summary artifact, failed runs included
    on_failure=[publish_run_summary],
)
def eval_flow(config: EvalConfig) -> dict:
    """Evaluate every model on every dataset and publish the leaderboard.

    Returns small summaries: the leaderboard rows, what extraction did per dataset, and
    the inference counts per cell (a cached cell returns the counts of the run that made it).
    """
    ws = Workspace(config.work_dir, config.output_dir)
    load_all_datasets(config)  # a malformed dataset fails here, before any decoding
    results = ws.prefect_results_dir.resolve()  # a Path: a str would name a Prefect block

    frames = {d.dataset_name: extract_frames.submit(d, config.frames, ws) for d in config.datasets}
    if config.inference.launcher == "torchrun":  # local models: a torchrun job per shard
        local = [m for m in config.models if not is_api_kind(m.kind)]
        inferred = submit_shards(config, ws, frames, results, models=local)
    else:
        inferred = [
            infer.with_options(
                result_storage=results, **refresh_if_gaps(ws, m, d, config.frames, config.seed, t)
            ).submit(m, d, t, config.seed, config.frames, ws, wait_for=[frames[d.dataset_name]])
            for d in config.datasets
            for m in config.models
            if not is_api_kind(m.kind)
            for t in range(config.trials)
        ]
    inferred += [  # API models: a Dask fan-out per cell, from one Prefect task
        infer_api.with_options(
            result_storage=results,
            tags=[endpoint_tag(m)],
            **refresh_if_gaps(ws, m, d, config.frames, config.seed, t),
        ).submit(
            m, d, t, config.seed, config.frames, ws, config.api, wait_for=[frames[d.dataset_name]]
        )
        for d in config.datasets
        for m in config.models
        if is_api_kind(m.kind)
        for t in range(config.trials)
    ]
    wait(inferred)
    frame_summaries = [f.result() for f in frames.values()]  # raises the first failure
    inference = [f.result() for f in inferred]

    for d in config.datasets:
        for m in config.models:
            score(m, d, config, ws)
    return {
        "leaderboard": publish(ws),
        "frames": [asdict(s) for s in frame_summaries],
        "inference": inference,
    }
