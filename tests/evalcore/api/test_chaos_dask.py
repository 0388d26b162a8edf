"""Chaos: an external Dask cluster started from its CLI (`dask scheduler`, `dask worker`,
loopback only), one worker killed with SIGKILL in the middle of a fan-out."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from test_api_client import spec_for

from evalcore.api import fan_out
from tests.doubles.chat_jobs import text_jobs

DASK = str(Path(sys.executable).with_name("dask"))
LOOPBACK = ["--host", "127.0.0.1", "--dashboard-address", "127.0.0.1:0"]


def start(args: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [DASK, *args], stdout=subprocess.DEVNULL, stderr=open(log, "wb"), start_new_session=True
    )


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, what
        time.sleep(0.1)
    return value


@pytest.fixture
def cli_cluster(tmp_path):
    """A scheduler and two worker processes (no nanny: a killed worker stays dead)."""
    scheduler = start(["scheduler", "--port", "0", *LOOPBACK], tmp_path / "scheduler.log")
    found = wait_for(
        lambda: re.search(
            r"Scheduler at:\s+(tcp://127\.0\.0\.1:\d+)", (tmp_path / "scheduler.log").read_text()
        ),
        60,
        "the scheduler did not start",
    )
    address = found.group(1)
    workers = [
        start(
            ["worker", address, "--nthreads", "2", "--no-nanny", *LOOPBACK],
            tmp_path / f"worker-{i}.log",
        )
        for i in range(2)
    ]
    from distributed import Client

    client = Client(address, set_as_default=False, timeout=30)
    client.wait_for_workers(2, timeout=60)
    yield client, workers
    client.close()
    for proc in [*workers, scheduler]:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def run(client, server, prefix: str, n: int, kill: subprocess.Popen | None = None):
    """Fan `n` jobs out; with `kill`, SIGKILL that worker once a third are answered.
    Returns (outcomes, seconds, monotonic time of the kill or None)."""
    spec = spec_for(server, max_in_flight=32, timeout=5)
    killed_at: list[float] = []

    def killer() -> None:
        while len(server.answered) < n // 3:
            time.sleep(0.01)
        os.kill(kill.pid, signal.SIGKILL)
        killed_at.append(time.monotonic())

    if kill is not None:
        threading.Thread(target=killer, daemon=True).start()
    outcomes: list = []
    started = time.monotonic()
    fan_out(client, text_jobs(n, prefix), spec, None, 64, outcomes.extend)
    return outcomes, time.monotonic() - started, (killed_at or [None])[0]


def test_a_killed_worker_costs_no_stall_loses_nothing_and_resends_no_answer(server, cli_cluster):
    client, workers = cli_cluster
    server.behaviour.latency = 0.1
    n = 1200  # 32 in flight x 100 ms: 320 requests a second at best, ~3.8 s

    _, undisturbed, _ = run(client, server, "calm", n)
    server.reset_log()
    outcomes, disturbed, killed_at = run(client, server, "kill", n, kill=workers[0])

    assert killed_at is not None and workers[0].poll() is not None  # it really died
    assert sorted(o.job_id for o in outcomes) == sorted(f"kill{i}" for i in range(n))
    assert all(o.ok for o in outcomes), Counter(o.error_type for o in outcomes)
    # No stall: the survivor takes the dead worker's share of max_in_flight at once.
    assert disturbed <= 1.5 * undisturbed, (disturbed, undisturbed)
    # A request is sent again only if it was on the wire when the worker died: an answer
    # that reached the worker before then was logged and is replayed, not asked again.
    first_answer: dict[str, float] = {}
    answers = Counter()
    for prompt, at in server.answered:
        first_answer.setdefault(prompt, at)
        answers[prompt] += 1
    resent = [p for p, k in answers.items() if k > 1]
    assert all(first_answer[p] >= killed_at - 0.25 for p in resent), [
        round(killed_at - first_answer[p], 3) for p in resent
    ]
    assert len(resent) <= 32  # at most what was in flight
