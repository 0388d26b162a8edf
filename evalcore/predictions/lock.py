"""Who may write where: one process per unit of work, one writer per log file.

Both are `flock` locks, so the kernel drops them when their holder dies, even by
kill -9: there is no stale lock to clean up and no pid to check for liveness. Lock
files are never deleted (deleting one while another process waits on it would let two
processes hold "the" lock on two different files).

flock locks an open file description: two opens of one file in the same process
exclude each other just as two processes do. On NFS, flock works only where the
client maps it to byte-range locks (Linux since 2.6.12 does).
"""

from __future__ import annotations

import fcntl
import os
import socket
import time
from collections.abc import Callable
from itertools import count
from pathlib import Path
from typing import TextIO

from evalcore.predictions.log import repair_torn_tail

_UNKNOWN_HOLDER = "an unknown process (it wrote nothing into the lock file)"


class UnitLock:
    """An exclusive lock on one unit of work (a cell, a shard) of one log directory.

    `with UnitLock(log_dir, "cell", label="qwen x MVBench"):` blocks until no other
    process holds `{log_dir}/.lock-{unit}`, polling every `poll_s`. If it has to wait,
    `on_wait(holder)` is called once with what the holder wrote into the lock file
    ("pid 1234 on host-a since 2025-01-01T10:00:00+0000: qwen x MVBench"), so the
    caller can say whom it is waiting for. `timeout_s` (default: wait for ever) raises
    `TimeoutError` naming the holder; 0 takes the lock only if it is free. The wait is
    measured by `clock` and each poll sleeps with `sleep` (a test passes fakes).

    Once acquired, the lock file holds this process's pid, host, label and start time.
    """

    def __init__(
        self,
        log_dir: Path,
        unit: str,
        *,
        label: str = "",
        on_wait: Callable[[str], None] | None = None,
        poll_s: float = 0.2,
        timeout_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.path = Path(log_dir) / f".lock-{unit}"
        self.label = label
        self.on_wait = on_wait
        self.poll_s = poll_s
        self.timeout_s = timeout_s
        self._clock = clock
        self._sleep = sleep
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already held by this UnitLock")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            self._wait_for(fd)
            holder = (
                f"pid {os.getpid()} on {socket.gethostname()} "
                f"since {time.strftime('%Y-%m-%dT%H:%M:%S%z')}: {self.label}"
            )
            os.ftruncate(fd, 0)
            os.pwrite(fd, (holder + "\n").encode(), 0)
        except BaseException:
            os.close(fd)  # also releases the lock if it was taken
            raise
        self._fd = fd

    def _wait_for(self, fd: int) -> None:
        started = self._clock()
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                pass
            waited = self._clock() - started
            holder = self.holder()
            if not told and self.on_wait is not None and (holder or waited >= 1.0):
                # an empty file: the holder is between its flock and its write; give it
                # a moment to say who it is rather than report nobody
                self.on_wait(holder or _UNKNOWN_HOLDER)
                told = True
            if self.timeout_s is not None and waited >= self.timeout_s:
                raise TimeoutError(
                    f"{self.path} is still held after {waited:.1f} s by {holder or _UNKNOWN_HOLDER}"
                )
            self._sleep(self.poll_s)

    def holder(self) -> str:
        """What the current (or last) holder wrote into the lock file; "" if nothing."""
        try:
            return self.path.read_text(encoding="utf-8", errors="replace").strip()
        except OSError:
            return ""

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> UnitLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def open_exclusive_log(log_dir: Path, writer: str) -> tuple[Path, TextIO]:
    """Open `{log_dir}/{writer}.jsonl` for appending, locked for as long as it is open.

    If another process (or another open file in this one) holds that file, the next
    free one of `{writer}-2.jsonl`, `{writer}-3.jsonl`, ... is taken instead, so two
    writers never interleave lines in one file. A torn last line (its writer was killed
    mid-write) is cut only once the lock is held: a living writer's file is never
    touched. Returns the path and the open file (line-buffered, UTF-8); closing the file
    releases the lock.
    """
    log_dir = Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    for n in count(1):
        path = log_dir / (f"{writer}.jsonl" if n == 1 else f"{writer}-{n}.jsonl")
        file = open(path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 -- returned open
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.close()
            continue
        except BaseException:
            file.close()
            raise
        try:
            repair_torn_tail(path)  # appends (O_APPEND) go to the new end
        except BaseException:
            file.close()
            raise
        return path, file
    raise AssertionError("unreachable")
