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

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_line(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_line(cls, line: str) -> PredictionRecord:
        return cls(**json.loads(line))


def failed(sample_id: str, error_type: str, error: str, attempts: int = 1) -> PredictionRecord:
    return PredictionRecord(
        sample_id=sample_id, status="failed", error_type=error_type, error=error, attempts=attempts
    )


class PredictionLog:
    """One writer's log. Each record is one `write` of a full line on a line-buffered file,
    so a kill leaves at most a torn last line, which `open` truncates away. fsync is
    batched (`fsync_every`): a process kill loses nothing flushed; only a power loss can
    lose the records since the last fsync."""

    def __init__(self, path: Path, fsync_every: int = 32) -> None:
        self.path = Path(path)
        self.fsync_every = fsync_every
        self._since_sync = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        repair_torn_tail(self.path)
        self._file = open(self.path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115

    def append(self, record: PredictionRecord) -> None:
        self._file.write(record.to_line() + "\n")
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


def iter_records(path: Path) -> Iterator[PredictionRecord]:
    """Records of one log; a torn last line (a writer killed mid-line) is skipped."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.endswith("\n"):
                break
            try:
                yield PredictionRecord.from_line(line)
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


def read_predictions(log_dir: Path) -> dict[str, PredictionRecord]:
    """Merge every `*.jsonl` log under `log_dir` (all shards, ranks and earlier runs)."""
    log_dir = Path(log_dir)
    if not log_dir.is_dir():
        return {}
    paths = sorted(log_dir.glob("*.jsonl"))
    return merge_records(rec for p in paths for rec in iter_records(p))


def failure_digest(records: dict[str, PredictionRecord], ids: Iterable[str] | None = None) -> str:
    """Fingerprint of the failed records (id, attempts) among `ids` (default: all).

    Part of inference cache keys: a unit that ended with failures gets a new key, so the
    next run retries them, while a clean finished unit keeps its key and is a cache hit.
    """
    wanted = None if ids is None else set(ids)
    bad = sorted(
        (r.sample_id, r.attempts)
        for r in records.values()
        if not r.ok and (wanted is None or r.sample_id in wanted)
    )
    return hashlib.sha256(repr(bad).encode()).hexdigest()[:16]


def has_gaps(records: dict[str, PredictionRecord], ids: Iterable[str]) -> bool:
    """Whether some id has no record at all: never finished, or its log was removed."""
    return any(i not in records for i in ids)
