"""Unit locks and exclusive journals, held by real processes (and killed -9)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from doubles.clocks import FakeClock

from evalcore.predictions.journal import open_exclusive
from evalcore.predictions.lock import UnitLock

REPO_ROOT = Path(__file__).resolve().parents[3]

HOLD_LOG = """
import sys
from pathlib import Path
from evalcore.predictions.journal import open_exclusive
path, file = open_exclusive(Path(sys.argv[1]), sys.argv[2])
file.write(sys.argv[3])
file.flush()
print(path, flush=True)
sys.stdin.read()  # hold the log until the parent closes our stdin
"""

HOLD_UNIT = """
import sys
from pathlib import Path
from evalcore.predictions.lock import UnitLock
with UnitLock(Path(sys.argv[1]), "cell", label="child run"):
    print("held", flush=True)
    sys.stdin.read()  # hold the lock until the parent closes our stdin
"""


def _child(code: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
        env=env,
    )


@pytest.fixture
def children():
    started: list[subprocess.Popen] = []

    def start(code: str, *args: str) -> subprocess.Popen:
        started.append(_child(code, *args))
        return started[-1]

    yield start
    for child in started:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=10)
        child.stdin.close()
        child.stdout.close()


def _release(child: subprocess.Popen) -> None:
    child.stdin.close()
    assert child.wait(timeout=10) == 0


def test_two_processes_on_one_writer_name_get_two_files(tmp_path, children):
    first = children(HOLD_LOG, str(tmp_path), "main", "")
    second = children(HOLD_LOG, str(tmp_path), "main", "")
    paths = {Path(first.stdout.readline().strip()), Path(second.stdout.readline().strip())}
    assert {p.name for p in paths} == {"main.jsonl", "main-2.jsonl"}
    # a third writer in this process gets the next free file, and a second open file in
    # the same process is excluded too
    path3, file3 = open_exclusive(tmp_path, "main")
    path4, file4 = open_exclusive(tmp_path, "main")
    assert (path3.name, path4.name) == ("main-3.jsonl", "main-4.jsonl")
    file4.close()
    _release(first)
    _release(second)
    again, file = open_exclusive(tmp_path, "main")  # the first file is free again
    assert again.name == "main.jsonl"
    file.close()
    file3.close()


def test_a_living_writers_torn_tail_is_left_alone_a_dead_ones_is_cut(tmp_path, children):
    holder = children(HOLD_LOG, str(tmp_path), "rank0", '{"sample_id":"a"}\n{"sample_id":"b')
    held = Path(holder.stdout.readline().strip())
    assert held.name == "rank0.jsonl"
    before = held.read_bytes()
    assert before.endswith(b'"b')  # mid-line: the holder may finish that line any moment

    path, file = open_exclusive(tmp_path, "rank0")
    assert path.name == "rank0-2.jsonl"
    assert held.read_bytes() == before  # not cut under a living writer
    file.close()

    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=10)
    path, file = open_exclusive(tmp_path, "rank0")  # the kernel released the dead lock
    assert path.name == "rank0.jsonl"
    assert held.read_bytes() == b'{"sample_id":"a"}\n'
    file.write('{"sample_id":"c"}\n')
    file.close()
    assert held.read_text().splitlines() == ['{"sample_id":"a"}', '{"sample_id":"c"}']


def test_unit_lock_waits_for_the_holder_and_says_who_it_is(tmp_path, children):
    holder = children(HOLD_UNIT, str(tmp_path))
    assert holder.stdout.readline().strip() == "held"
    told: list[str] = []
    clock, polls = FakeClock(), []

    def poll(seconds: float) -> None:  # the lock's sleep between tries
        polls.append(clock.now)
        clock.sleep(seconds)
        if len(polls) == 3:
            _release(holder)  # the holder exits during the third poll

    waiting = UnitLock(
        tmp_path, "cell", label="parent run", on_wait=told.append, clock=clock, sleep=poll
    )
    with waiting as lock:
        assert lock.holder().startswith(f"pid {os.getpid()} ")
        assert lock.holder().endswith(": parent run")
    # waited while the holder lived, and took the lock at the first try after it left
    assert polls == pytest.approx([0.0, 0.2, 0.4]) and clock.now == pytest.approx(0.6)
    assert len(told) == 1  # said once, not every poll
    assert told[0].startswith(f"pid {holder.pid} on ") and told[0].endswith(": child run")
    assert (tmp_path / ".lock-cell").exists()  # never deleted: no unlink race


def test_a_unit_lock_dies_with_its_holder(tmp_path, children):
    holder = children(HOLD_UNIT, str(tmp_path))
    assert holder.stdout.readline().strip() == "held"
    clock = FakeClock()
    waiting = UnitLock(tmp_path, "cell", poll_s=0.25, timeout_s=1.0, clock=clock, sleep=clock.sleep)
    with pytest.raises(TimeoutError, match=f"still held after 1.0 s by pid {holder.pid} "):
        waiting.acquire()
    assert clock.now == 1.0  # four polls, then the timeout
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=10)
    with UnitLock(tmp_path, "cell", timeout_s=0):  # free at once: no wait allowed
        pass


def test_unit_locks_of_one_process_exclude_each_other_and_other_units(tmp_path):
    with UnitLock(tmp_path, "shard0of2"):
        with UnitLock(tmp_path, "shard1of2", timeout_s=0):  # another unit: free
            pass
        with pytest.raises(TimeoutError):
            UnitLock(tmp_path, "shard0of2", poll_s=0.01, timeout_s=0.05).acquire()
    with UnitLock(tmp_path, "shard0of2", timeout_s=0):  # released on exit
        pass
