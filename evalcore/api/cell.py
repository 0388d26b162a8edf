"""Inference of one API model x dataset x trial: pending samples in, durable records out.

The same contract as `stages.infer_inline`: samples without a successful record are
pending (failures are retried), each outcome is appended to this writer's
`PredictionLog` as it arrives, and a failure is a typed record (error class, attempts,
last message), never an answer. Here the answers come from the response cache or from
an OpenAI-compatible endpoint through the Dask fan-out.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field

from pydantic import SecretStr

from evalcore.api.answers import AnswerStats, Progress, answer_jobs
from evalcore.api.cache import ResponseCache, response_key
from evalcore.api.client import ChatJob, ChatOutcome
from evalcore.api.endpoint import EndpointSpec, parse_endpoint
from evalcore.api.fanout import ClusterSpec, dask_client, fan_out
from evalcore.config import ApiSettings, DatasetSpec, ModelSpec
from evalcore.dataset import Sample
from evalcore.frames import FrameCache, FrameFailure, FrameSettings
from evalcore.inference import pending_samples, read_frame_index
from evalcore.inference.runner import frames_for, next_attempt
from evalcore.predictions import PredictionLog, PredictionRecord, failed, read_predictions
from evalcore.prompts import TEMPLATE_VERSION, render_mcq_prompt
from evalcore.stages import cell_log_dir, frame_index_path, load_samples, model_params
from evalcore.workspace import Workspace

log = logging.getLogger(__name__)


@dataclass
class ApiCellSummary:
    """Counts of one pass over a cell; the first five fields match `InferenceSummary`."""

    answered: int = 0  # successful records written in this pass (cache hits included)
    failed: int = 0
    skipped: int = 0  # answered by an earlier run
    model_calls: int = 0  # HTTP attempts sent, retries included
    seconds: float = 0.0
    cache_hits: int = 0
    retries: int = 0
    dask_tasks: int = 0
    failures: dict[str, int] = field(default_factory=dict)  # error type -> count

    def describe(self) -> str:
        failures = ", ".join(f"{k} {v}" for k, v in self.failures.items()) or "none"
        return (
            f"{self.answered} answered ({self.cache_hits} from the response cache), "
            f"{self.failed} failed ({failures}), {self.skipped} already done; "
            f"{self.model_calls} requests ({self.retries} retries) in {self.dask_tasks} "
            f"Dask tasks, {self.seconds:.1f} s"
        )


def cluster_spec(api: ApiSettings) -> ClusterSpec:
    return ClusterSpec(api.scheduler_address, api.workers, api.task_slots, api.processes)


def sample_job(sample: Sample, frames, spec: EndpointSpec, cache: ResponseCache) -> ChatJob:
    """The request for a sample, keyed by what determines its answer."""
    prompt = render_mcq_prompt(sample.question, sample.options)
    if spec.media == "video_file":
        media = cache.file_hashes([sample.video_path]) if sample.video_path else []
        video = str(sample.video_path) if sample.video_path else None
    else:
        media, video = cache.file_hashes(frames.paths), None
    key = response_key(spec.model, spec.generation_params(), prompt, media, TEMPLATE_VERSION)
    return ChatJob(sample.sample_id, prompt, key, frames=frames, video_path=video)


def infer_api_cell(
    model: ModelSpec,
    dataset: DatasetSpec,
    trial: int,
    config_seed: int,
    frames: FrameSettings,
    ws: Workspace,
    api: ApiSettings,
    api_key: SecretStr | None,
    writer: str = "api",
    client=None,
) -> ApiCellSummary:
    """Answer the pending samples of one cell. `client`: a `distributed.Client` to use;
    default: the one `api` describes (a LocalCluster shared by this process's cells)."""
    spec = parse_endpoint(model_params(model, trial, config_seed))
    samples = load_samples(dataset)
    lookup = read_frame_index(frame_index_path(dataset, frames, ws), FrameCache(ws.frame_cache_dir))
    log_dir = cell_log_dir(ws, model, dataset, frames, config_seed, trial)
    previous = read_predictions(log_dir)
    todo = pending_samples(samples, previous)
    summary = ApiCellSummary(skipped=len(samples) - len(todo))

    def prior(sample_id: str) -> int:
        rec = previous.get(sample_id)
        return rec.attempts if rec else 0

    with (
        PredictionLog(log_dir / f"{writer}.jsonl") as plog,
        ResponseCache(api.cache_path or ws.response_cache_path) as cache,
    ):

        def record(outcome: ChatOutcome) -> None:
            # attempts accumulate over runs, so a cell whose failures fail again gets a
            # new failure digest (and so a new Prefect cache key) and is retried next run
            attempts = prior(outcome.job_id) + max(outcome.attempts, 1)
            if outcome.ok:
                rec = PredictionRecord(
                    sample_id=outcome.job_id,
                    status="ok",
                    prediction=outcome.text,
                    attempts=attempts,
                    seconds=outcome.seconds,
                )
                summary.answered += 1
            else:
                rec = failed(
                    outcome.job_id, outcome.error_type or "Unknown", outcome.error or "", attempts
                )
                summary.failed += 1
            plog.append(rec)

        jobs = []
        media_failures: dict[str, int] = {}
        for s in todo:
            entry = frames_for(s.sample_id, lookup)
            if isinstance(entry, FrameFailure):
                plog.append(
                    failed(
                        s.sample_id,
                        entry.error_type,
                        entry.message,
                        next_attempt(previous, s.sample_id),
                    )
                )
                summary.failed += 1
                media_failures[entry.error_type] = media_failures.get(entry.error_type, 0) + 1
                continue
            if spec.media == "video_file" and (s.start is not None or s.end is not None):
                message = "media=video_file sends the whole video; this sample is a clip"
                attempt = next_attempt(previous, s.sample_id)
                plog.append(failed(s.sample_id, "UnsupportedClip", message, attempt))
                summary.failed += 1
                media_failures["UnsupportedClip"] = media_failures.get("UnsupportedClip", 0) + 1
                continue
            jobs.append(sample_job(s, entry, spec, cache))

        def runner(misses, on_batch) -> int:
            if not misses:  # all answered from the cache: no cluster is started
                return 0
            cluster = client or dask_client(cluster_spec(api))
            return fan_out(cluster, misses, spec, api_key, api.requests_per_task, on_batch)

        label = f"{model.name}/{dataset.dataset_name}/t{trial}"
        progress = Progress(len(jobs), label, api.progress)
        try:
            stats: AnswerStats = answer_jobs(jobs, spec, cache, runner, record, progress)
        finally:
            progress.close()

    failures = dict(media_failures)
    for k, v in stats.failures.items():
        failures[k] = failures.get(k, 0) + v
    summary.model_calls = stats.requests
    summary.cache_hits = stats.cache_hits
    summary.retries = stats.retries
    summary.dask_tasks = stats.dask_tasks
    summary.seconds = stats.seconds
    summary.failures = dict(sorted(failures.items(), key=lambda kv: -kv[1]))
    return summary


def summary_dict(summary: ApiCellSummary) -> dict:
    return asdict(summary)
