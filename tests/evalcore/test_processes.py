"""evalcore.processes on real child processes: identity, liveness (zombies are dead),
children, command lines, CPU time and the environment-mark kill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from evalcore.processes import alive, children, cmdline, cpu_seconds, kill_marked, start_ticks

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux processes")

# Waits on its standard input: runs until told (or killed).
WAIT = "import sys; sys.stdin.readline()"


def python(code: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, **kwargs
    )


# Says so once it runs, then waits. Popen returns when the child's exec closed its
# close-on-exec pipe, which is before the kernel has set up the new command line and
# environment: read right then, under load, they came back empty.
READY_WAIT = "print(flush=True); import sys; sys.stdin.readline()"


def running(code: str = READY_WAIT, **kwargs) -> subprocess.Popen:
    """A child of `code` (which prints a line first), once that line is read."""
    proc = python(code, **kwargs)
    proc.stdout.readline()
    return proc


def stop(*procs: subprocess.Popen) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stdout):
            if stream:
                stream.close()


def exited_unreaped(pid: int) -> None:
    """Until child `pid` has exited, leaving it a zombie (its exit status not collected)."""
    os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)


def test_start_ticks_name_one_process_whoever_asks_and_a_later_one_differs(
    subprocess_imports_tests,
):
    code = f"from evalcore.processes import start_ticks; print(start_ticks(), flush=True); {WAIT}"
    first = python(code)
    try:
        own = int(first.stdout.readline())  # what the process says of itself (a rank file)
        ticks = start_ticks(first.pid)
        assert ticks == own == start_ticks(first.pid)
        stat = Path(f"/proc/{first.pid}/stat").read_text()
        assert ticks == int(stat.rsplit(")", 1)[1].split()[19])  # as rank files held before
    finally:
        stop(first)
    assert start_ticks(first.pid) is None  # gone
    time.sleep(0.05)  # a few clock ticks: the next process starts at a later tick
    second = python(WAIT)
    try:
        assert start_ticks(second.pid) > ticks
    finally:
        stop(second)
    assert start_ticks() == start_ticks(os.getpid()) is not None


def test_a_zombie_child_counts_as_dead_and_reap_collects_it():
    pid = os.posix_spawn(sys.executable, [sys.executable, "-c", "pass"], os.environ)
    exited_unreaped(pid)
    assert not alive(pid)  # a zombie
    assert not alive(pid, reap=True)
    with pytest.raises(ChildProcessError):  # reaped: nothing left to collect
        os.waitpid(pid, os.WNOHANG)
    assert not alive(pid)


def test_alive_for_a_running_process_and_not_for_a_gone_one_or_a_group_id():
    proc = python(WAIT)
    try:
        assert alive(proc.pid) and alive(proc.pid, reap=True)  # reap leaves a live child be
        assert alive(os.getpid())
    finally:
        stop(proc)
    assert not alive(proc.pid)
    assert not alive(0) and not alive(-1)


def test_a_killed_child_is_dead_before_it_is_reaped():
    proc = python(WAIT)
    try:
        proc.kill()
        exited_unreaped(proc.pid)
        assert not alive(proc.pid)
        assert cmdline(proc.pid) == ""
    finally:
        stop(proc)


SPAWNER = f"""
import subprocess, sys
kids = [subprocess.Popen([sys.executable, "-c", {WAIT!r}]) for _ in range(2)]
print(*[k.pid for k in kids], flush=True)
{WAIT}
"""


def test_children_lists_the_direct_children():
    parent = python(SPAWNER, start_new_session=True)
    try:
        kids = {int(p) for p in parent.stdout.readline().split()}
        assert set(children(parent.pid)) == kids and len(kids) == 2
        assert children(next(iter(kids))) == []
    finally:
        os.killpg(parent.pid, signal.SIGKILL)
        stop(parent)
    assert children(parent.pid) == []  # gone


def test_cmdline_joins_the_arguments():
    proc = running(f"{READY_WAIT}  # marker-in-cmdline")
    try:
        assert cmdline(proc.pid) == f"{sys.executable} -c {READY_WAIT}  # marker-in-cmdline"
    finally:
        stop(proc)
    assert cmdline(proc.pid) == ""


def test_kill_marked_kills_the_marked_process_only():
    name, value = "EVALCORE_TEST_MARK", uuid.uuid4().hex
    marked = running(env={**os.environ, name: value})
    other = running(env={**os.environ, name: value + "0"})
    unmarked = running()
    try:
        assert kill_marked(name, value) == [marked.pid]
        assert marked.wait() == -signal.SIGKILL
        assert other.poll() is None and unmarked.poll() is None
        assert kill_marked(name, value) == []
    finally:
        stop(marked, other, unmarked)


BURNER = """
import sys, time
print(flush=True)
sys.stdin.readline()
start = time.process_time()
while time.process_time() - start < 0.3:
    pass
print(flush=True)
sys.stdin.readline()
"""


def test_cpu_seconds_grows_while_a_child_works():
    proc = python(BURNER)
    try:
        proc.stdout.readline()  # started, idle
        before = cpu_seconds(proc.pid)
        proc.stdin.write(b"\n")
        proc.stdin.flush()
        proc.stdout.readline()  # it has used 0.3 s of CPU since
        after = cpu_seconds(proc.pid)
        assert before is not None and after - before >= 0.25
    finally:
        stop(proc)
    assert cpu_seconds(proc.pid) is None
