"""The API fan-out across hosts: `evalcore run` with `api.scheduler_address` naming a
Dask scheduler whose two workers live on two simulated hosts (tests/doubles/hosts.py),
the endpoint answering them over real HTTP on the cluster's network, and one host killed
(every process of it at once) while its worker has requests on the wire. The run ends as
if nothing happened: every sample answered once, and only what was on the wire to the
dead host is asked again.

The dead host's kernel closes its sockets, so the scheduler hears of the death at once; a
machine that loses power says nothing and is found out by Dask's timeouts instead, which
this test does not wait for."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml
from test_api_kill import api_config as kill_test_config
from test_kill_resume import run_cli

from evalcore.cell import extract_dataset_frames, find_cell
from evalcore.config import parse_config
from evalcore.predictions import iter_records
from evalcore.workspace import Workspace
from tests.doubles.hosts import simulated_cluster
from tests.doubles.openai_server import Behaviour, OpenAIServer, content_digest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
DASK = str(Path(sys.executable).with_name("dask"))
IN_FLIGHT = 8  # max_in_flight over the cluster: 4 per worker (2 task slots each)
PER_WORKER = IN_FLIGHT // 2
LATENCY_S = 0.5  # the endpoint's time per answer: 48 samples take ~3 s at 8 in flight
TRANSIT_S = 0.25  # an answer written this long ago has reached its worker (it takes ms)


@dataclass
class Request:
    """One chat request as the endpoint saw it: from which host, for which sample."""

    host: str  # the peer's address
    digest: str  # `content_digest` of the user message: the sample (prompt and frames)
    arrived: float  # time.monotonic()
    answered: float | None = None  # when its answer was written (None: never)

    def answered_by(self, moment: float) -> bool:
        return self.answered is not None and self.answered < moment


class ClusterServer(OpenAIServer):
    """The OpenAI-compatible double on the cluster's bridge (the hosts reach it there; a
    host's loopback is its own), noting which host sent each request and when it was
    answered."""

    def __init__(self, address: str, behaviour: Behaviour) -> None:
        super().__init__(behaviour)
        self.address = address
        self.requests: list[Request] = []

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.port}/v1"

    async def listen(self):
        server = await asyncio.start_server(self._connection, self.address, 0, backlog=1024)
        self.port = server.sockets[0].getsockname()[1]
        return server

    async def _respond(self, method, path, headers, body, writer) -> bool:
        if method != "POST":
            return await super()._respond(method, path, headers, body, writer)
        content = json.loads(body)["messages"][-1]["content"]
        peer = writer.get_extra_info("peername")[0]
        request = Request(peer, content_digest(content), time.monotonic())
        with self._lock:
            self.requests.append(request)
        keep_open = await super()._respond(method, path, headers, body, writer)
        request.answered = time.monotonic()  # written and drained: its worker may have it
        return keep_open

    def snapshot(self) -> list[Request]:
        with self._lock:
            return list(self.requests)


def peak_after(requests: list[Request], moment: float) -> int:
    """The most requests the endpoint had on the wire at once after `moment`."""
    edges = [(r.arrived, 1) for r in requests if r.arrived > moment]
    edges += [(r.answered, -1) for r in requests if r.arrived > moment and r.answered]
    level = peak = 0
    for _, step in sorted(edges):
        level += step
        peak = max(peak, level)
    return peak


def wait_for(predicate, timeout: float, what: str, proc: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert proc is None or proc.poll() is None, f"{what}: the run ended early"
        assert time.monotonic() < deadline, what
        time.sleep(0.02)
    return value


def start_scheduler(address: str, log: Path) -> tuple[subprocess.Popen, str]:
    """`dask scheduler` in the test process, on the bridge's address (the hosts' way in)."""
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            [DASK, "scheduler", "--host", address, "--port", "0", "--no-dashboard"],
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )
    pattern = rf"Scheduler at:\s+(tcp://{re.escape(address)}:\d+)"
    found = wait_for(lambda: re.search(pattern, log.read_text()), 60, "no scheduler", proc)
    return proc, found.group(1)


def start_worker(host, scheduler: str, log: Path) -> subprocess.Popen:
    """A `dask worker` on `host` (no nanny: the host's death is the worker's), reachable
    at the host's own address, importing this checkout."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("PREFECT_API_URL", None)
    argv = [DASK, "worker", scheduler, "--nthreads", "2", "--no-nanny", "--no-dashboard"]
    argv += ["--host", host.address, "--name", host.name]
    with open(log, "wb") as err:
        return host.popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=err)


def workers_up(scheduler: str, n: int) -> None:
    from distributed import Client

    with Client(scheduler, set_as_default=False, timeout=30) as client:
        client.wait_for_workers(n, timeout=60)


def api_config(bench: Path, root: Path, shared: Path, url: str, scheduler: str) -> dict:
    """test_api_kill's run, twice as wide, on the external scheduler, its work dir on the
    shared disk (the workers read the frames from there)."""
    _, raw = kill_test_config(bench, root, url)
    raw["api"]["scheduler_address"] = scheduler
    raw["models"][0]["params"]["max_in_flight"] = IN_FLIGHT  # over both workers
    raw["work_dir"] = str(shared / "work")
    return raw


def test_a_host_killed_mid_fan_out_loses_no_answer_and_resends_only_its_wire(small_bench, tmp_path):
    with simulated_cluster(tmp_path / "cluster") as cluster:
        a, b = cluster.add_host("a"), cluster.add_host("b")
        scheduler, address = start_scheduler(cluster.gateway, tmp_path / "scheduler.log")
        run = None
        try:
            for host in (a, b):
                start_worker(host, address, tmp_path / f"worker-{host.name}.log")
            with ClusterServer(cluster.gateway, Behaviour(latency=LATENCY_S)) as server:
                raw = api_config(small_bench, tmp_path, cluster.shared, server.url, address)
                parsed = parse_config(raw)
                ws = Workspace(parsed.work_dir, parsed.output_dir)
                cell = find_cell(parsed)
                # frames first: all 48 questions go out in one fan-out, not wave by wave
                extract_dataset_frames(cell.dataset, cell.frames, ws)  # as the workers start
                workers_up(address, 2)
                config = tmp_path / "eval.yaml"
                config.write_text(yaml.safe_dump(raw))

                run, run_log = run_cli(config, tmp_path), tmp_path / "run-prefect-home.log"

                def on_the_wire(host) -> list[Request]:
                    return [
                        r for r in server.snapshot() if r.host == host.address and not r.answered
                    ]

                def ready_to_kill() -> bool:
                    """Both hosts answered, and a has requests on the wire but none of
                    its answers still in transit: what dies with it is its wire alone."""
                    done = [r for r in server.snapshot() if r.answered]
                    seen = Counter(r.host for r in done)
                    last = max((r.answered for r in done if r.host == a.address), default=0)
                    settled = time.monotonic() - last > TRANSIT_S
                    return (
                        seen[a.address] >= 2 and seen[b.address] >= 2 and settled and on_the_wire(a)
                    )

                wait_for(ready_to_kill, 180, "the hosts were never both asking", run)
                a.kill()
                killed = time.monotonic()
                assert run.wait(timeout=120) == 0, run_log.read_text()[-3000:]
                took = time.monotonic() - killed
                requests = server.snapshot()
        finally:
            if run is not None and run.poll() is None:
                os.killpg(run.pid, signal.SIGKILL)
                run.wait()
            os.killpg(scheduler.pid, signal.SIGKILL)
            scheduler.wait()

        assert a.processes() == [] and not a.alive  # nothing of the dead host runs on
        assert b.alive

    before = [r for r in requests if r.arrived < killed]
    last = max(r.answered or 0 for r in requests)
    by_host = Counter(r.host for r in before)
    assert by_host[a.address] and by_host[b.address], by_host  # work landed on both
    assert all(r.host == b.address for r in requests if r.arrived > killed)

    # Asked twice: only what the dead host had on the wire when it died. Every answer it
    # had been given is replayed from its batch's answer events, not asked again.
    wire = {r.digest for r in before if r.host == a.address and not r.answered_by(killed)}
    kept = {r.digest for r in before if r.host == a.address and r.answered_by(killed)}
    asked = Counter(r.digest for r in requests)
    again = {d for d, n in asked.items() if n > 1}
    print(
        f"requests before the kill: {dict(by_host)}; after it: {len(requests) - len(before)} "
        f"(at most {peak_after(requests, killed)} at once); asked again: {len(again)} (on the "
        f"dead host's wire: {len(wire)}); the last answer {last - killed:.1f} s and the run's end "
        f"{took:.1f} s after the kill"
    )
    assert len(asked) == 48
    assert again <= wire, sorted(again - wire)
    assert kept and not kept & again  # the dead host's answers were not asked for again
    assert len(again) <= PER_WORKER
    assert max(asked.values()) <= 2

    records = [r for p in cell.log_dir(ws).glob("*.jsonl") for r in iter_records(p)]
    per_sample = Counter(r.sample_id for r in records)
    assert sorted(per_sample, key=int) == [str(i) for i in range(48)]
    assert set(per_sample.values()) == {1}, "a sample was recorded twice"
    assert all(r.ok for r in records), Counter(r.error_type for r in records)
    sheet = pd.read_excel(tmp_path / "outputs" / "api" / "api_Tiny.xlsx")  # what a user reads
    assert len(sheet) == 48 and sheet["index"].is_unique and set(sheet["status"]) == {"ok"}
