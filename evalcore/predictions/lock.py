"""Who may write where: the one module that takes `flock` locks.

Every lock of the work dir is one of these: a unit of work (`UnitLock`: one process per
cell or shard), a journal's writer (`evalcore.predictions.journal`: one per prediction
log, judgement log, rank's marks file, frame index), a frame cache entry being decoded
(`lock_file`). They are `flock` locks, so the kernel drops them when their holder dies,
even by kill -9: there is no stale lock to clean up and no pid to check for liveness.
Lock files are never deleted (deleting one while another process waits on it would let
two processes hold "the" lock on two different files).

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
from pathlib import Path
from typing import TextIO


def try_lock(fd: int) -> bool:
    """Take the exclusive lock on the file open as `fd` if it is free (no wait)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def lock(fd: int) -> None:
    """Take the exclusive lock on the file open as `fd`, waiting until it is free."""
    fcntl.flock(fd, fcntl.LOCK_EX)


def unlock(fd: int) -> None:
    fcntl.flock(fd, fcntl.LOCK_UN)


def is_locked(fd: int) -> bool:
    """Whether another open file holds the exclusive lock on the file open as `fd` (a
    reader asking whether the writer is still there; it takes nothing)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    fcntl.flock(fd, fcntl.LOCK_UN)
    return False


def lock_file(path: Path) -> TextIO:
    """`path` (created if missing) open and exclusively locked, waiting until it is free;
    closing the file releases the lock, and so does the death of this process."""
    file = open(path, "a")  # noqa: SIM115 -- the caller closes it
    try:
        lock(file.fileno())
    except BaseException:
        file.close()
        raise
    return file


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
            if try_lock(fd):
                return
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
            unlock(fd)
            os.close(fd)

    def __enter__(self) -> UnitLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
