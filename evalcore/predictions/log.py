"""Prediction records: one JSON line per finished sample, in append-only logs.

A log is a journal (`evalcore.predictions.journal`) with exactly one writer (a process
or a rank); readers merge every log of an evaluation, so resuming with another shard
count or world size needs no migration.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from evalcore.predictions.failures import FailureKind, is_permanent
from evalcore.predictions.journal import iter_lines

Status = Literal["ok", "failed"]


@dataclass(frozen=True)
class PredictionRecord:
    """The outcome of one sample. A failure is a record with a reason, never an answer."""

    sample_id: str
    status: Status
    prediction: str | None = None
    error_type: str | None = None  # a `FailureKind` (on disk its name), or an exception's
    error: str | None = None
    attempts: int = 1
    seconds: float = 0.0
    finished_at: float = field(default_factory=time.time)
    answer_key: str = ""  # the sample's answer key when this was made (see evalcore.cell)
    # What the answer cost (added later: older logs read with the defaults). Tokens as
    # the endpoint's `usage` reports them, or a local model's tokenizer counts them (0:
    # not known); `from_cache`: answered from the API response cache, so its tokens were
    # spent by an earlier request and are saved, not spent, here.
    prompt_tokens: int = 0
    completion_tokens: int = 0
    from_cache: bool = False

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def final(self) -> bool:
        """An answer, or a failure that would repeat on the same input: not retried."""
        return self.ok or is_permanent(self.error_type)

    def to_line(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_line(cls, line: str) -> PredictionRecord:
        fields = json.loads(line)
        return cls(**{k: v for k, v in fields.items() if k in _RECORD_FIELDS})


_RECORD_FIELDS = frozenset(PredictionRecord.__dataclass_fields__)


def failed(
    sample_id: str,
    error_type: FailureKind | str,
    error: str,
    attempts: int = 1,
    answer_key: str = "",
) -> PredictionRecord:
    return PredictionRecord(
        sample_id=sample_id,
        status="failed",
        answer_key=answer_key,
        error_type=error_type,
        error=error,
        attempts=attempts,
    )


def iter_records(path: Path, kind: type = PredictionRecord) -> Iterator:
    """Records of one log (`kind`: the record dataclass, e.g. a judgement); a torn last
    line (a writer killed mid-line) is skipped."""
    parse = getattr(kind, "from_line", None) or (lambda line: kind(**json.loads(line)))
    for line in iter_lines(path):
        try:
            yield parse(line)
        except (json.JSONDecodeError, TypeError):
            continue


def merge_records(records: Iterable[PredictionRecord]) -> dict[str, PredictionRecord]:
    """One record per sample: the first success wins; otherwise the most-attempted failure."""
    merged: dict[str, PredictionRecord] = {}
    for rec in records:
        current = merged.get(rec.sample_id)
        if current is None or (not current.ok and (rec.ok or rec.attempts >= current.attempts)):
            merged[rec.sample_id] = rec
    return merged


def read_records(log_dir: Path) -> list[PredictionRecord]:
    """Every record of every `*.jsonl` log under `log_dir` (all writers, all answer keys);
    `evalcore.cell.CellTrials.current_records` keeps those that count."""
    log_dir = Path(log_dir)
    if not log_dir.is_dir():
        return []
    return [rec for p in sorted(log_dir.glob("*.jsonl")) for rec in iter_records(p)]


def transient_digest(records: dict[str, PredictionRecord], ids: Iterable[str]) -> str:
    """Fingerprint of the retryable failures (id, attempts) among `ids`.

    Part of inference cache keys: a unit that ended with retryable failures gets a new
    key, so the next run retries them; a unit whose failures are all permanent (a
    missing video) keeps its key and is a cache hit until the input changes.
    """
    wanted = set(ids)
    bad = sorted(
        (r.sample_id, r.attempts) for r in records.values() if not r.final and r.sample_id in wanted
    )
    return hashlib.sha256(repr(bad).encode()).hexdigest()[:16]


def pending_ids(records: dict[str, PredictionRecord], ids: Iterable[str]) -> list[str]:
    """Ids without a final record: never run, or a retryable failure."""
    return [i for i in ids if not (i in records and records[i].final)]


def has_gaps(records: dict[str, PredictionRecord], ids: Iterable[str]) -> bool:
    """Whether some id has no record at all: never finished, or its log was removed."""
    return any(i not in records for i in ids)
