"""Atomic file replacement, and the litter a killed writer leaves.

Readers see the old file or the new one, never half of one: a write goes to a temporary
name beside the target, then one rename. A writer killed in between leaves the
temporary file behind, so every temporary name says who wrote it (`.tmp-{pid}@{host}-`,
the host as 8 hex digits: a work dir may be shared between machines), and `sweep`
removes those whose writer is gone.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TMP_MARK = ".tmp-"
LITTER_MAX_AGE_S = 86400.0  # a temp file this old is litter whoever wrote it
_HOST = hashlib.blake2b(socket.gethostname().encode(), digest_size=4).hexdigest()
_OWNER = re.compile(r"(\d+)@([0-9a-f]{8})-")  # what follows the mark: pid@host-


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temp path beside `path`; on success it replaces `path` in one rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}{temp_prefix()}", suffix=path.suffix
    )
    os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; a report is as readable as any file
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def temp_prefix(label: str = "") -> str:
    """`.tmp-{pid}@{host}-{label}-`: a temporary name that says which process wrote it."""
    return f"{TMP_MARK}{os.getpid()}@{_HOST}-{label + '-' if label else ''}"


def abandoned(path: Path, marker: str = TMP_MARK, max_age_s: float = LITTER_MAX_AGE_S) -> bool:
    """Whether the temporary file or folder `path`, whose name holds `pid@host-` right
    after `marker`, was left by a writer that is gone: a process of this host that no
    longer runs, or anything older than `max_age_s` (a writer of another host, or a
    name from before owners were recorded). False if it vanished meanwhile."""
    try:
        age = time.time() - path.lstat().st_mtime
    except FileNotFoundError:
        return False
    if age > max_age_s:
        return True
    owner = _OWNER.match(path.name.partition(marker)[2])
    return owner is not None and owner.group(2) == _HOST and not _pid_alive(int(owner.group(1)))


def sweep(folder: Path, pattern: str, max_age_s: float = LITTER_MAX_AGE_S) -> int:
    """Remove what killed writers left in `folder` (files or folders matching the glob
    `pattern`, each named with `temp_prefix`); returns how many. Live writers' files and
    other hosts' recent ones stay."""
    removed = 0
    for path in Path(folder).glob(pattern):
        if TMP_MARK in path.name and abandoned(path, TMP_MARK, max_age_s):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed += 1
    return removed


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False  # (0 and -1 would name process groups)
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    except OverflowError:
        return False
    return True


def _umask() -> int:
    """The process umask, read without changing it (Linux); else set-and-restore."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
