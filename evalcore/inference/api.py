"""Inference of one API model x dataset x trial: pending samples in, durable records out.

The same path as the inline launcher (`evalcore.inference.runner`): samples without a
final record under their current answer key are pending, each outcome is appended to
this writer's `Journal` as it arrives, and a failure is a typed record (error
class, attempts, last message), never an answer. Here the answers come from the
response cache or from an OpenAI-compatible endpoint through the Dask fan-out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from pydantic import SecretStr

from evalcore.api.answers import AnswerStats, Progress, answer_jobs, cluster_runner
from evalcore.api.cache import ResponseCache, response_key
from evalcore.api.client import ChatJob, ChatOutcome
from evalcore.api.endpoint import EndpointSpec, parse_endpoint
from evalcore.benchmarks import Benchmark, adapter_of, load_samples
from evalcore.cell import Cell
from evalcore.config import ApiSettings
from evalcore.dataset import Sample
from evalcore.frames import FrameCache
from evalcore.frames.index import read_frame_index
from evalcore.inference.pack import pack_messages
from evalcore.inference.runner import UnitState, packs, prompt_text, records_for, split
from evalcore.models import ModelError, ModelOutput, Usage
from evalcore.predictions import FailureKind, Journal
from evalcore.predictions.lock import UnitLock
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
    in_flight: str = ""  # the concurrency requests ran at (`auto`: its level and peak)
    failures: dict[str, int] = field(default_factory=dict)  # error type -> count

    def describe(self) -> str:
        failures = ", ".join(f"{k} {v}" for k, v in self.failures.items()) or "none"
        return (
            f"{self.answered} answered ({self.cache_hits} from the response cache), "
            f"{self.failed} failed ({failures}), {self.skipped} already done; "
            f"{self.model_calls} requests ({self.retries} retries) in {self.dask_tasks} "
            f"Dask tasks at in-flight {self.in_flight or 'n/a'}, {self.seconds:.1f} s"
        )


def endpoint_of(cell: Cell) -> EndpointSpec:
    """The cell's endpoint, with the trial's seed (used only when sampling)."""
    spec = parse_endpoint(cell.model.params)
    return spec.model_copy(update={"seed": (spec.seed or 0) + cell.seed + cell.trial})


def sample_job(
    item: list[Sample],
    frames,
    spec: EndpointSpec,
    cache: ResponseCache,
    context: str,
    benchmark: Benchmark,
) -> ChatJob:
    """The request for a sample (or a clip's pack of samples), keyed by the cell's
    response context (endpoint, model, generation, template), the prompt and the content
    of the media it sends."""
    sample = item[0]
    timestamps = tuple(frames.timestamps)
    messages = benchmark.messages(sample, timestamps)
    if len(item) > 1:
        messages = pack_messages([benchmark.messages(s, timestamps) for s in item])
    prompt = prompt_text(messages)
    system = next((m.text for m in messages if m.role == "system"), None)
    if spec.media == "video_file":
        media = cache.file_hashes([sample.video_path]) if sample.video_path else []
        video = str(sample.video_path) if sample.video_path else None
    else:
        media, video = cache.file_hashes(frames.paths), None
    key = response_key(context, f"{system or ''}\n{prompt}", media)
    job_id = sample.sample_id if len(item) == 1 else f"pack:{sample.sample_id}"
    return ChatJob(job_id, prompt, key, frames=frames, video_path=video, system=system)


def infer_api_cell(
    cell: Cell,
    ws: Workspace,
    api: ApiSettings,
    api_key: SecretStr | None,
    writer: str = "api",
    client=None,
    key_resolver: str | None = None,
) -> ApiCellSummary:
    """Answer the pending samples of one cell, as their frames arrive: each wave of
    samples whose clips have finished goes through the cache and the fan-out while the
    next clips are still being decoded (the frame index is a journal, `frames.index`),
    so requests start on the first clips and a slow video holds back only its own
    samples. `client`: a `distributed.Client` to use; default: the one `api` describes
    (a LocalCluster shared by this process's cells)."""
    spec = endpoint_of(cell)
    samples = load_samples(cell.dataset)
    by_id = {s.sample_id: s for s in samples}
    index = read_frame_index(
        cell.frame_index_path(ws), FrameCache(ws.frame_cache_dir, ws.fingerprint_memo_path)
    )
    log_dir = cell.log_dir(ws)
    with UnitLock(log_dir, "cell", label=cell.label):
        state = UnitState.read(cell, samples, index.videos, ws)
        pending = state.pending(s.sample_id for s in samples)
        summary = ApiCellSummary(skipped=len(samples) - len(pending))
        benchmark = adapter_of(cell.dataset)
        todo = [by_id[i] for i in pending]
        planned = packs(todo, state) if cell.dataset.pack else [[s] for s in todo]
        item_of = {s.sample_id: item for item in planned for s in item}  # a pack: one clip
        stats = AnswerStats()
        media_failures: dict[str, int] = {}
        with (
            Journal(log_dir, writer) as plog,
            ResponseCache(api.cache_path or ws.response_cache_path) as cache,
        ):
            items: dict[str, list[Sample]] = {}  # job id -> the samples it answers
            known_usage: dict[str, tuple[int, int]] = {}  # the cached answers' tokens

            def record(outcome: ChatOutcome) -> None:
                # attempts accumulate over runs: the HTTP attempts of each (a cache hit: 1)
                item, tries = items[outcome.job_id], max(outcome.attempts, 1)
                answer = ModelError(outcome.error or "", outcome.error_type or FailureKind.Unknown)
                if outcome.ok:
                    tokens = (outcome.prompt_tokens, outcome.completion_tokens)
                    if outcome.cached:
                        tokens = known_usage.get(outcome.cache_key, (0, 0))
                    elif any(tokens):  # later cache hits can say what they saved
                        cache.put_usage([(outcome.cache_key, *tokens)])
                    answer = ModelOutput(outcome.text or "", Usage(*tokens), outcome.cached)
                per_sample = outcome.seconds / len(item)
                for rec in records_for(item, answer, state, per_sample, tries):
                    summary.answered += rec.ok
                    summary.failed += not rec.ok
                    plog.append(rec)

            def fail(rec) -> None:  # a sample that cannot be asked: its record, no request
                plog.append(rec)
                summary.failed += 1
                media_failures[rec.error_type] = media_failures.get(rec.error_type, 0) + 1

            def wave(arrived: list[str]) -> list[ChatJob]:
                """The jobs of the samples that have just arrived (their failures written)."""
                no_frames, ready = split([by_id[i] for i in arrived], state, index)
                for rec in no_frames:
                    fail(rec)
                sendable = []
                for s in ready:
                    if spec.media == "video_file" and (s.start is not None or s.end is not None):
                        message = "media=video_file sends the whole video; this sample is a clip"
                        fail(state.failure(s, FailureKind.UnsupportedClip, message))
                    else:
                        sendable.append(s)
                asked, jobs = {s.sample_id for s in sendable}, []
                # in arrival order, each pack once (a pack's samples share a clip)
                planned_here = {id(item_of[i]): item_of[i] for i in (s.sample_id for s in sendable)}
                for item in planned_here.values():
                    item = [s for s in item if s.sample_id in asked]
                    frames = index.lookup[item[0].sample_id]
                    job = sample_job(item, frames, spec, cache, cell.response_context, benchmark)
                    items[job.job_id] = item
                    jobs.append(job)
                return jobs

            runner = cluster_runner(api, spec, api_key, key_resolver, client)
            progress = Progress(len(planned), cell.label, api.progress)
            try:
                for arrived in index.arrivals(pending):
                    jobs = wave(arrived)
                    progress.drop(len({id(item_of[i]) for i in arrived}) - len(jobs))
                    known_usage.update(cache.usage_many(j.cache_key for j in jobs))
                    stats = stats.add(answer_jobs(jobs, spec, cache, runner, record, progress))
            finally:
                progress.close()

    failures = dict(media_failures)
    for k, v in stats.failures.items():
        failures[k] = failures.get(k, 0) + v
    summary.model_calls = stats.requests
    summary.cache_hits = stats.cache_hits
    summary.retries = stats.retries
    summary.dask_tasks = stats.dask_tasks
    summary.in_flight = stats.in_flight
    summary.seconds = stats.seconds
    summary.failures = dict(sorted(failures.items(), key=lambda kv: -kv[1]))
    return summary
