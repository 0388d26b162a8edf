"""The preload server: torchrun and its ranks forked from a process that imported torch
once, behaving as the fresh interpreters they replace (exit codes, signals, streams,
environment), and leaving nothing behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest

from evalcore.cell import Cell
from evalcore.config import DatasetSpec, InferenceSettings, ModelSpec
from evalcore.frames import FrameSettings
from evalcore.inference.torchrun.plan import dataset_videos, device_groups, plan_shards
from evalcore.inference.torchrun.preload import SOCKET_ENV, PreloadServer
from evalcore.inference.torchrun.shard import infer_shard, shard_paths
from evalcore.processes import alive, cmdline
from evalcore.workspace import Workspace
from tests.doubles.records import cell_records
from tests.doubles.scripted_model import FAKE_KIND

PROBE = """
import json, os, sys, time
print(json.dumps({"pid": os.getpid(), "ppid": os.getppid(), "argv": sys.argv[1:],
                  "cwd": os.getcwd(), "rank": os.environ.get("RANK"),
                  "preloaded": "json" in sys.modules and "probe_marker" in sys.modules}),
      flush=True)
print("to stderr", file=sys.stderr, flush=True)
what = sys.argv[1] if len(sys.argv) > 1 else ""
if what == "exit": sys.exit(3)
if what == "raise": raise RuntimeError("boom in the child")
if what == "sleep": time.sleep(60)
"""


@pytest.fixture
def probe(tmp_path, monkeypatch):
    """A module to run (`probe`) and one the server preloads (`probe_marker`), both on
    PYTHONPATH; returns the environment clients and the server share."""
    (tmp_path / "probe.py").write_text(PROBE)
    (tmp_path / "probe_marker.py").write_text("")
    path = os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])
    monkeypatch.setenv("PYTHONPATH", path)
    return dict(os.environ)


def client(env, *args, **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "evalcore.inference.torchrun.preload", "probe", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        **kw,
    )


def test_the_child_runs_as_the_client_would_and_exits_as_it_exits(probe, tmp_path):
    server = PreloadServer(probe, ["probe_marker"])
    try:
        env = {**probe, SOCKET_ENV: str(server.socket), "RANK": "3"}  # a per-rank variable
        proc = client(env, "a", "b", cwd=tmp_path)
        out, err = proc.communicate(timeout=30)
        seen = json.loads(out)
        assert proc.returncode == 0 and seen["preloaded"]
        assert seen["ppid"] == server.proc.pid and seen["pid"] != proc.pid  # forked
        assert (seen["argv"], seen["cwd"], seen["rank"]) == (["a", "b"], str(tmp_path), "3")
        assert "to stderr" in err

        proc = client(env, "exit")
        proc.communicate(timeout=30)
        assert proc.returncode == 3
        proc = client(env, "raise")
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 1 and "RuntimeError: boom in the child" in err

        proc = client(env, "sleep")  # a signal to the client reaches the child
        child = json.loads(proc.stdout.readline())["pid"]
        os.killpg(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=30) == -signal.SIGTERM
        assert not alive(child)

        proc = client(env, "sleep")  # the client killed: the server kills the child
        child = json.loads(proc.stdout.readline())["pid"]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 10
        while alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(child)
    finally:
        server.close()
    assert not server.alive() and not server.dir.exists()


def test_without_a_server_or_with_another_environment_it_runs_a_fresh_interpreter(probe):
    server = PreloadServer(probe, ["probe_marker"])
    try:
        changed = {**probe, SOCKET_ENV: str(server.socket), "SOME_LIBRARY_SETTING": "1"}
        gone = {**probe, SOCKET_ENV: str(server.dir / "gone")}
        for env, why in (
            (changed, "environment differs from the preload server's: SOME_LIBRARY_SETTING"),
            (gone, "no preload server"),
        ):
            proc = client(env, "exit")
            out, err = proc.communicate(timeout=60)
            seen = json.loads(out)
            assert proc.returncode == 3 and not seen["preloaded"]
            assert seen["pid"] == proc.pid  # the client became the interpreter (exec)
            assert f"preload: {why}" in err and "starting a fresh interpreter" in err
    finally:
        server.close()


STARTER = """
import os, subprocess, sys, time
from evalcore.inference.torchrun.preload import SOCKET_ENV, PreloadServer
server = PreloadServer(dict(os.environ), ["probe_marker"])
module = "evalcore.inference.torchrun.preload"
child = subprocess.Popen([sys.executable, "-m", module, "probe", "sleep"],
                         env={**os.environ, SOCKET_ENV: str(server.socket)},
                         stdout=subprocess.PIPE, text=True)
print(server.proc.pid, child.stdout.readline(), flush=True)
time.sleep(60)
"""


def test_the_server_and_its_children_die_with_the_process_that_started_it(probe):
    starter = subprocess.Popen(
        [sys.executable, "-c", STARTER], env=probe, stdout=subprocess.PIPE, text=True
    )
    server_pid, line = starter.stdout.readline().split(" ", 1)
    forked = json.loads(line)["pid"]
    assert alive(int(server_pid)) and alive(forked)
    starter.kill()  # SIGKILL: none of its cleanup runs
    starter.wait()
    deadline = time.monotonic() + 10
    while (alive(int(server_pid)) or alive(forked)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(int(server_pid)) and not alive(forked)


def test_a_shard_forks_torchrun_and_its_ranks_and_answers_as_without(ws, small_bench, tmp_path):
    dataset = DatasetSpec(tsv=small_bench, limit=8)
    model = ModelSpec(
        name="fake",
        kind=FAKE_KIND,
        params={"calls_file": str(tmp_path / "calls.jsonl"), "delay_s": 0.5},
        batch_size=1,
    )
    cell = Cell(model=model, dataset=dataset, trial=0, seed=0, frames=FrameSettings())
    inference = InferenceSettings(launcher="torchrun", shards=1, ranks_per_shard=2, cpu_groups=1)
    (shard,) = plan_shards(dataset_videos(dataset), device_groups([], 2), 1)

    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(infer_shard, cell, shard, inference, ws)
        parents = ranks_parents(shard_paths(cell, ws).root, running)
        summary = running.result()
    assert summary.answered == 8
    # each rank is a fork of the preload server
    assert all("--serve" in cmdline(ppid) for ppid in parents)

    plain = Workspace(tmp_path / "plain", tmp_path / "plain-out")
    plain.work_dir.mkdir()
    for name in ("frames", "frame-index"):
        (plain.work_dir / name).symlink_to((ws.work_dir / name).resolve())
    infer_shard(cell, shard, inference.model_copy(update={"preload": False}), plain)
    answers = {i: r.prediction for i, r in cell_records(cell, ws).items()}
    assert answers == {i: r.prediction for i, r in cell_records(cell, plain).items()}


def ranks_parents(root: Path, running, timeout_s: float = 60) -> set[int]:
    """The parent pids of the ranks of the running launch, read while they run."""
    deadline = time.monotonic() + timeout_s
    parents: dict[int, int] = {}
    while len(parents) < 2 and time.monotonic() < deadline and not running.done():
        for status in root.glob("shard*/launch-*/rank*.json"):
            pid = json.loads(status.read_text())["pid"]
            try:
                parents[pid] = psutil.Process(pid).ppid()
            except psutil.Error:
                continue
        time.sleep(0.05)
    assert len(parents) == 2, "both ranks ran"
    return set(parents.values())


def test_clients_started_at_once_each_get_their_own_child(probe):
    server = PreloadServer(probe, ["probe_marker"])
    try:
        env = {**probe, SOCKET_ENV: str(server.socket)}
        results: list[dict] = []

        def one(i):
            proc = client(env, str(i))
            out, _ = proc.communicate(timeout=60)
            results.append(json.loads(out))

        threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(r["argv"][0] for r in results) == [str(i) for i in range(6)]
        assert len({r["pid"] for r in results}) == 6 and all(r["preloaded"] for r in results)
    finally:
        server.close()
