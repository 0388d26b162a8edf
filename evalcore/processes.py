"""Every question this project asks about a process, in one place: whether it runs, when
it started (with the pid, its identity), its children, command line and CPU time, which
processes carry a run's mark, and the Linux parent-death signal. psutil answers them
rather than /proc parsed by hand in each caller: one reading, with pid reuse, zombies and
permissions handled alike everywhere. (`evalcore.atomic` keeps its own pid check and
umask: it imports only the standard library, for the preload client's start-up.)

Parent-death signals: a child that outlives its parent is killed by the kernel.
torchrun puts every rank in its own session, so killing torchrun (or the flow process
that started it) with SIGKILL would orphan the ranks (test_sharded_inference.py kills
the parent and finds none left). Two links close the chain: torchrun gets SIGKILL
when the thread that started it dies, and each rank gets SIGKILL when torchrun dies.
The signal is tied to the parent *thread*, so the launcher starts torchrun from the
thread that then waits on it until it exits.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys

import psutil

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def alive(pid: int, reap: bool = False) -> bool:
    """Whether process `pid` runs: not gone, not dying and not a zombie (an exited child
    its parent has not reaped, or an orphan's that PID 1 never reaps). `reap`: first
    collect its exit if it is a child of this process (never one a `Popen` waits on: its
    exit code would be lost), so that it does not stay a zombie."""
    if pid <= 0:
        return False  # (0 and -1 would name process groups)
    if reap:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return False
        except ChildProcessError:
            pass  # not our child
    try:
        return psutil.Process(pid).status() not in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)
    except psutil.NoSuchProcess:  # psutil.ZombieProcess included
        return False
    except psutil.AccessDenied:
        return True  # it exists, as another user's


def start_ticks(pid: int | None = None) -> int | None:
    """When process `pid` (this one if None) started, in clock ticks after boot: with its
    pid, the process's identity (a pid alone may be reused). The same number whoever
    asks and whenever (the wall clock may be set meanwhile); None if it is gone."""
    try:
        seconds = psutil.Process(pid).create_time() - psutil.boot_time()
    except psutil.Error:
        return None
    return round(seconds * _CLOCK_TICKS)


def children(pid: int) -> list[int]:
    """The pids of the direct children of process `pid`; [] if it is gone."""
    try:
        return [child.pid for child in psutil.Process(pid).children()]
    except psutil.Error:
        return []


def cmdline(pid: int) -> str:
    """The command line of process `pid`, its arguments joined by spaces; "" if it is
    gone, a zombie or unreadable."""
    try:
        return " ".join(psutil.Process(pid).cmdline())
    except psutil.Error:
        return ""


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) process `pid` has used; None if it is gone or unreadable."""
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return None
    return times.user + times.system


def kill_marked(name: str, value: str) -> list[int]:
    """SIGKILL every process (this one aside) whose environment sets `name` to `value`;
    returns their pids. One whose environment cannot be read is left alone, and one
    whose pid was reused since it was listed is not killed (psutil checks)."""
    me = os.getpid()
    killed = []
    for proc in psutil.process_iter():
        if proc.pid == me:
            continue
        try:
            if proc.environ().get(name) == value:
                proc.kill()
                killed.append(proc.pid)
        except psutil.Error:
            continue
    return killed


# --- parent-death signals --------------------------------------------------------------

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
