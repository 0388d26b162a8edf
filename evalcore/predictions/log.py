"""Append-only, kill-9-safe prediction logs: one JSON line per finished sample.

A log has exactly one writer (a process or a rank); readers merge every log of an
evaluation, so resuming with another shard count or world size needs no migration.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

Status = Literal["ok", "failed"]

# Failures that repeat as long as the input is unchanged: a re-run does not try them again
# (their answer key covers the input, so a changed video or row is asked anew).
PERMANENT_FAILURES = frozenset(
    {
        "VideoNotFound",
        "VideoUnreadable",
        "InvalidPath",
        "EmptyVideo",
        "EmptyClip",
        "InvalidClip",
        "DecodeError",
        "UnsupportedClip",
        # not RankCrashed: its cause (the model, the machine) may be fixed without any input
        # changing, so the next run asks it again (evalcore.inference.attempts)
    }
)


@dataclass(frozen=True)
class PredictionRecord:
    """The outcome of one sample. A failure is a record with a reason, never an answer."""

    sample_id: str
    status: Status
    prediction: str | None = None
    error_type: str | None = None
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
        return self.ok or self.error_type in PERMANENT_FAILURES

    def to_line(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_line(cls, line: str) -> PredictionRecord:
        fields = json.loads(line)
        return cls(**{k: v for k, v in fields.items() if k in _RECORD_FIELDS})


_RECORD_FIELDS = frozenset(PredictionRecord.__dataclass_fields__)


def failed(
    sample_id: str, error_type: str, error: str, attempts: int = 1, answer_key: str = ""
) -> PredictionRecord:
    return PredictionRecord(
        sample_id=sample_id,
        status="failed",
        answer_key=answer_key,
        error_type=error_type,
        error=error,
        attempts=attempts,
    )


class PredictionLog:
    """One writer's log, held with an exclusive `flock` for as long as it is open: a
    second process that asks for the same writer name gets a file of its own
    (`{writer}-2.jsonl`, ...), and a torn tail is repaired only by the holder.

    Each record is one `write(2)` of a full line, so a kill leaves at most a torn last
    line, which the next holder truncates away; a write that fails (a full disk) is cut
    back at once, so the log ends on a whole line and the error goes up. fsync is
    batched (`fsync_every`): a process kill loses nothing written; only a power loss can
    lose the records since the last fsync."""

    def __init__(self, log_dir: Path, writer: str, fsync_every: int = 32) -> None:
        from evalcore.predictions.lock import open_exclusive_log

        self.fsync_every = fsync_every
        self._since_sync = 0
        Path(log_dir).mkdir(parents=True, exist_ok=True)
        self.path, self._file = open_exclusive_log(Path(log_dir), writer)
        self._end = os.fstat(self._file.fileno()).st_size  # we alone append (the lock)

    def append(self, record: PredictionRecord) -> None:
        data = (record.to_line() + "\n").encode("utf-8")
        fd = self._file.fileno()
        try:
            written = 0
            while written < len(data):  # the file object's buffer is never used
                written += os.write(fd, data[written:])
        except BaseException:
            os.ftruncate(fd, self._end)  # no half line left behind
            raise
        self._end += len(data)
        self._since_sync += 1
        if self._since_sync >= self.fsync_every:
            self.sync()

    def sync(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._since_sync = 0

    def close(self) -> None:
        if not self._file.closed:
            self.sync()
            self._file.close()

    def __enter__(self) -> PredictionLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def repair_torn_tail(path: Path) -> None:
    """Cut a partial last line left by a kill mid-write, so the next append starts clean."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as f:
        data = f.read()
        if data.endswith(b"\n"):
            return
        f.truncate(data.rfind(b"\n") + 1)


def iter_records(path: Path, kind: type = PredictionRecord) -> Iterator:
    """Records of one log (`kind`: the record dataclass, e.g. a judgement); a torn last
    line (a writer killed mid-line) is skipped."""
    parse = getattr(kind, "from_line", None) or (lambda line: kind(**json.loads(line)))
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.endswith("\n"):
                break
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
