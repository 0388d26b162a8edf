"""Journals: files of lines that one writer appends to and anyone reads while it does.
Prediction logs, judgement logs, a rank's start marks and the frame index are journals,
and this is the one module that opens one for its writer, repairs it, reads its lines
and rewrites it.

- One writer: a journal is appended to by the open file that holds its exclusive lock
  (`evalcore.predictions.lock`), for as long as that file is open. A second process that
  asks for the same writer name gets a journal of its own (`open_exclusive`).
- Torn tails: a writer killed mid-write leaves a partial last line. Readers skip it
  (`whole_lines`); the next holder of the lock cuts it, and nobody else does: a living
  writer may be finishing that line.
- Appends (`Journal`): each line is one `write(2)`, so a kill leaves at most one torn
  line; a write that fails (a full disk) is cut back at once.
- Rewrites (`rewrite`, for `evalcore gc`): under the writer's lock, taken without
  waiting, by temp + rename; a writer that opened the old file meanwhile sees it was
  replaced once it holds the lock, and opens the new one.
- A journal written as a whole (`start`, the frame index) appears under its name
  already locked, so a reader tells a live writer (locked) from a dead one (free, no
  end line); it is never reopened for writing.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from itertools import count
from pathlib import Path
from typing import IO, Protocol, TextIO

from evalcore.atomic import atomic_write_text, temp_prefix
from evalcore.predictions.lock import lock, try_lock

_TAIL_CHUNK = 1 << 16  # bytes read at a time, from the end, to find the last newline


class LineRecord(Protocol):
    """A record that a journal holds as one line (a prediction record, a judgement)."""

    def to_line(self) -> str: ...


def open_exclusive(directory: Path, writer: str, suffix: str = ".jsonl") -> tuple[Path, TextIO]:
    """Open `{directory}/{writer}{suffix}` for appending, locked for as long as it is open.

    If another process (or another open file in this one) holds that file, the next
    free one of `{writer}-2{suffix}`, `{writer}-3{suffix}`, ... is taken instead, so two
    writers never interleave lines in one file. A torn last line (its writer was killed
    mid-write) is cut once the lock is held. Returns the path and the open file
    (line-buffered, UTF-8, readable too); closing the file releases the lock.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for n in count(1):
        path = directory / (f"{writer}{suffix}" if n == 1 else f"{writer}-{n}{suffix}")
        file = _hold(path)
        if file is not None:
            return path, file
    raise AssertionError("unreachable")


def _hold(path: Path) -> TextIO | None:
    """`path` open for appending, locked, its torn tail cut; None if another open file
    holds it."""
    while True:
        file = open(path, "a+", buffering=1, encoding="utf-8")  # noqa: SIM115 -- returned open
        try:
            if not try_lock(file.fileno()):
                file.close()
                return None
            if _still_at(file.fileno(), path):
                _cut_torn_tail(file.fileno())  # appends (O_APPEND) go to the new end
                return file
        except BaseException:
            file.close()
            raise
        file.close()  # `rewrite` replaced it between our open and our lock: open the new one


def _still_at(fd: int, path: Path) -> bool:
    """Whether the file open as `fd` is still the one at `path`."""
    try:
        there = os.stat(path)
    except FileNotFoundError:
        return False
    here = os.fstat(fd)
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def _cut_torn_tail(fd: int) -> None:
    """Cut a partial last line, reading back from the end only as far as the last
    newline. Only for the holder of the lock (see the module docstring)."""
    size = end = os.fstat(fd).st_size
    while end > 0:
        start = max(0, end - _TAIL_CHUNK)
        chunk = os.pread(fd, end - start, start)
        if end == size and chunk.endswith(b"\n"):
            return
        newline = chunk.rfind(b"\n")
        if newline >= 0:
            os.ftruncate(fd, start + newline + 1)
            return
        end = start
    if size:
        os.ftruncate(fd, 0)  # not one whole line


def whole_lines(file: IO) -> Iterator:
    """The lines of an open journal (text or binary) up to a torn last line, which a
    writer killed mid-line left (or a living one is still writing)."""
    for line in file:
        if not line.endswith("\n" if isinstance(line, str) else b"\n"):
            return
        yield line


def iter_lines(path: Path) -> Iterator[str]:
    """The whole lines of the journal at `path` (`whole_lines`)."""
    with open(path, encoding="utf-8") as file:
        yield from whole_lines(file)


class Journal:
    """One writer's journal, `{directory}/{writer}.jsonl` (`open_exclusive`: another
    file if a living writer holds that one), appended to a record at a time.

    What it appends are prediction records and judgements (anything with `to_line`):
    each is one `write(2)` of a full line, so a kill leaves at most a torn last line,
    which the next holder cuts; a write that fails (a full disk) is cut back at once, so
    the journal ends on a whole line and the error goes up. fsync is batched
    (`fsync_every`): a process kill loses nothing written; only a power loss can lose
    the records since the last fsync."""

    def __init__(self, directory: Path, writer: str, fsync_every: int = 32) -> None:
        self.fsync_every = fsync_every
        self._since_sync = 0
        self.path, self._file = open_exclusive(Path(directory), writer)
        self._end = os.fstat(self._file.fileno()).st_size  # we alone append (the lock)

    def append(self, record: LineRecord) -> None:
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

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def rewrite(path: Path, edit: Callable[[Path], str | None]) -> bool:
    """Replace the journal at `path` while no writer holds it: under its lock (taken
    without waiting), `edit(path)` reads it and returns its new text, which replaces it
    by temp + rename ("" removes it; None leaves it as it is). Returns False, having
    done nothing, if a writer holds it."""
    with open(path, "a+", encoding="utf-8") as held:
        if not try_lock(held.fileno()):
            return False
        text = edit(path)
        if text:
            atomic_write_text(path, text)
        elif text is not None:
            os.unlink(path)
    return True


def start(path: Path, first_line: str) -> TextIO:
    """A new journal at `path` (replacing any there), held by this process until the
    returned file is closed: written under a temporary name that names its writer (so
    `evalcore.atomic.sweep` removes it once the writer is gone), locked, given its first
    line, then renamed into place. Line-buffered: each line written is one write."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + temp_prefix())
    file = os.fdopen(fd, "w", encoding="utf-8", buffering=1)
    try:
        lock(fd)  # before any reader can see it
        os.fchmod(fd, 0o644)
        file.write(first_line + "\n")
        os.replace(tmp, path)
    except BaseException:
        file.close()
        os.unlink(tmp)
        raise
    return file
