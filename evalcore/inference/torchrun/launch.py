"""Start one shard as a torchrun subprocess and watch it until it ends, one way or another.

torchrun has no per-rank deadline and a stuck rank can stall for its full collective
timeout, so the parent watches from outside: a wall-clock deadline for the launch and
a progress watchdog per rank (its prediction log or its phase file must change every
`watchdog_s`). A stuck rank is SIGKILLed at once (its in-flight samples count as
crashed); torchrun and the other ranks get SIGTERM, then SIGKILL after a grace period.
Every rank is its own session (torchrun starts them so), so each process group is
signalled, and ranks seen while polling are swept at the end.

A failure raises `ShardFailed` whose message quotes the failing rank: its traceback
from torchrun's error file (`@record`), else its exit signal and the tail of its stderr.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from evalcore.inference.torchrun import preload
from evalcore.inference.torchrun.job import read_rank_status
from evalcore.inference.torchrun.plan import DeviceGroup
from evalcore.processes import alive, children, cmdline, die_with_parent, start_ticks

WORKER_MODULE = "evalcore.inference.torchrun.rank"

# One node, its rendezvous on loopback: torchrun's store listens on 127.0.0.1 at a port
# the kernel picks (port 0), so two shards' jobs never collide, and the ranks' MASTER_ADDR
# is 127.0.0.1 (`--local-addr`). `--standalone` publishes the machine's hostname as the
# address instead: where it does not resolve (a cluster node without DNS), torchrun
# retries the lookup and no rank starts (test_shard_on_a_host).
RENDEZVOUS = (
    "--nnodes=1",
    "--rdzv-backend=c10d",
    "--rdzv-endpoint=127.0.0.1:0",
    "--local-addr=127.0.0.1",
)


class ShardFailed(RuntimeError):
    """A launch that did not finish cleanly; the message carries the rank's own error."""

    def __init__(self, message: str, launch_dir: Path, ranks: Sequence[int] = ()) -> None:
        super().__init__(message)
        self.launch_dir = launch_dir
        self.failed_ranks = tuple(ranks)


@dataclass
class LaunchResult:
    seconds: float
    statuses: dict[int, dict] = field(default_factory=dict)


def torchrun_command(
    job_path: Path,
    launch_dir: Path,
    nproc: int,
    group: DeviceGroup,
    gpus_per_rank: int = 1,
    preloaded: bool = False,
) -> list[str]:
    """torchrun's command line. `preloaded`: torchrun and each rank start through the
    preload client (`python -m evalcore.inference.torchrun.preload MODULE ...`), same arguments."""
    client = ["-m", preload.CLIENT_MODULE] if preloaded else []
    cmd = [
        sys.executable,
        *client,
        *([] if preloaded else ["-m"]),
        "torch.distributed.run",
        *RENDEZVOUS,
        f"--nproc-per-node={nproc}",
        "--log-dir",
        str(launch_dir / "torchrun"),
        "--redirects",
        "3",  # each rank's stdout and stderr to its own file
    ]
    if not group.is_cpu and gpus_per_rank == 1:
        cmd.append("--virtual-local-rank")  # rank r sees only its GPU, as cuda:0
    worker = [preload.CLIENT_MODULE, WORKER_MODULE] if preloaded else [WORKER_MODULE]
    return [*cmd, "-m", *worker, str(job_path)]


def run_torchrun(
    job_path: Path,
    launch_dir: Path,
    nproc: int,
    group: DeviceGroup,
    progress_paths: Mapping[int, Sequence[Path]],
    *,
    gpus_per_rank: int = 1,
    deadline_s: float,
    watchdog_s: float,
    startup_s: float = 300.0,
    grace_s: float = 10.0,
    poll_s: float = 0.25,
    label: str = "shard",
    preload_modules: Sequence[str] | None = None,
) -> LaunchResult:
    """Run torchrun to the end; raise `ShardFailed` unless every rank finished.

    Call from the thread that should own torchrun: the kernel kills torchrun when this
    thread dies (parent-death signal), so a killed flow leaves no rank behind.
    `progress_paths[r]` are files whose change shows rank r is alive (its log).
    `preload_modules`: fork torchrun and the ranks from a preload server that imported
    these (started on this process's first launch, reused by the next ones).
    """
    launch_dir = Path(launch_dir)
    env = dict(os.environ)
    env["CUDA_VISIBLE_DEVICES"] = group.cuda_visible_devices
    env["PYTHONUNBUFFERED"] = "1"  # a rank's last words reach its log before a kill
    if group.is_cpu:
        env["OMP_NUM_THREADS"] = "1"
        # gloo (process_group on CPU) binds where the hostname resolves, else falls back
        # to loopback with a warning; a shard's ranks share one host: loopback it is
        env.setdefault("GLOO_SOCKET_IFNAME", "lo")
    env.pop(preload.SOCKET_ENV, None)
    if preload_modules is not None and preload.supported():
        env[preload.SOCKET_ENV] = str(preload.preload_server(env, preload_modules).socket)
    preloaded = preload.SOCKET_ENV in env
    cmd = torchrun_command(job_path, launch_dir, nproc, group, gpus_per_rank, preloaded)
    watch = RankWatch(launch_dir, nproc, progress_paths, watchdog_s, startup_s)
    started = time.monotonic()
    with open(launch_dir / "torchrun.log", "wb") as out:
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            preexec_fn=die_with_parent,
            start_new_session=True,  # its own process group, signalled as one
        )
    (launch_dir / "torchrun.pid").write_text(str(proc.pid))
    seen: set[int] = set()
    stop_reason, stuck = "", []
    try:
        while True:
            try:
                proc.wait(timeout=poll_s)
                break
            except subprocess.TimeoutExpired:
                pass
            seen.update(children(proc.pid))
            elapsed = time.monotonic() - started
            stuck = watch.stuck()
            if stuck:
                stop_reason = f"watchdog: {watch.describe(stuck)}"
            elif elapsed > deadline_s:
                stop_reason = f"deadline: still running after {deadline_s:g} s"
            if stop_reason:
                seen.update(watch.pids())
                _stop(proc, seen, watch.pids(stuck), grace_s)
                break
    finally:
        if proc.poll() is None:  # interrupted (e.g. KeyboardInterrupt): leave nothing running
            seen.update(children(proc.pid))
            _stop(proc, seen, [], grace_s)
        seen.update(watch.pids())
        sweep(seen, str(job_path), watch.start_times())
    seconds = time.monotonic() - started
    statuses = watch.statuses()
    if proc.returncode == 0 and not stop_reason:
        return LaunchResult(seconds, statuses)
    reason = stop_reason or f"torchrun exited with {_exit_text(proc.returncode)}"
    failed, detail = describe_failure(launch_dir, nproc, statuses, first=stuck)
    message = f"{label} failed after {seconds:.1f} s: {reason}\n{detail}\nlogs: {launch_dir}"
    (launch_dir / "failure.txt").write_text(message)
    raise ShardFailed(message, launch_dir, failed)


class RankWatch:
    """Per-rank progress: the (mtime, size) of its phase file and its log files.

    A rank gets `startup_s` to write its first phase (torchrun, Python and torch imports
    are slow on a busy machine and say nothing about the model), then `watchdog_s`
    between any two changes. A change counts from when `stuck` sees it, by `clock`.
    """

    def __init__(
        self,
        launch_dir: Path,
        nproc: int,
        progress_paths: Mapping[int, Sequence[Path]],
        watchdog_s: float,
        startup_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.launch_dir = launch_dir
        self.nproc = nproc
        self.paths = progress_paths
        self.watchdog_s = watchdog_s
        self.startup_s = startup_s
        self._clock = clock
        now = clock()
        self._last_change = {r: now for r in range(nproc)}
        self._signature: dict[int, tuple] = {r: self._sign(r) for r in range(nproc)}
        self._status: dict[int, dict] = {}

    def _sign(self, rank: int) -> tuple:
        files = [self.launch_dir / f"rank{rank}.json", *self.paths.get(rank, ())]
        sig = []
        for f in files:
            try:
                st = os.stat(f)
                sig.append((st.st_mtime_ns, st.st_size))
            except OSError:
                sig.append(None)
        return tuple(sig)

    def stuck(self) -> list[int]:
        now = self._clock()
        late = []
        for r in range(self.nproc):
            sig = self._sign(r)
            if sig != self._signature[r]:
                self._signature[r] = sig
                self._last_change[r] = now
                status = read_rank_status(self.launch_dir, r)
                if status:
                    self._status[r] = status
            phase = self._status.get(r, {}).get("phase")
            if phase == "done":
                continue
            limit = self.watchdog_s if phase else self.startup_s
            if now - self._last_change[r] > limit:
                late.append(r)
        return late

    def statuses(self) -> dict[int, dict]:
        for r in range(self.nproc):
            status = read_rank_status(self.launch_dir, r)
            if status:
                self._status[r] = status
        return dict(self._status)

    def start_times(self) -> dict[int, int]:
        """Rank pid -> its start time (clock ticks after boot), as the rank recorded it."""
        return {
            s["pid"]: s["start_ticks"]
            for s in self.statuses().values()
            if "pid" in s and s.get("start_ticks") is not None
        }

    def pids(self, ranks: Sequence[int] | None = None) -> list[int]:
        statuses = self.statuses()
        wanted = range(self.nproc) if ranks is None else ranks
        return [statuses[r]["pid"] for r in wanted if r in statuses and "pid" in statuses[r]]

    def describe(self, ranks: Sequence[int]) -> str:
        parts = []
        for r in ranks:
            phase = self._status.get(r, {}).get("phase")
            if phase:
                parts.append(f"rank {r} made no progress for {self.watchdog_s:g} s (phase {phase})")
            else:
                parts.append(f"rank {r} did not start within {self.startup_s:g} s")
        return "; ".join(parts)


def _stop(proc: subprocess.Popen, workers: set[int], stuck: Sequence[int], grace_s: float) -> None:
    for pid in stuck:  # no grace for a stuck rank: its in-flight samples are to blame
        _signal_group(pid, signal.SIGKILL)
    _signal_group(proc.pid, signal.SIGTERM)
    for pid in workers - set(stuck):
        _signal_group(pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        pass
    for pid in workers:
        _signal_group(pid, signal.SIGKILL)
    _signal_group(proc.pid, signal.SIGKILL)
    proc.wait()


def _signal_group(pid: int, sig: int) -> None:
    """Signal the process group led by `pid` (torchrun and each rank lead their own)."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def sweep(
    pids: set[int], marker: str, started: Mapping[int, int] | None = None, wait_s: float = 5.0
) -> list[int]:
    """SIGKILL any of `pids` still running whose command line names `marker` (the job
    file) or whose start time is the one `started` records for it (a rank forked by a
    preload server has the server's command line): never a stranger that reused a pid.
    Returns those still alive after wait_s."""
    started = started or {}
    ours = [
        p
        for p in pids
        if alive(p) and (marker in cmdline(p) or (p in started and started[p] == start_ticks(p)))
    ]
    for pid in ours:
        _signal_group(pid, signal.SIGKILL)
    deadline = time.monotonic() + wait_s
    while ours and time.monotonic() < deadline:
        ours = [p for p in ours if alive(p)]
        if ours:
            time.sleep(0.05)
    return ours


def _exit_text(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


_RANK_EXIT = re.compile(r"rank\s*:\s*(\d+)\s*\(local_rank:\s*\d+\)\s*\n\s*exitcode\s*:\s*(-?\d+)")


def rank_exit_codes(launch_dir: Path) -> tuple[dict[int, int], int | None]:
    """Per-rank exit codes and the root-cause rank, from torchrun's failure summary."""
    try:
        text = (Path(launch_dir) / "torchrun.log").read_text(errors="replace")
    except OSError:
        return {}, None
    codes = {int(r): int(c) for r, c in _RANK_EXIT.findall(text)}
    root = None
    if "Root Cause" in text:
        found = _RANK_EXIT.search(text.split("Root Cause", 1)[1])
        root = int(found.group(1)) if found else None
    return codes, root


def rank_files(launch_dir: Path, rank: int, name: str) -> list[Path]:
    return sorted(Path(launch_dir).glob(f"torchrun/*/attempt_*/{rank}/{name}"))


def read_error_file(launch_dir: Path, rank: int) -> str | None:
    """The rank's exception and traceback as written by `@record`, if it raised."""
    for path in rank_files(launch_dir, rank, "error.json"):
        try:
            message = json.loads(path.read_text())["message"]
        except (OSError, ValueError, KeyError):
            continue
        if isinstance(message, str):
            return message
        stack = message.get("extraInfo", {}).get("py_callstack", "")
        return f"{message.get('message', '')}\n{stack}".strip()
    return None


def stderr_tail(launch_dir: Path, rank: int, lines: int = 20, max_lines: int = 80) -> str:
    """The end of the rank's stderr: from its last traceback if one is near the end."""
    for path in rank_files(launch_dir, rank, "stderr.log"):
        try:
            text = path.read_text(errors="replace").rstrip().splitlines()[-max_lines:]
        except OSError:
            continue
        starts = [i for i, line in enumerate(text) if "Traceback (most recent call last)" in line]
        return "\n".join(text[starts[-1] :] if starts else text[-lines:])
    return ""


def describe_failure(
    launch_dir: Path, nproc: int, statuses: dict[int, dict], first: Sequence[int] = ()
) -> tuple[list[int], str]:
    """Which ranks failed, and what each said: the root cause (or stuck rank) first."""
    codes, root = rank_exit_codes(launch_dir)
    unfinished = [r for r in range(nproc) if statuses.get(r, {}).get("phase") != "done"]
    order = list(dict.fromkeys([*first, *([root] if root is not None else []), *unfinished]))
    parts = []
    for r in order:
        pid = statuses.get(r, {}).get("pid", "?")
        head = f"rank {r} (pid {pid}, phase {statuses.get(r, {}).get('phase', 'not started')})"
        if r in codes:
            head += f": {_exit_text(codes[r])}"
        error = read_error_file(launch_dir, r)
        if error:
            parts.append(f"{head}\n{error}")
        else:
            tail = stderr_tail(launch_dir, r)
            parts.append(f"{head}\n{tail}" if tail else head)
        if r == root and error:
            break  # the root cause's traceback says it; the others were stopped because of it
    return order, "\n".join(parts)
