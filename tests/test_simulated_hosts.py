"""The simulated hosts of tests/doubles/hosts.py: each its own name, network, disk and
processes; a shared directory; a kill that leaves nothing; a teardown that leaves
nothing, even after a failure or a killed test process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evalcore.processes import alive
from tests.doubles.hosts import REGISTRY, Cluster, HostError, simulated_cluster, sweep_stale

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def cluster(tmp_path):
    with simulated_cluster(tmp_path / "cluster") as cluster:
        yield cluster


def netns_names() -> set[str]:
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in listed.splitlines() if line.strip()}


def link_names() -> set[str]:
    listed = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in listed.splitlines()}


def test_a_host_has_its_own_name_which_does_not_resolve_and_its_own_processes(cluster):
    a = cluster.add_host("a")
    assert a.run(["hostname"]).stdout.strip() == a.hostname != os.uname().nodename
    lookup = a.python("import socket; print(socket.getaddrinfo(socket.gethostname(), None))")
    assert "gaierror" in lookup.stderr
    assert a.python("import socket; print(socket.getaddrinfo('localhost', 80)[0][4][0])").stdout
    # its own PID 1 and process table: only itself and what runs in it
    listing = a.run(["ps", "-e", "-o", "pid="]).stdout.split()
    assert listing[0] == "1" and len(listing) <= 3  # init, ps (and nsenter's fork)
    assert a.processes() == [a.pid]


def test_hosts_reach_each_other_but_not_each_others_loopback(cluster):
    a, b = cluster.add_host("a"), cluster.add_host("b")
    server = """
import socket, sys
for address in (sys.argv[1], "127.0.0.1"):
    s = socket.socket(); s.bind((address, 7000)); s.listen()
    globals().setdefault("keep", []).append(s)
print("listening", flush=True)
sys.stdin.read()
"""
    listening = b.popen(
        [sys.executable, "-c", server, b.address],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert listening.stdout.readline().strip() == "listening"
        connect = "import socket, sys; socket.create_connection((sys.argv[1], 7000), 5)"
        assert a.python(connect, b.address).returncode == 0
        refused = a.python(connect, "127.0.0.1")  # a's own loopback: b's service is not there
        assert "ConnectionRefusedError" in refused.stderr
        assert b.python(connect, "127.0.0.1").returncode == 0
        # and the test process reaches a host at its address, over the bridge
        subprocess.run([sys.executable, "-c", connect, b.address], check=True, timeout=30)
    finally:
        listening.stdin.close()
        listening.wait(timeout=30)


def test_the_shared_dir_is_one_mount_on_every_host_the_local_disk_is_each_hosts_own(cluster):
    a, b = cluster.add_host("a"), cluster.add_host("b")
    shared, local = cluster.shared / "note.txt", cluster.local / "note.txt"
    a.run(["sh", "-c", f"echo from-a > {shared}; echo a-local > {local}"], check=True)
    assert b.run(["cat", str(shared)]).stdout == "from-a\n" == shared.read_text()
    assert b.run(["cat", str(local)]).returncode != 0  # b's disk is its own
    assert not local.exists()  # and the test process's too
    assert a.outside(local).read_text() == "a-local\n"
    mounts = a.run(["cat", "/proc/self/mountinfo"]).stdout.splitlines()
    assert any(line.split()[4] == str(cluster.shared) for line in mounts)  # a mount of its own


def test_killing_a_host_kills_every_process_of_it_and_no_other(cluster):
    a, b = cluster.add_host("a"), cluster.add_host("b")
    # processes that escaped their parent: a daemon in its own session, a nohup'd child
    quiet = "</dev/null >/dev/null 2>&1"  # (run waits for whoever holds its pipes)
    start = f"setsid sleep 600 {quiet} & (nohup sleep 600 {quiet} &); sleep 600 {quiet} & echo ok"
    assert a.run(["sh", "-c", start]).stdout.strip() == "ok"
    b_sleeper = b.popen(["sleep", "600"])
    pids = a.processes()
    assert len(pids) >= 4  # init and three sleepers
    a.kill()
    assert a.processes() == [] and not a.alive
    assert not [p for p in pids if alive(p)]
    assert b.alive and b_sleeper.poll() is None
    with pytest.raises(HostError, match="not running"):
        a.run(["true"])
    b.kill()
    assert b_sleeper.wait(timeout=10) != 0


def test_teardown_leaves_nothing_even_when_the_test_fails(tmp_path):
    with pytest.raises(RuntimeError, match="the test failed"):
        with simulated_cluster(tmp_path / "cluster") as cluster:
            host = cluster.add_host("a")
            pids = host.processes()
            raise RuntimeError("the test failed")
    assert host.netns not in netns_names() and cluster.bridge not in link_names()
    assert pids and not [p for p in pids if alive(p)]


def test_clusters_side_by_side_never_collide(tmp_path):
    with simulated_cluster(tmp_path / "one") as one, Cluster(tmp_path / "two") as two:
        first, second = one.add_host("a"), two.add_host("a")
        assert first.hostname != second.hostname and first.netns != second.netns
        assert not one.network.overlaps(two.network)
        assert first.run(["hostname"]).stdout.strip() == first.hostname


def test_a_killed_test_process_leaves_no_host_running_and_the_next_cluster_sweeps_it(
    tmp_path,
):
    with simulated_cluster(tmp_path / "probe"):
        pass  # skips where hosts cannot be made
    owner = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import json, sys, time\n"
            "from pathlib import Path\n"
            "from tests.doubles.hosts import Cluster\n"
            "c = Cluster(Path(sys.argv[1]))\n"
            "h = c.add_host('a')\n"
            "print(json.dumps([c.id, h.netns, h.pid]), flush=True)\n"
            "time.sleep(600)\n",
            str(tmp_path / "orphaned"),
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        text=True,
    )
    cluster_id, netns, pid = json.loads(owner.stdout.readline())
    owner.send_signal(signal.SIGKILL)  # no teardown runs
    owner.wait()
    deadline = time.monotonic() + 10
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(pid)  # the host died with its owner (parent-death signal)
    assert netns in netns_names()  # its namespace stays until someone sweeps it
    sweep_stale()
    assert netns not in netns_names() and not (REGISTRY / f"{cluster_id}.json").exists()
