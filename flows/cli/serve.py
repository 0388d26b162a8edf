"""Operate the pipeline on a real local Prefect server: `evalcore serve` and `evalcore stop`.

`serve` starts a Prefect server on loopback with a project-local `PREFECT_HOME` (its
SQLite database, logs and the process ids live there), generates the demo benchmark the
`eval/video` deployment evaluates by default, creates the process work pool and the
concurrency limits, deploys `deployments/prefect.yaml`, starts a worker and prints the
UI address. `stop` stops the worker, then the server (a worker whose server is gone
ignores SIGTERM).

The server is started detached with its output in a log file, not with
`prefect server start --background`, whose server dies at its first log line (its
output goes to a pipe nobody reads). Every child gets DO_NOT_TRACK=1 and
PREFECT_SERVER_ANALYTICS_ENABLED=false, so nothing is looked up off the machine.

The pool does not stream a flow run's output to its worker (`stream_output: false`):
with a pipe to the worker, a flow run died with the worker (killed, restarted) at its
next log line (the console handler exits on a broken pipe). A flow run's logs are in
the UI and `prefect flow-run logs <id>`; it outlives its worker.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from evalcore.processes import alive, cmdline
from flows.cli.zombies import HEARTBEAT_S

REPO_ROOT = Path(__file__).resolve().parents[2]
PREFECT_FILE = REPO_ROOT / "deployments" / "prefect.yaml"
WORK_POOL = "evalcore"  # the pool named in deployments/prefect.yaml
GPU_POOL = "gpu"  # the pool of `eval/shard` runs (inference.placement: pool)
DEMO_DATA = Path("data/synthetic")  # under the project dir; the `video` defaults read it
STATE_FILE = "serve.json"
ENV_FILE = "env.sh"


class ServeError(RuntimeError):
    """A step of `serve` failed; the message says which and where its log is."""


@dataclass(frozen=True)
class ServeOptions:
    """What `evalcore serve` starts, and where."""

    project_dir: Path = field(default_factory=Path.cwd)  # flow runs work here (data/, outputs/)
    home: Path | None = None  # PREFECT_HOME; default: project_dir/.prefect
    host: str = "127.0.0.1"
    port: int = 4200
    videos: int = 60  # size of the generated demo benchmark
    seed: int = 0
    gpu_slots: int | None = None  # limit of the `gpu` tag; default: the device groups here
    worker_poll_seconds: float = 5.0  # how soon a worker sees a new run (Prefect: 10 s)
    startup_timeout: float = 120.0

    @property
    def prefect_home(self) -> Path:
        return (self.home or self.project_dir / ".prefect").resolve()

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.port}/api"

    @property
    def ui_url(self) -> str:
        return f"http://{self.host}:{self.port}"


def prefect_env(home: Path, api_url: str | None = None) -> dict[str, str]:
    """The environment of every Prefect process `serve` starts."""
    env = dict(os.environ)
    env.pop("PREFECT_PROFILE", None)  # a user profile must not point us at another API
    env.update(
        PREFECT_HOME=str(home),
        DO_NOT_TRACK="1",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
    )
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return env


def serve(opts: ServeOptions, say=print) -> dict:
    """Start server, pool, limits, deployments and worker; return the recorded state.
    Says each step as it begins, with the seconds since the start."""
    begun = time.monotonic()

    def step(text: str) -> None:
        say(f"[{time.monotonic() - begun:5.1f} s] {text}")

    home = opts.prefect_home
    home.mkdir(parents=True, exist_ok=True)
    running = read_state(home)
    if running and alive(running["server"]["pid"], reap=True):
        worker = running.get("worker")
        if worker and alive(worker["pid"], reap=True):
            url = running["ui_url"]
            say(f"Already serving at {url} (PREFECT_HOME={home}); `evalcore stop` first.")
            return running
        # the worker died (kill -9, OOM): runs would stay Scheduled; start a new one
        project = Path(running["project_dir"])
        env = {**prefect_env(home, running["api_url"]), "EVALCORE_PROJECT_DIR": str(project)}
        running["worker"] = _start_worker(opts, home, env, project)
        write_state(home, running)
        say(
            f"Serving at {running['ui_url']}; its worker was gone, started a new one "
            f"(pid {running['worker']['pid']}, log {running['worker']['log']})."
        )
        return running
    if running:  # the server died: stop what is left (a worker) before starting anew
        stop(home, say)
    if not _port_free(opts.host, opts.port):
        raise ServeError(f"{opts.host}:{opts.port} is in use; pass --port")

    project = opts.project_dir.resolve()
    env = prefect_env(home, opts.api_url)
    state = {
        "ui_url": opts.ui_url,
        "api_url": opts.api_url,
        "prefect_home": str(home),
        "project_dir": str(project),
    }
    server_log = home / "server.log"
    step(f"starting the Prefect server on {opts.host}:{opts.port} (log: {server_log})")
    server_env = {k: v for k, v in env.items() if k != "PREFECT_API_URL"}
    server = _spawn(
        [*_prefect(), "server", "start", "--host", opts.host, "--port", str(opts.port)],
        server_log,
        server_env,
        cwd=home,
    )
    state["server"] = {"pid": server, "log": str(server_log)}
    write_state(home, state)  # recorded at once: `stop` must find it even if a step fails

    step(f"generating the demo benchmark ({opts.videos} videos) under {project / DEMO_DATA}")
    tsv = _demo_benchmark(project, opts.videos, opts.seed)  # while the server boots
    step("waiting for the server to answer")
    _wait_healthy(opts.api_url, server, server_log, opts.startup_timeout)
    slots = opts.gpu_slots or default_gpu_slots()
    step(
        f"server up; creating work pool {WORK_POOL!r}, the `gpu` limit ({slots}) and the "
        "zombie automation"
    )
    _run_python(
        f"from flows.cli.serve import configure_server; configure_server({slots})", env, home
    )
    step(f"deploying {PREFECT_FILE.relative_to(REPO_ROOT)} (log: {home / 'setup.log'})")
    deploy_env = {**env, "EVALCORE_PROJECT_DIR": str(project)}
    _prefect_cli(
        ["--no-prompt", "deploy", "--all", "--prefect-file", str(PREFECT_FILE)],
        deploy_env,
        home,
        cwd=REPO_ROOT,
    )
    step("starting the worker")
    state["worker"] = _start_worker(opts, home, deploy_env, project)
    worker_log = state["worker"]["log"]
    write_state(home, state)
    _write_env_file(home, opts.api_url)
    step("ready")
    say(
        f"\nPrefect UI: {opts.ui_url}\n"
        f"Demo benchmark: {tsv}\n"
        f"Worker log: {worker_log}\n\n"
        f"In another shell:\n"
        f"  source {home / ENV_FILE}\n"
        f"  prefect deployment run eval/video\n"
        f"Stop with `evalcore stop` (or `make stop`)."
    )
    return state


def configure_server(gpu_slots: int) -> None:
    """Run by `serve` in a child with the server's settings (one interpreter for the three):
    the process work pool, whose flow runs do not stream their output to the worker (so
    they outlive it), the limit of the `gpu` tag, and the zombie automation."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.workers.process import ProcessWorker

    from flows.cli.zombies import create_zombie_automation

    template = ProcessWorker.get_default_base_job_template()
    template["variables"]["properties"]["stream_output"]["default"] = False
    with get_client(sync_client=True) as client:
        for name in (WORK_POOL, GPU_POOL):
            pool = WorkPoolCreate(name=name, type="process", base_job_template=template)
            client.create_work_pool(pool, overwrite=True)
        client.create_concurrency_limit(tag="gpu", concurrency_limit=gpu_slots)
    create_zombie_automation()


def worker_command(pool: str, limit: int | None, name: str | None) -> tuple[list[str], dict]:
    """`prefect worker start` for a pool, and its environment: its flow runs send
    heartbeats (so a dead host's runs are marked Crashed), and a `gpu` worker runs at most
    `limit` shard runs at once (one per device group of its host). Its default name
    `{pool}-{hostname}` tells in the UI which host ran what."""
    argv = [*_prefect(), "worker", "start", "--pool", pool]
    if limit is not None:
        argv += ["--limit", str(limit)]
    # its name is the flow runs' `prefect.worker.name` label: it says which host ran them
    argv += ["--name", name or f"{pool}-{socket.gethostname()}"]
    env = {**os.environ}
    env.setdefault("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", str(HEARTBEAT_S))
    return argv, env


def _run_python(code: str, env: dict[str, str], home: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=home, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise ServeError(f"{code!r} failed:\n{done.stderr[-2000:]}")


def _start_worker(opts: ServeOptions, home: Path, env: dict[str, str], project: Path) -> dict:
    """A process worker on the pool, running flow runs in the project directory."""
    worker_log = home / "worker.log"
    worker_env = {
        **env,
        "PREFECT_WORKER_QUERY_SECONDS": str(opts.worker_poll_seconds),
        # flow runs send heartbeats; a run that stops sending them is marked Crashed
        "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(HEARTBEAT_S),
    }
    worker = _spawn(
        [*_prefect(), "worker", "start", "--pool", WORK_POOL, "--name", f"{WORK_POOL}-local"],
        worker_log,
        worker_env,
        cwd=project,
    )
    return {"pid": worker, "log": str(worker_log)}


def stop(home: Path, say=print, grace_seconds: float = 30.0) -> list[str]:
    """Stop what `serve` started under `home`: the worker first, then the server."""
    home = Path(home).resolve()
    state = read_state(home)
    if not state:
        say(f"Nothing to stop ({home / STATE_FILE} not found).")
        return []
    stopped = []
    for role in ("worker", "server"):
        entry = state.get(role)
        if entry and _terminate(entry["pid"], grace_seconds):
            stopped.append(role)
            say(f"Stopped the {role} (pid {entry['pid']}).")
    (home / STATE_FILE).unlink(missing_ok=True)
    return stopped


def read_state(home: Path) -> dict | None:
    path = Path(home) / STATE_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def write_state(home: Path, state: dict) -> None:
    from evalcore.atomic import atomic_write_text

    atomic_write_text(Path(home) / STATE_FILE, json.dumps(state, indent=2))


def _prefect() -> list[str]:
    """The `prefect` of this interpreter's environment."""
    exe = Path(sys.executable).parent / "prefect"
    return [str(exe)] if exe.exists() else [shutil.which("prefect") or "prefect"]


def _spawn(cmd: list[str], log: Path, env: dict, cwd: Path) -> int:
    """Start `cmd` detached (own session: it outlives us, and a signal to its process
    group reaches its children), with stdout and stderr appended to `log`."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
    return proc.pid


def _prefect_cli(args: list[str], env: dict, home: Path, cwd: Path | None = None) -> None:
    log = home / "setup.log"
    with open(log, "ab") as out:
        out.write(f"\n$ prefect {' '.join(args)}\n".encode())
        out.flush()
        done = subprocess.run(
            [*_prefect(), *args], stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd or home
        )
    if done.returncode:
        raise ServeError(f"`prefect {' '.join(args)}` failed; see {log}")


def _demo_benchmark(project: Path, videos: int, seed: int) -> Path:
    """The data the `video` deployment's defaults point to (kept if already generated)."""
    from evalcore.dataset.synthetic import generate_benchmark

    return generate_benchmark(project / DEMO_DATA, n_videos=videos, seed=seed)


def _wait_healthy(api_url: str, pid: int, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid, reap=True):
            raise ServeError(f"the Prefect server exited during startup; see {log}")
        try:
            with urllib.request.urlopen(f"{api_url}/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise ServeError(f"the Prefect server did not answer within {timeout:.0f} s; see {log}")


def _write_env_file(home: Path, api_url: str) -> None:
    """What `source .prefect/env.sh` sets: the server's address, and the venv's bin on
    PATH, so the README's next command (`prefect deployment run ...`) finds `prefect`."""
    bin_dir = Path(sys.executable).parent  # the venv (or interpreter) running `serve`
    lines = [
        f'export PATH="{bin_dir}:$PATH"',
        f"export PREFECT_HOME={home}",
        f"export PREFECT_API_URL={api_url}",
        "export DO_NOT_TRACK=1",
        "export PREFECT_SERVER_ANALYTICS_ENABLED=false",
    ]
    (home / ENV_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")


def _port_free(host: str, port: int) -> bool:
    """Nobody listens there (connections of a just-stopped server in TIME_WAIT do not
    count: the server binds with SO_REUSEADDR too)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _terminate(pid: int, grace_seconds: float) -> bool:
    """SIGTERM the process group `pid` leads, SIGKILL it after `grace_seconds`."""
    if not (alive(pid, reap=True) and "prefect" in cmdline(pid)):  # not a recycled pid
        return False
    os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    while time.monotonic() < deadline:
        if not alive(pid, reap=True):
            return True
        time.sleep(0.2)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return True
    while alive(pid, reap=True):
        time.sleep(0.1)
    return True


def default_gpu_slots() -> int:
    """torchrun shards that may run at once across flow runs: one per device group (on
    a CPU-only machine, one per usable core), not 1, which would serialise CPU shards."""
    from evalcore.inference.torchrun.plan import device_groups

    return len(device_groups([], ranks_per_shard=1))
