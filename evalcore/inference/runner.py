"""The inference loop shared by every launcher: pending samples in, durable records out."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from evalcore.dataset import Sample
from evalcore.frames import FrameEntry, FrameFailure
from evalcore.inference.frame_index import FrameLookup
from evalcore.models.base import VideoModel, VideoRequest
from evalcore.predictions import PredictionLog, PredictionRecord, failed
from evalcore.prompts import render_mcq_prompt


@dataclass
class InferenceSummary:
    """Counts of one inference pass (small: this is what a Prefect task returns)."""

    answered: int = 0
    failed: int = 0
    skipped: int = 0  # already answered by an earlier run
    model_calls: int = 0
    seconds: float = 0.0

    def add(self, other: InferenceSummary) -> InferenceSummary:
        return InferenceSummary(
            *(getattr(self, f) + getattr(other, f) for f in self.__dataclass_fields__)
        )


def pending_samples(
    samples: Sequence[Sample], previous: dict[str, PredictionRecord]
) -> list[Sample]:
    """Samples without a successful record: never run, or failed before (retried)."""
    return [s for s in samples if not (s.sample_id in previous and previous[s.sample_id].ok)]


def frames_for(sample_id: str, frames: FrameLookup) -> FrameEntry | FrameFailure:
    """A sample's cached frames, or the failure that stands for them (missing: never
    extracted). Every launcher turns a failure into a record without calling a model."""
    return frames.get(sample_id) or FrameFailure("FramesMissing", "no frames were extracted")


def next_attempt(previous: dict[str, PredictionRecord], sample_id: str) -> int:
    """Attempts accumulate over runs, so a failure that repeats changes the failure digest."""
    prev = previous.get(sample_id)
    return (prev.attempts + 1) if prev else 1


def build_request(sample: Sample, frames) -> VideoRequest:
    return VideoRequest(
        sample_id=sample.sample_id,
        prompt=render_mcq_prompt(sample.question, sample.options),
        question=sample.question,
        options=sample.options,
        frames=frames,
        category=sample.category,
    )


def run_samples(
    samples: Sequence[Sample],
    frames: FrameLookup,
    model_factory: Callable[[], VideoModel],
    log: PredictionLog,
    previous: dict[str, PredictionRecord],
    batch_size: int = 8,
    on_record: Callable[[PredictionRecord], None] | None = None,
) -> InferenceSummary:
    """Answer every pending sample, appending each outcome to `log` as it finishes.

    The model is built only if some sample has frames, so a finished or all-failing
    evaluation costs no model load. A batch that raises is retried one sample at a
    time, so one bad sample fails alone.
    """
    started = time.perf_counter()
    todo = pending_samples(samples, previous)
    summary = InferenceSummary(skipped=len(samples) - len(todo))

    def emit(record: PredictionRecord) -> None:
        log.append(record)
        if record.ok:
            summary.answered += 1
        else:
            summary.failed += 1
        if on_record:
            on_record(record)

    def attempts(sample: Sample) -> int:
        return next_attempt(previous, sample.sample_id)

    ready: list[Sample] = []
    for s in todo:
        outcome = frames_for(s.sample_id, frames)
        if isinstance(outcome, FrameFailure):
            emit(failed(s.sample_id, outcome.error_type, outcome.message, attempts(s)))
        else:
            ready.append(s)
    model: VideoModel | None = None
    for i in range(0, len(ready), batch_size):
        batch = ready[i : i + batch_size]
        if model is None:
            model = model_factory()
        for record in _answer_batch(model, batch, frames, attempts, summary):
            emit(record)
    summary.seconds = time.perf_counter() - started
    return summary


def _answer_batch(model, batch, frames, attempts, summary) -> list[PredictionRecord]:
    t0 = time.perf_counter()
    try:
        summary.model_calls += 1
        answers = model.generate([build_request(s, frames[s.sample_id]) for s in batch])
        if len(answers) != len(batch):
            raise RuntimeError(f"model returned {len(answers)} answers for {len(batch)} requests")
    except Exception as exc:
        if len(batch) > 1:  # isolate the culprit: one call per sample
            return [r for s in batch for r in _answer_batch(model, [s], frames, attempts, summary)]
        detail = "".join(traceback.format_exception(exc, limit=-3))
        return [failed(batch[0].sample_id, type(exc).__name__, detail, attempts(batch[0]))]
    per_sample = (time.perf_counter() - t0) / len(batch)
    return [
        PredictionRecord(
            sample_id=s.sample_id,
            status="ok",
            prediction=str(a),
            attempts=attempts(s),
            seconds=round(per_sample, 4),
        )
        for s, a in zip(batch, answers, strict=True)
    ]
