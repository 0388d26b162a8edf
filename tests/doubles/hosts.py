"""Simulated hosts on this machine, for tests of what spans machines (root only).

A `Host` is a set of namespaces started by `Cluster.add_host`:
- network: its own interface `eth0` with its own address on the cluster's bridge (hosts
  reach each other and the test process reaches them at `host.address`), and its own
  loopback (a service on one host's 127.0.0.1 is not reachable from another);
- UTS: its own hostname, which nothing resolves (its /etc/hosts names only localhost and
  its DNS server is its own, absent, loopback), like a cluster node without DNS;
- mount: the machine's file tree as it was, plus the cluster's shared directory
  bind-mounted onto itself (`cluster.shared`: the same path on every host, a mount of
  its own, real `flock` across hosts as one kernel serves them) and a private tmpfs at
  `cluster.local` (host-local disk: the same path, other contents on each host);
- PID: its own process tree under a small init (PID 1, which reaps orphans).

Killing PID 1 (`Host.kill`) kills every process of the host at once, as a machine that
loses power; `Host.processes` lists what is left of it (nothing, once killed).
Commands run inside with `Host.run` / `Host.popen` (nsenter into all four namespaces,
with the caller's environment and working directory).

Names carry a random cluster id, so parallel and earlier runs never collide; a cluster
records what it created under `REGISTRY`, and a later cluster removes what a killed
test process left behind. Hosts die with the thread that created them (parent-death
signal), so a test process killed with SIGKILL leaves no process of a host running.

    @pytest.fixture
    def cluster(tmp_path):
        with simulated_cluster(tmp_path) as cluster:  # skips where hosts cannot be made
            yield cluster
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from evalcore.processes import alive, children, die_with_parent, start_ticks

REGISTRY = Path("/run/evalcore-test-hosts")  # one JSON file per live cluster
PREFIX = "evh"
TOOLS = ("ip", "unshare", "nsenter", "mount")

# PID 1 of a host: names the host, makes its mounts (in its own mount namespace), says
# "ready", then reaps every orphan until it is killed (only SIGKILL from outside can).
_INIT = r"""
import json, os, signal, socket, subprocess, sys
spec = json.loads(sys.argv[1])
socket.sethostname(spec["hostname"])
for kind, source, target in spec["mounts"]:
    if kind == "bind":
        subprocess.run(["mount", "--bind", source, target], check=True)
    else:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", target], check=True)
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
print("ready", flush=True)
while True:
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass
    signal.sigwait({signal.SIGCHLD})
"""


class HostError(RuntimeError):
    """A host could not be made, or did not die as it should."""


@cache
def hosts_unavailable() -> str | None:
    """Why simulated hosts cannot be made here (a skip reason), or None if they can."""
    if not sys.platform.startswith("linux"):
        return "simulated hosts need Linux namespaces"
    if os.geteuid() != 0:
        return "simulated hosts need root (network, UTS, mount and PID namespaces)"
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        return f"simulated hosts need {', '.join(missing)} (iproute2, util-linux)"
    probe = f"{PREFIX}p{secrets.token_hex(3)}"
    steps = [
        ["unshare", "--net", "--uts", "--mount", "--pid", "--fork", "--mount-proc", "true"],
        ["ip", "link", "add", probe, "type", "bridge"],
    ]
    try:
        for step in steps:
            done = subprocess.run(step, capture_output=True, text=True, timeout=30)
            if done.returncode:
                why = done.stderr.strip().splitlines()[-1:] or [f"exit {done.returncode}"]
                return f"simulated hosts unavailable: `{' '.join(step)}` failed: {why[0]}"
    finally:
        subprocess.run(["ip", "link", "del", probe], capture_output=True)
    return None


@contextlib.contextmanager
def simulated_cluster(root: Path) -> Iterator[Cluster]:
    """A `Cluster` under `root`, torn down on exit (a failing test included); skips the
    test with the reason where hosts cannot be made."""
    import pytest

    reason = hosts_unavailable()
    if reason:
        pytest.skip(reason)
    with Cluster(root) as cluster:
        yield cluster


@dataclass
class Host:
    """One simulated machine; see the module docstring."""

    name: str  # the test's name for it ("a", "gpu0")
    hostname: str  # what it calls itself; resolves nowhere
    address: str  # its eth0 address on the cluster's bridge
    netns: str
    pid: int  # its PID 1, as the test process sees it
    _unshare: subprocess.Popen = field(repr=False)
    _pidns: str = field(repr=False)

    def command(self, argv: Sequence[str], cwd: Path | str | None = None) -> list[str]:
        """`argv` as a command that runs it inside this host (in `cwd`, default ours)."""
        where = os.fspath(cwd) if cwd is not None else os.getcwd()
        spaces = ["--net", "--uts", "--mount", "--pid"]
        return ["nsenter", f"--target={self.pid}", *spaces, f"--wd={where}", "--", *argv]

    def run(
        self,
        argv: Sequence[str],
        *,
        cwd: Path | str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 120.0,
        check: bool = False,
        **kwargs,
    ) -> subprocess.CompletedProcess:
        """Run `argv` inside this host to its end; output captured as text."""
        self._check_alive()
        return subprocess.run(
            self.command(argv, cwd),
            env=None if env is None else dict(env),
            timeout=timeout,
            check=check,
            capture_output=True,
            text=True,
            **kwargs,
        )

    def popen(
        self,
        argv: Sequence[str],
        *,
        cwd: Path | str | None = None,
        env: Mapping[str, str] | None = None,
        **kwargs,
    ) -> subprocess.Popen:
        """Start `argv` inside this host. The Popen is nsenter's, in the test process's
        namespaces: it ends with the command, but killing it does not kill the command
        (kill the host, or the command by its in-host pid)."""
        self._check_alive()
        return subprocess.Popen(
            self.command(argv, cwd), env=None if env is None else dict(env), **kwargs
        )

    def python(self, code: str, *args: str, **kwargs) -> subprocess.CompletedProcess:
        """Run Python `code` (this interpreter) inside this host; `run`'s keywords."""
        return self.run([sys.executable, "-c", code, *args], **kwargs)

    def outside(self, path: Path | str) -> Path:
        """Where the test process reads this host's `path` (e.g. on its local disk)."""
        return Path(f"/proc/{self.pid}/root") / Path(path).relative_to("/")

    @property
    def alive(self) -> bool:
        return self._unshare.poll() is None and alive(self.pid)

    def processes(self) -> list[int]:
        """The pids (as the test process sees them) of every process of this host."""
        found = []
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{entry.name}/ns/pid") == self._pidns:
                    found.append(int(entry.name))
        return found

    def kill(self, timeout: float = 10.0) -> None:
        """Kill the host: SIGKILL to its PID 1 takes every process of it along. Raises
        `HostError` if any of them is still there after `timeout` seconds."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        try:
            self._unshare.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        deadline = time.monotonic() + timeout
        while (left := self.processes()) and time.monotonic() < deadline:
            time.sleep(0.05)
        if left:
            raise HostError(f"host {self.name}: processes {left} outlived its PID 1")

    def _check_alive(self) -> None:
        if not self.alive:
            raise HostError(f"host {self.name} is not running (killed?)")


class Cluster:
    """Hosts on one bridge, sharing `shared`; each with its own disk at `local`.

    `root` holds the cluster's files: `shared/` (the shared directory, readable by the
    test process at the same path) and `local/` (an empty mount point here; a tmpfs in
    each host). Use as a context manager; `close` tears everything down and may be
    called more than once.
    """

    def __init__(self, root: Path) -> None:
        sweep_stale()
        self.id = secrets.token_hex(3)
        self.root = Path(root).resolve()
        self.shared = self.root / "shared"
        self.local = self.root / "local"
        for folder in (self.shared, self.local, self.root / "etc"):
            folder.mkdir(parents=True, exist_ok=True)
        self.hosts: dict[str, Host] = {}
        self.bridge = f"{PREFIX}b{self.id}"
        self._links: list[str] = []
        self._netns: list[str] = []
        self._registry = REGISTRY / f"{self.id}.json"
        self.network = _free_subnet()
        self._links.append(self.bridge)
        self._record()
        try:
            _ip("link", "add", self.bridge, "type", "bridge")
            _ip("addr", "add", f"{self.gateway}/{self.network.prefixlen}", "dev", self.bridge)
            _ip("link", "set", self.bridge, "up")
        except BaseException:
            self.close()
            raise

    @property
    def gateway(self) -> str:
        """The test process's own address on the bridge (hosts reach it there)."""
        return str(self.network[1])

    def add_host(self, name: str) -> Host:
        """Start a host named `name` (its hostname: `evh-<cluster id>-<name>`)."""
        if name in self.hosts:
            raise ValueError(f"host {name} exists")
        index = len(self.hosts) + 2
        hostname = f"{PREFIX}-{self.id}-{name}"
        netns, veth = hostname, f"{PREFIX}v{self.id}{index}"
        address = str(self.network[index])
        self._netns.append(netns)
        self._links.append(veth)
        self._record()
        _ip("netns", "add", netns)
        _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns)
        _ip("link", "set", veth, "master", self.bridge, "up")
        _ip("-n", netns, "addr", "add", f"{address}/{self.network.prefixlen}", "dev", "eth0")
        _ip("-n", netns, "link", "set", "eth0", "up")
        _ip("-n", netns, "link", "set", "lo", "up")

        etc = self.root / "etc" / name
        etc.mkdir()
        (etc / "hosts").write_text("127.0.0.1 localhost\n::1 localhost\n")
        (etc / "resolv.conf").write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
        mounts = [
            ["bind", str(etc / "hosts"), "/etc/hosts"],
            ["bind", str(etc / "resolv.conf"), "/etc/resolv.conf"],
            ["bind", str(self.shared), str(self.shared)],
            ["tmpfs", "", str(self.local)],
        ]
        spec = json.dumps({"hostname": hostname, "mounts": mounts})
        log = open(etc / "init.log", "wb")  # noqa: SIM115 -- closed below
        with log:
            unshare = subprocess.Popen(
                [
                    "nsenter",
                    f"--net=/run/netns/{netns}",
                    "unshare",
                    "--uts",
                    "--mount",
                    "--pid",
                    "--fork",
                    "--mount-proc",
                    "--kill-child",  # unshare killed (with this thread): the host dies
                    "--",
                    sys.executable,
                    "-I",
                    "-S",
                    "-c",
                    _INIT,
                    spec,
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                preexec_fn=die_with_parent,
            )
        ready = unshare.stdout.readline()
        unshare.stdout.close()
        pids = children(unshare.pid)
        if ready.strip() != b"ready" or len(pids) != 1:
            unshare.kill()
            unshare.wait()
            why = (etc / "init.log").read_text(errors="replace").strip()
            raise HostError(f"host {name} did not start: {why or 'no output'}")
        pid = pids[0]
        host = Host(
            name=name,
            hostname=hostname,
            address=address,
            netns=netns,
            pid=pid,
            _unshare=unshare,
            _pidns=os.readlink(f"/proc/{pid}/ns/pid"),
        )
        self.hosts[name] = host
        return host

    def close(self) -> None:
        """Kill every host, remove the namespaces and links; what fails is reported
        after the rest is done."""
        problems = []
        for host in self.hosts.values():
            try:
                host.kill()
            except HostError as exc:
                problems.append(str(exc))
        _remove(self._netns, self._links)
        self._registry.unlink(missing_ok=True)
        if problems:
            raise HostError("; ".join(problems))

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _record(self) -> None:
        """What this cluster created, with its owner's identity, for `sweep_stale`."""
        REGISTRY.mkdir(parents=True, exist_ok=True)
        owner = {"pid": os.getpid(), "start": start_ticks()}
        record = {"owner": owner, "netns": self._netns, "links": self._links}
        tmp = self._registry.with_suffix(".tmp")
        tmp.write_text(json.dumps(record))
        tmp.replace(self._registry)


def sweep_stale() -> list[str]:
    """Remove the namespaces and links of clusters whose test process is gone (killed
    before its teardown); returns the registry files swept."""
    swept = []
    for path in sorted(REGISTRY.glob("*.json")) if REGISTRY.is_dir() else []:
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        owner = record.get("owner", {})
        if alive(owner.get("pid", 0)) and start_ticks(owner["pid"]) == owner.get("start"):
            continue
        _remove(record.get("netns", []), record.get("links", []))
        path.unlink(missing_ok=True)
        swept.append(path.name)
    return swept


def _remove(netns: Sequence[str], links: Sequence[str]) -> None:
    for name in netns:  # takes its end of the veth pair along, and so the other end
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
    for name in links:
        subprocess.run(["ip", "link", "del", name], capture_output=True)


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if done.returncode:
        raise HostError(f"ip {' '.join(args)}: {done.stderr.strip()}")


def _free_subnet() -> ipaddress.IPv4Network:
    """A random 10.x.y.0/24 that no interface here uses."""
    listed = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
    used = [
        ipaddress.ip_interface(word).network
        for line in listed.splitlines()
        for word in line.split()[3:4]
    ]
    for _ in range(100):
        second, third = secrets.randbelow(50) + 200, secrets.randbelow(256)
        net = ipaddress.ip_network(f"10.{second}.{third}.0/24")
        if not any(net.overlaps(other) for other in used):
            return net
    raise HostError("no free 10.x.y.0/24 for a cluster")
