"""The response cache: successful API answers on disk, shared by runs and processes.

One SQLite file in WAL mode (several readers and writers in any number of processes;
a writer waits up to `busy_timeout` for another's commit). Keyed by what determines the
answer (`response_key`): the endpoint (or its `cache_namespace`), the model id, the
generation parameters, the prompt template, the prompt text and the content hashes of
the frames; never the API key. Two servers with the same model name but different
weights never share answers; replicas of one model do, by naming one cache namespace.
Failures are never stored: a cached answer is always an answer the model gave.

Beside each answer, the token usage the endpoint reported for it (`put_usage`), so a
later cache hit can say what it saved; answers cached before usage was kept have none.

Frame content hashes are remembered per file (path, size, mtime) in the same database,
so a re-run hashes nothing it has hashed before.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    text TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS responses_model ON responses(model);
CREATE TABLE IF NOT EXISTS usage (
    key TEXT PRIMARY KEY,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS file_hashes (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    sha256 TEXT NOT NULL
);
"""


def response_key(context: str, prompt: str, media_hashes: Sequence[str]) -> str:
    """Hash of everything that determines an answer (and nothing secret): `context` is
    what every request of a cell shares (`Cell.response_context`: the endpoint or its
    cache namespace, model id, generation settings, prompt template), then the prompt
    and the content hashes of the media sent."""
    blob = json.dumps(
        [SCHEMA_VERSION, context, prompt, list(media_hashes)],
        sort_keys=True,
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CacheStats:
    path: str
    entries: int
    bytes_on_disk: int
    per_model: dict[str, int]
    oldest: float | None
    newest: float | None


class ResponseCache:
    """`get_many` / `put_many` of answer texts by key; thread-safe within a process."""

    def __init__(self, path: Path, busy_timeout_s: float = 60.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            self.path, timeout=busy_timeout_s, check_same_thread=False, isolation_level=None
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # a process kill loses nothing committed
        self._db.executescript(_SCHEMA)  # idempotent; waits out other writers

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE: take the write lock up front (waiting up to busy_timeout)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> ResponseCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- answers ---------------------------------------------------------------------
    def get_many(self, keys: Iterable[str]) -> dict[str, str]:
        keys = list(dict.fromkeys(keys))
        found: dict[str, str] = {}
        with self._lock:
            for i in range(0, len(keys), 500):  # SQLite's host-parameter limit
                chunk = keys[i : i + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT key, text FROM responses WHERE key IN ({marks})", chunk
                )
                found.update(rows)
        return found

    def put_many(self, items: Iterable[tuple[str, str, str]]) -> int:
        """Store (key, model, text) answers; one transaction. Returns how many."""
        now = time.time()
        rows = [(k, m, t, now) for k, m, t in items]
        if not rows:
            return 0
        with self._lock, self._transaction():
            self._db.executemany("INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?)", rows)
        return len(rows)

    def put_usage(self, items: Iterable[tuple[str, int, int]]) -> int:
        """Store (key, prompt tokens, completion tokens) of answers; one transaction."""
        rows = list(items)
        if not rows:
            return 0
        with self._lock, self._transaction():
            self._db.executemany("INSERT OR REPLACE INTO usage VALUES (?, ?, ?)", rows)
        return len(rows)

    def usage_many(self, keys: Iterable[str]) -> dict[str, tuple[int, int]]:
        """Key -> (prompt, completion) tokens of the cached answers whose usage is known."""
        keys = list(dict.fromkeys(keys))
        found: dict[str, tuple[int, int]] = {}
        with self._lock:
            for i in range(0, len(keys), 500):
                chunk = keys[i : i + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT key, prompt_tokens, completion_tokens FROM usage "
                    f"WHERE key IN ({marks})",
                    chunk,
                )
                found.update((k, (p, c)) for k, p, c in rows)
        return found

    def stats(self) -> CacheStats:
        with self._lock:
            per_model = dict(
                self._db.execute(
                    "SELECT model, COUNT(*) FROM responses GROUP BY model ORDER BY model"
                )
            )
            oldest, newest = self._db.execute(
                "SELECT MIN(created), MAX(created) FROM responses"
            ).fetchone()
        size = sum(
            os.path.getsize(p)
            for p in (self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm"))
            if p.exists()
        )
        return CacheStats(str(self.path), sum(per_model.values()), size, per_model, oldest, newest)

    def clear(self, model: str | None = None) -> int:
        """Delete every answer, or those of one endpoint model id. Returns how many."""
        with self._lock:
            with self._transaction():
                if model is None:
                    n = self._db.execute("DELETE FROM responses").rowcount
                    self._db.execute("DELETE FROM file_hashes")
                    self._db.execute("DELETE FROM usage")
                else:
                    n = self._db.execute("DELETE FROM responses WHERE model = ?", (model,)).rowcount
                    self._db.execute(
                        "DELETE FROM usage WHERE key NOT IN (SELECT key FROM responses)"
                    )
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            if model is None:
                self._db.execute("VACUUM")
        return n

    # -- media content hashes ----------------------------------------------------------
    def file_hashes(self, paths: Sequence[str | Path]) -> list[str]:
        """sha256 of each file's content, remembered by (path, size, mtime_ns)."""
        paths = [str(Path(p).resolve()) for p in paths]
        stats = {p: os.stat(p) for p in paths}
        with self._lock:
            known: dict[str, tuple[int, int, str]] = {}
            for i in range(0, len(paths), 500):
                chunk = paths[i : i + 500]
                marks = ",".join("?" * len(chunk))
                for path, size, mtime, digest in self._db.execute(
                    f"SELECT path, size, mtime_ns, sha256 FROM file_hashes WHERE path IN ({marks})",
                    chunk,
                ):
                    known[path] = (size, mtime, digest)
        out, fresh = [], []
        for p in paths:
            st = stats[p]
            hit = known.get(p)
            if hit and hit[0] == st.st_size and hit[1] == st.st_mtime_ns:
                out.append(hit[2])
                continue
            digest = _sha256_file(p)
            fresh.append((p, st.st_size, st.st_mtime_ns, digest))
            out.append(digest)
        if fresh:
            with self._lock, self._transaction():
                self._db.executemany(
                    "INSERT OR REPLACE INTO file_hashes VALUES (?, ?, ?, ?)", fresh
                )
        return out


def _sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def describe_stats(stats: CacheStats) -> str:
    """`evalcore cache stats` output."""

    def when(t: float | None) -> str:
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(t)) if t else "-"

    lines = [
        f"response cache: {stats.path}",
        f"  entries: {stats.entries}  size: {stats.bytes_on_disk / 1e6:.1f} MB  "
        f"oldest: {when(stats.oldest)}  newest: {when(stats.newest)}",
    ]
    lines += [f"  {model}: {n}" for model, n in stats.per_model.items()]
    return "\n".join(lines)
