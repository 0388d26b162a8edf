"""The one path from pending samples to durable records, shared by every launcher.

`UnitState` says, for the samples of a unit (a cell, or a shard of one), which records
still count (`CellTrials.current_records`) and what is pending; `split`
turns the pending samples whose frames failed into failure records at once; the inline
launcher and each torchrun rank answer the rest with `run_unit` as their frames arrive
(the frame index is written while extraction goes on), and the API launcher sends them
to its fan-out. Whatever answers, each outcome is appended to the writer's log the
moment it exists.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace

from evalcore.benchmarks import Benchmark, load_samples
from evalcore.cell import Cell, CellTrials
from evalcore.dataset import Sample
from evalcore.frames import FrameError, FrameFailure
from evalcore.frames.index import FrameIndex, read_index_videos
from evalcore.inference.pack import pack_groups, pack_messages, unpack_answers
from evalcore.models import (
    GenerationConfig,
    ModelError,
    ModelOutput,
    VideoModel,
    VideoRequest,
)
from evalcore.predictions import (
    FailureKind,
    Journal,
    PredictionRecord,
    failed,
    has_gaps,
    pending_ids,
    transient_digest,
)
from evalcore.workspace import Workspace


@dataclass
class InferenceSummary:
    """Counts of one inference pass (small: this is what a Prefect task returns)."""

    answered: int = 0
    failed: int = 0
    skipped: int = 0  # already answered (or failed for good) under the same answer key
    model_calls: int = 0
    seconds: float = 0.0

    def add(self, other: InferenceSummary) -> InferenceSummary:
        return InferenceSummary(
            *(getattr(self, f.name) + getattr(other, f.name) for f in fields(self))
        )


@dataclass(frozen=True)
class UnitState:
    """The records that count for a unit's samples, read from the cell's logs."""

    answer_keys: dict[str, str]  # sample id -> current answer key
    records: dict[str, PredictionRecord]  # sample id -> the record that counts
    prior_attempts: dict[str, int] = field(default_factory=dict)  # a rank has no records

    @classmethod
    def read(
        cls, cell: Cell, samples: Sequence[Sample], videos: Mapping[str, str], ws: Workspace
    ) -> UnitState:
        """`samples`: the unit's; `videos`: sample id -> video fingerprint
        (`FrameIndex.videos`). The query is `CellTrials.current_records`."""
        current = CellTrials.of([cell], samples).current_records(ws, videos)[cell.trial]
        return cls(current.answer_keys, current.records)

    def pending(self, ids: Iterable[str]) -> list[str]:
        return pending_ids(self.records, ids)

    def has_gaps(self, ids: Iterable[str]) -> bool:
        return has_gaps(self.records, ids)

    def transient_digest(self, ids: Iterable[str]) -> str:
        return transient_digest(self.records, ids)

    def next_attempt(self, sample_id: str, tries: int = 1) -> int:
        """Attempts accumulate over runs under one answer key, so a failure that repeats
        changes the unit's cache key (and a changed input starts again at 1). `tries`:
        attempts made in this run (an API request's HTTP retries)."""
        prev = self.records.get(sample_id)
        return (prev.attempts if prev else self.prior_attempts.get(sample_id, 0)) + tries

    def failure(
        self, sample: Sample, error_type: FailureKind | str, message: str, tries: int = 1
    ) -> PredictionRecord:
        sid = sample.sample_id
        attempts = self.next_attempt(sid, tries)
        return failed(sid, error_type, message, attempts, answer_key=self.answer_keys[sid])

    def answer(
        self,
        sample: Sample,
        text: str,
        seconds: float,
        tries: int = 1,
        tokens: tuple[int, int] = (0, 0),
        cached: bool = False,
    ) -> PredictionRecord:
        """`tokens`: (prompt, completion) this answer took; `cached`: from the API
        response cache."""
        sid = sample.sample_id
        return PredictionRecord(
            sample_id=sid,
            status="ok",
            answer_key=self.answer_keys[sid],
            prediction=text,
            attempts=self.next_attempt(sid, tries),
            seconds=round(seconds, 4),
            prompt_tokens=tokens[0],
            completion_tokens=tokens[1],
            from_cache=cached,
        )


def split(
    samples: Sequence[Sample], state: UnitState, index: FrameIndex
) -> tuple[list[PredictionRecord], list[Sample]]:
    """Pending samples -> (failure records for those whose frames failed, those to
    answer: with frames, or with frames still being extracted)."""
    pending = set(state.pending(s.sample_id for s in samples))
    no_frames, ready = [], []
    for s in samples:
        if s.sample_id not in pending:
            continue
        outcome = index.outcome(s.sample_id)
        if isinstance(outcome, FrameFailure):
            no_frames.append(state.failure(s, outcome.error_type, outcome.message))
        else:
            ready.append(s)
    return no_frames, ready


def build_request(sample: Sample, frames, benchmark: Benchmark | None = None) -> VideoRequest:
    """The request for a sample: the benchmark's chat (default: the generic one), the
    frames, and what the frame cache knows of their video: its frame rate and frame
    count (the entry's manifest), the frames' numbers in it (the entry's indices)."""
    if benchmark is None:
        from evalcore.benchmarks import get_benchmark

        benchmark = get_benchmark("generic")
    messages = benchmark.messages(sample, tuple(frames.timestamps))
    manifest = getattr(frames, "manifest", None)
    video = manifest() if callable(manifest) else {}
    return VideoRequest(
        sample_id=sample.sample_id,
        prompt=prompt_text(messages),
        question=sample.question,
        options=sample.options,
        frames=frames,
        category=sample.category,
        messages=messages,
        source_fps=video.get("fps"),
        source_frames=video.get("video_frames"),
        frame_indices=tuple(getattr(frames, "indices", ())),
    )


def prompt_text(messages) -> str:
    """The text of the turn that carries the video (the user's question)."""
    return next((m.text for m in messages if m.video), messages[-1].text)


def is_out_of_memory(exc: BaseException) -> bool:
    """A CUDA out-of-memory error (checked by name: torch need not be imported here)."""
    return type(exc).__name__ == "OutOfMemoryError" or "CUDA out of memory" in str(exc)


def answer_order(samples: Sequence[Sample], index: FrameIndex) -> list[Sample]:
    """Most frames first (an out-of-memory error shows early; batches pad little); a
    stable sort, so the questions of one clip stay together for the prefetcher."""
    return sorted(samples, key=lambda s: -len(index.frames_for(s.sample_id).paths))


def answer_samples(
    samples: Sequence[Sample],
    state: UnitState,
    index: FrameIndex,
    model: Callable[[], VideoModel],
    generation: GenerationConfig,
    emit: Callable[[PredictionRecord], None],
    benchmark: Benchmark,
    batch_size: int = 8,
    pack: bool = False,
) -> int:
    """Answer `samples` (all with frames) in batches; `emit` each record. Returns the
    number of model calls. `model()` builds and loads the model on first use.

    A request asks one sample, or with `pack` all pending samples of one clip
    (`evalcore.inference.pack`). Batches of requests are cut from `answer_order`. A
    batch that raises is retried in halves (a CUDA out-of-memory error the same way),
    down to one request, which then fails alone; a per-request `ModelError` fails that
    request's samples only.
    """
    calls = 0
    todo = answer_order(samples, index)
    loaded = model() if todo else None  # a model that cannot load fails the unit, not samples
    items = packs(todo, state) if pack else [[s] for s in todo]
    for i in range(0, len(items), batch_size):
        queue = [items[i : i + batch_size]]
        while queue:
            batch = queue.pop(0)
            t0 = time.perf_counter()
            calls += 1
            try:
                requests = [request_for(item, index, benchmark) for item in batch]
                answers = loaded.generate(requests, generation)
                if len(answers) != len(batch):
                    raise RuntimeError(f"model returned {len(answers)} answers for {len(batch)}")
            except Exception as exc:
                if len(batch) > 1:  # isolate the culprit (or fit in memory): halve
                    half = len(batch) // 2
                    queue[:0] = [batch[:half], batch[half:]]
                    continue
                if isinstance(exc, FrameError):  # its frames could not be read (damaged
                    kind, detail = exc.error_type, str(exc)  # beyond repair): say so plainly
                else:
                    kind = FailureKind.OutOfMemory if is_out_of_memory(exc) else type(exc).__name__
                    detail = "".join(traceback.format_exception(exc, limit=-3))
                for s in batch[0]:
                    emit(state.failure(s, kind, detail))
                continue
            per_sample = (time.perf_counter() - t0) / sum(len(item) for item in batch)
            for item, a in zip(batch, answers, strict=True):
                for record in records_for(item, a, state, per_sample):
                    emit(record)
    return calls


def packs(samples: Sequence[Sample], state: UnitState) -> list[list[Sample]]:
    """The clip packs of `samples`; a sample whose packed answer was not found last time
    goes alone (a pack of one), so it never re-asks the others."""
    alone = [
        [s]
        for s in samples
        if (rec := state.records.get(s.sample_id)) is not None
        and rec.error_type == FailureKind.PackUnanswered
    ]
    lone = {group[0].sample_id for group in alone}
    return [g for g in pack_groups([s for s in samples if s.sample_id not in lone])] + alone


def request_for(item: Sequence[Sample], index: FrameIndex, benchmark: Benchmark) -> VideoRequest:
    """One sample's request, or one request for a clip's pack of samples."""
    first = item[0]
    request = build_request(first, index.frames_for(first.sample_id), benchmark)
    if len(item) == 1:
        return request
    timestamps = request.timestamps
    messages = pack_messages([benchmark.messages(s, timestamps) for s in item])
    return replace(
        request,
        sample_id=f"pack:{first.sample_id}",
        pack_ids=tuple(s.sample_id for s in item),
        prompt=prompt_text(messages),
        messages=messages,
        question="",
        options=(),
    )


def records_for(
    item: Sequence[Sample], answer, state: UnitState, per_sample: float, tries: int = 1
) -> list[PredictionRecord]:
    """The records of one request's answer: per sample of a pack, a found answer or a
    typed failure of that question alone. A `ModelOutput`'s tokens are shared out over
    the samples of a pack (their sum is the request's); a plain `str` is an answer of
    unknown cost."""
    if isinstance(answer, ModelError):
        return [state.failure(s, answer.error_type, str(answer), tries) for s in item]
    output = ModelOutput(answer) if isinstance(answer, str) else answer
    if not isinstance(output, ModelOutput) or not isinstance(output.text, str):
        bad = f"the model returned {answer!r}"  # "" is an answer (scored wrong), not this
        return [state.failure(s, FailureKind.BadAnswer, bad, tries) for s in item]
    answer, usage, cached = output.text, output.usage, output.cached
    shares = share_tokens(usage, len(item))
    if len(item) == 1:
        return [state.answer(item[0], answer, per_sample, tries, shares[0], cached)]
    found = unpack_answers(answer, len(item))
    return [
        state.answer(s, text, per_sample, tries, shares[n - 1], cached)
        if text is not None
        else state.failure(
            s,
            FailureKind.PackUnanswered,
            f"no answer {n} in the packed reply: {answer[:300]!r}",
            tries,
        )
        for n, (s, text) in enumerate(zip(item, found, strict=True), start=1)
    ]


def share_tokens(usage: tuple[int, int], parts: int) -> list[tuple[int, int]]:
    """(prompt, completion) tokens of one request split over `parts` samples as evenly
    as integers allow, the remainder on the first ones: the parts sum to `usage`."""
    return [
        tuple(total // parts + (i < total % parts) for total in usage)  # type: ignore[misc]
        for i in range(parts)
    ]


def run_unit(
    samples: Sequence[Sample],
    state: UnitState,
    index: FrameIndex,
    model: Callable[[], VideoModel],
    generation: GenerationConfig,
    log: Journal,
    benchmark: Benchmark,
    batch_size: int = 8,
    on_record: Callable[[PredictionRecord], None] | None = None,
    pack: bool = False,
    on_wait: Callable[[], None] | None = None,
) -> InferenceSummary:
    """Record every pending sample of a unit as its frames arrive (`index.arrivals`):
    a sample whose frames failed without a model, the others answered in batches of
    what has arrived, so inference starts on the first clips while the rest are still
    being decoded, and a slow video holds back only its own samples. `on_wait` is
    called while nothing has arrived (a rank's heartbeat). The model is built only when
    some sample has frames, so a finished or all-failing unit costs no model load."""
    started = time.perf_counter()
    pending = state.pending(s.sample_id for s in samples)
    summary = InferenceSummary(skipped=len(samples) - len(pending))
    by_id = {s.sample_id: s for s in samples}

    def emit(record: PredictionRecord) -> None:
        log.append(record)
        if record.ok:
            summary.answered += 1
        else:
            summary.failed += 1
        if on_record:
            on_record(record)

    for arrived in index.arrivals(pending, on_wait):
        no_frames, ready = split([by_id[i] for i in arrived], state, index)
        for record in no_frames:
            emit(record)
        if ready:
            summary.model_calls += answer_samples(
                ready, state, index, model, generation, emit, benchmark, batch_size, pack
            )
    summary.seconds = time.perf_counter() - started
    return summary


def unit_cache_key(cell: Cell, ws: Workspace, stage: str, ids: Sequence[str] | None = None):
    """(Prefect cache key, has gaps) of an inference unit: `ids` (default: the cell's).
    Needs the head of the frame index (every video's fingerprint), not its frames."""
    samples = load_samples(cell.dataset)
    state = UnitState.read(cell, samples, read_index_videos(cell.frame_index_path(ws)), ws)
    ids = list(ids) if ids is not None else [s.sample_id for s in samples]
    key = cell.unit_key(stage, [state.answer_keys[i] for i in ids], state.transient_digest(ids))
    return key, state.has_gaps(ids)
