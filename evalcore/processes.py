"""Linux parent-death signals: a child that outlives its parent is killed by the kernel.

torchrun puts every rank in its own session, so killing torchrun (or the flow process
that started it) with SIGKILL would orphan the ranks (FIELD-NOTES). Two links close
the chain: torchrun gets SIGKILL when the thread that started it dies, and each rank
gets SIGKILL when torchrun dies. The signal is tied to the parent *thread*, so the
launcher starts torchrun from the thread that then waits on it until it exits.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1

# Resolved at import, not in the child: `preexec_fn` runs between fork and exec, where
# loading a library could deadlock on a lock another thread of the parent held.
_prctl = None
if sys.platform.startswith("linux"):
    _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    _prctl = _libc.prctl
    _prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    _prctl.restype = ctypes.c_int


def supported() -> bool:
    return _prctl is not None


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    """`preexec_fn` for Popen: the child gets `sig` when the forking thread exits."""
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)


def die_with_parent_now(sig: int = signal.SIGKILL) -> None:
    """For a process already running (a rank): same, and exit at once if the parent is
    already gone (it may have died before the signal was armed)."""
    parent = os.getppid()
    die_with_parent(sig)
    if parent == 1 or os.getppid() != parent:
        os._exit(128 + int(sig))
