"""Which Prefect API a run of the command line talks to (`evalcore run`, `demo`, `smoke`).

In order:
1. the API the Prefect settings name (`PREFECT_API_URL` in the environment, a profile,
   `prefect.toml`, `.env`): Prefect's own choice, left alone;
2. the server `evalcore serve` started for this directory (`.prefect/serve.json`), if it
   answers its health check: the run then shows in that server's UI, and no server has
   to start;
3. else a temporary server, as Prefect's ephemeral mode would start one (the same
   command, the same database under `PREFECT_HOME`), but launched as the CLI's first act
   rather than at the flow's first API call: it boots (about 2.3 s here, mostly imports)
   while the CLI imports the flow and reads the config on the other core, and the CLI
   uses the rest of the wait to import what the flow engine imports on its first call.
   It gets SIGTERM when the run ends, and from the kernel when the CLI dies however it
   dies (a parent-death signal); the run does not wait for its shutdown (0.2 s).
   It has `EVALCORE_SERVER_START_TIMEOUT` seconds (default 120) to answer, more while it
   is still working (a loaded machine); one that exits or stalls past that ends the run
   with one line naming its log (`ServerStartFailed`).

`choose_api` runs before Prefect is imported (it must not import it); `PrefectApi.use`
runs once Prefect is imported, and points this process (every thread: the global settings
context is rebuilt) and its children at the chosen server.
"""

from __future__ import annotations

import http.client
import importlib.util
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from evalcore import processes
from flows.cli.reaper import MARK
from flows.cli.serve import read_state

HEALTH_TIMEOUT_S = 1.0
# `evalcore serve`'s server whose process runs but did not answer in HEALTH_TIMEOUT_S (a
# loaded machine) gets this long before a run turns to a temporary server instead
BUSY_HEALTH_TIMEOUT_S = 15.0
UVICORN_PORT_IN_USE = 3  # uvicorn's exit code when it cannot bind (Prefect retries on it)

START_TIMEOUT_ENV = "EVALCORE_SERVER_START_TIMEOUT"
DEFAULT_START_TIMEOUT_S = 120.0  # Prefect's own default (20 s) is short on a loaded machine
STALL_S = 10.0  # past the limit, a server whose CPU time grew this recently is working
MAX_WAIT_FACTOR = 3  # ... but no wait lasts longer than this many limits


class ServerStartFailed(RuntimeError):
    """The temporary server exited before answering, or did not answer in time (exit 1),
    or `EVALCORE_SERVER_START_TIMEOUT` is not a number of seconds (exit 2): one line."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def start_timeout_s() -> float | None:
    """The seconds `EVALCORE_SERVER_START_TIMEOUT` gives the temporary server to answer;
    None when unset (then 120 s, or Prefect's ephemeral start-up limit if longer)."""
    value = os.environ.get(START_TIMEOUT_ENV, "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise ServerStartFailed(
            f"{START_TIMEOUT_ENV}={value!r}: not a number of seconds above 0", exit_code=2
        )
    return seconds


def server_command(port: int) -> list[str]:
    """Prefect's ephemeral API server (`SubprocessASGIServer`'s command) on `port`."""
    prefect_dir = importlib.util.find_spec("prefect").submodule_search_locations[0]
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--app-dir",
        str(Path(prefect_dir).parent),
        "--factory",
        "prefect.server.api.server:create_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "error",
        "--lifespan",
        "on",
    ]


class TemporaryServer:
    """Prefect's ephemeral API server on a free loopback port, in a child process whose
    output goes to an unnamed temporary file (a killed run leaves nothing behind). It is
    saved as a log (`log_path`) when the start fails, or at `stop` if the server wrote
    anything (errors: it logs nothing else).

    `command(port)` is the server's command line (`server_command`; tests give one
    that never answers)."""

    def __init__(self, command: Callable[[int], list[str]] | None = None) -> None:
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self._command = command or server_command
        self._output = tempfile.TemporaryFile()  # the server's; read with pread only
        self.log_path: Path | None = None  # where its output was saved, if it was
        self._answered = False
        self._launch()

    def _launch(self) -> None:
        from evalcore.processes import die_with_parent

        self.port = _free_port()
        # Without the run's mark: not for the watcher (flows.cli.reaper) to SIGKILL; it gets
        # SIGTERM when the CLI ends, however it ends, and shuts down cleanly.
        env = {k: v for k, v in os.environ.items() if k != MARK}
        self.proc = subprocess.Popen(
            self._command(self.port),
            env={
                **env,
                "PREFECT_UI_ENABLED": "0",
                "PREFECT__SERVER_EPHEMERAL": "1",
                "PREFECT__SERVER_FINAL": "1",
            },
            stdin=subprocess.DEVNULL,
            stdout=self._output,
            stderr=subprocess.STDOUT,
            preexec_fn=lambda: die_with_parent(signal.SIGTERM),  # from the thread that lives
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def wait_ready(
        self,
        timeout_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        cpu_seconds: Callable[[int], float | None] | None = None,
    ) -> str:
        """Block until the server answers its health check; returns its API URL.

        Past `timeout_s` the wait goes on while the server is still working (its CPU
        time grew in the last `STALL_S`, or `timeout_s` if shorter), up to
        `MAX_WAIT_FACTOR` x `timeout_s`: a loaded machine slows its start-up, a stuck
        one does not end it. A server that exits fails at once. Either failure stops
        it, saves its output as a log and raises `ServerStartFailed` naming it."""
        cpu_seconds = cpu_seconds or processes.cpu_seconds
        started = clock()
        last_cpu, last_progress = None, started
        stall_s = min(STALL_S, timeout_s)
        while True:
            code = self.proc.poll()
            if code == UVICORN_PORT_IN_USE:  # another process took the port meanwhile
                self._launch()
                last_cpu = None
            elif code is not None:
                log = self._fail()
                last = _last_line(log)
                raise ServerStartFailed(
                    f"the temporary Prefect server exited with code {code} before answering "
                    f"(log: {log})" + (f": {last}" if last else "")
                )
            elif healthy(self.url, timeout_s=0.5):
                self._answered = True
                return self.url
            now = clock()
            cpu = cpu_seconds(self.proc.pid)
            if cpu is not None and cpu != last_cpu:
                last_cpu, last_progress = cpu, now
            waited = now - started
            working = now - last_progress < stall_s
            if waited >= timeout_s and (not working or waited >= MAX_WAIT_FACTOR * timeout_s):
                log = self._fail()
                raise ServerStartFailed(
                    f"the temporary Prefect server did not answer within {waited:.1f} s "
                    f"(log: {log}); on a loaded machine give it longer "
                    f"({START_TIMEOUT_ENV}=seconds, now {timeout_s:g}), or keep one running "
                    "with `evalcore serve`"
                )
            sleep(0.05)

    def _fail(self) -> Path:
        """Stop the server that failed to start; the path of its saved output."""
        if self.proc is not None:
            self.proc.terminate()
            self.proc = None
        return self._save_output()

    def stop(self) -> None:
        """SIGTERM; the server finishes its shutdown on its own (uvicorn's graceful stop
        takes 0.2 s here): nothing of the run is left to send to it. What it wrote
        after answering is saved, and said where."""
        if self.proc is not None:
            self.proc.terminate()
            self.proc = None
            if self._answered and os.fstat(self._output.fileno()).st_size:
                log = self._save_output()
                print(f"Prefect: the temporary server logged errors: {log}", file=sys.stderr)
        self._output.close()

    def _save_output(self) -> Path:
        if self.log_path is None:
            fd, path = tempfile.mkstemp(prefix="evalcore-prefect-server-", suffix=".log")
            out = self._output.fileno()
            with os.fdopen(fd, "wb") as log:
                log.write(os.pread(out, os.fstat(out).st_size, 0))  # its offset: the server's
            self.log_path = Path(path)
        return self.log_path


def _last_line(path: Path, limit: int = 300) -> str:
    """The last non-blank line of a log (its error, after a traceback), shortened."""
    try:
        with open(path, "rb") as log:
            log.seek(max(0, log.seek(0, os.SEEK_END) - 8192))
            lines = log.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return ""
    last = next((line.strip() for line in reversed(lines) if line.strip()), "")
    return last if len(last) <= limit else last[: limit - 3] + "..."


class PrefectApi:
    """The API choice of one CLI run: `served` (the `evalcore serve` server's API URL)
    or `temporary` (a server starting now), or neither (let the settings decide)."""

    def __init__(
        self,
        served: str | None = None,
        temporary: TemporaryServer | None = None,
        start_timeout_s: float | None = None,
    ):
        self.served = served
        self.temporary = temporary
        self.start_timeout_s = start_timeout_s  # a temporary server's; None: the default

    @contextmanager
    def use(self, say=None):
        """Point Prefect at the chosen server for the block (Prefect must be imported:
        its settings decide first), then stop a temporary server."""
        from prefect.context import refresh_global_settings_context
        from prefect.settings import get_current_settings

        say = say or (lambda line: print(line, file=sys.stderr))
        try:
            settings = get_current_settings()
            if settings.api.url or not settings.server.ephemeral.enabled:
                self.close()  # the settings name an API (or forbid a temporary one)
                if settings.api.url and not reachable(settings.api.url):
                    raise ApiUnreachable(
                        f"the Prefect API at {settings.api.url} (PREFECT_API_URL or the "
                        "profile) cannot be reached: start that server, or unset it to use "
                        "`evalcore serve`'s or a temporary one"
                    )
                yield settings.api.url
                return
            if self.served:
                url = self.served
                say(f"Prefect: using the server of `evalcore serve` at {_ui(url)}")
            else:
                self.temporary = self.temporary or TemporaryServer()
                _import_flow_engine()  # while the server boots: off the critical path
                prefects = settings.server.ephemeral.startup_timeout_seconds
                limit = self.start_timeout_s or max(DEFAULT_START_TIMEOUT_S, prefects)
                url = self.temporary.wait_ready(limit)
                say(
                    f"Prefect: temporary server at {_ui(url)}, stopped at the end "
                    "(`evalcore serve` keeps one running, and runs then use it)"
                )
            os.environ["PREFECT_API_URL"] = url  # children (Dask workers) use it too
            refresh_global_settings_context()  # and every thread of this process
            yield url
        finally:
            _drain_prefect_clients()  # the last logs and events, while the server is there
            self.close()

    def close(self) -> None:
        if self.temporary is not None:
            self.temporary.stop()
            self.temporary = None


# What Prefect imports on a flow's first call (its engines; FastAPI's encoder for the
# parameters): ~0.4 s that would otherwise come after the server is up.
FLOW_ENGINE_MODULES = ("prefect.flow_engine", "prefect.task_engine", "fastapi.encoders")


def _import_flow_engine() -> None:
    for name in FLOW_ENGINE_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:  # another Prefect version: it imports what it needs itself
            pass


def _drain_prefect_clients(timeout_s: float = 5.0) -> None:
    """Send what Prefect's background clients still queue (logs, events: the flow run's
    final state) before the server goes (Prefect would at exit, when a temporary server
    of ours is gone). Quietly: a drain that finds events queued logs a warning ("Still
    processing items") although nothing is wrong."""
    import logging

    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for service in (APILogWorker, EventsWorker):
        logger = logging.getLogger(service.__name__)
        level = logger.level
        logger.setLevel(logging.ERROR)
        try:
            service.drain_all(timeout=timeout_s)
        finally:
            logger.setLevel(level)


def choose_api(project_dir: Path) -> PrefectApi:
    """Decide early, without importing Prefect: an API URL in the environment is the
    settings' choice; else `evalcore serve`'s server if it answers; else start a
    temporary server now (`PrefectApi.use` stops it if a profile names an API).
    Raises `ServerStartFailed` (exit 2) for a bad `EVALCORE_SERVER_START_TIMEOUT`."""
    timeout_s = start_timeout_s()
    if os.environ.get("PREFECT_API_URL"):
        return PrefectApi()
    served = served_api(Path(project_dir) / ".prefect")
    if served:
        return PrefectApi(served=served)
    return PrefectApi(temporary=TemporaryServer(), start_timeout_s=timeout_s)


def served_api(home: Path) -> str | None:
    """The API URL of the server `evalcore serve` recorded under `home`, if it answers."""
    try:
        state = read_state(home)
    except (OSError, ValueError):
        return None
    url = (state or {}).get("api_url")
    if not url:
        return None
    if healthy(url, HEALTH_TIMEOUT_S):
        return url
    # slow, not gone: a run that started a temporary server instead would not show in
    # the served UI, and would load the busy machine with a second server
    pid = (state.get("server") or {}).get("pid")
    if isinstance(pid, int) and processes.alive(pid) and healthy(url, BUSY_HEALTH_TIMEOUT_S):
        return url
    return None


def healthy(api_url: str, timeout_s: float) -> bool:
    """`GET {api_url}/health` answers 200 (a plain HTTP request on loopback)."""
    try:
        url = urlsplit(api_url)
        conn = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=timeout_s)
        try:
            conn.request("GET", url.path.rstrip("/") + "/health")
            return conn.getresponse().status == 200
        finally:
            conn.close()
    except (OSError, ValueError, http.client.HTTPException):
        return False


class ApiUnreachable(RuntimeError):
    """The API the Prefect settings name refuses connections: a user's setting, said in
    one line (exit 2) rather than as Prefect's connection traceback."""


def reachable(api_url: str, timeout_s: float = 3.0) -> bool:
    """A TCP connection to the API's host and port opens (any server, Prefect Cloud too:
    no request is made, so no credentials are needed)."""
    try:
        url = urlsplit(api_url)
        port = url.port or (443 if url.scheme == "https" else 80)
        with socket.create_connection((url.hostname, port), timeout=timeout_s):
            return True
    except (OSError, ValueError):
        return False


def _ui(api_url: str) -> str:
    return api_url.removesuffix("/api")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
