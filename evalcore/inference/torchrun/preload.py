"""torchrun and its ranks forked from a process that has imported torch already.

A shard launch used to import torch twice before its rank could answer: torchrun
imports it (about 1.2 s here), sets up its rendezvous and starts each rank, a fresh
interpreter that imports torch again. A preload server is a process that imports torch,
torchrun's module and the rank's modules once, then forks a child per request. The
launch keeps torchrun as the launcher: the command is still `torch.distributed.run` with
the same arguments, its rendezvous, its per-rank error files (`@record`) and its signal
handling; only the interpreters torchrun and the ranks run in come from the fork.

`python -m evalcore.inference.torchrun.preload MODULE ARGS...` is the client. It stands where
`python -m MODULE ARGS...` would (what the launcher and torchrun start, wait on and
signal): it asks the server named by `EVALCORE_PRELOAD_SOCKET` to fork a child that runs
MODULE as `__main__` with the client's arguments, environment, working directory and
standard streams (passed as file descriptors), forwards the signals it gets to that
child, and exits as the child exits (its code, or its signal). Without a server, or if
the server refuses (a different Python, an environment variable that an import may have
read differs, CUDA started in the server), it execs `python -u -m MODULE ARGS...`: the
launch as it is without preloading.

No process outlives its launch: the server kills a child's process group when the
client's connection closes (the client was killed), every child dies with the server
(parent-death signal), and the server kills its children and exits when the process that
started it is gone (end of file on a pipe only that process holds).

This module imports only the standard library at the top: the client is a fresh
interpreter on the launch's critical path.
"""

from __future__ import annotations

import atexit
import gc
import hashlib
import json
import os
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

from evalcore.atomic import sweep, temp_prefix

SOCKET_ENV = "EVALCORE_PRELOAD_SOCKET"
CLIENT_MODULE = __name__
# Set per launch or per rank (by torchrun, by the launcher per device group) and read
# only after the fork (by the rank, by torch when CUDA starts), so they may differ
# between the server and a request. Any other difference might have changed what an
# import did: the client then starts a fresh interpreter.
PER_LAUNCH_ENV = frozenset(
    {
        "RANK",
        "LOCAL_RANK",
        "GROUP_RANK",
        "ROLE_RANK",
        "ROLE_NAME",
        "LOCAL_WORLD_SIZE",
        "WORLD_SIZE",
        "GROUP_WORLD_SIZE",
        "ROLE_WORLD_SIZE",
        "MASTER_ADDR",
        "MASTER_PORT",
        "TORCH_NCCL_ASYNC_ERROR_HANDLING",
        "CUDA_VISIBLE_DEVICES",
        SOCKET_ENV,
    }
)
PER_LAUNCH_PREFIXES = ("TORCHELASTIC_",)
FORWARDED_SIGNALS = (
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
)
MAX_SERVERS = 2  # one per distinct environment (CPU and GPU launches differ); ~0.5 GB each
_HEADER = struct.Struct(">I")


def supported() -> bool:
    """Linux only: fork, Unix sockets with descriptor passing, parent-death signals."""
    return sys.platform.startswith("linux")


# --- the parent's side: start and keep servers --------------------------------------


PRELOAD_DIR = "evalcore-preload"


class PreloadServer:
    """A preload server for launches with environment `env`: listening at once, ready
    (accepting) once `modules` are imported. Closed when this process exits."""

    def __init__(self, env: Mapping[str, str], modules: Sequence[str]) -> None:
        # a killed run's folders (its pid in the name) go when the next server starts
        sweep(Path(tempfile.gettempdir()), f"{PRELOAD_DIR}*")
        self.dir = Path(tempfile.mkdtemp(prefix=PRELOAD_DIR + temp_prefix()))  # mode 0700
        self.socket = self.dir / "socket"
        self.key = environment_key(env)
        lifeline, self._lifeline = os.pipe()  # the server reads end of file when we are gone
        with open(self.dir / "server.log", "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", CLIENT_MODULE, "--serve", str(self.socket), str(lifeline)]
                + list(dict.fromkeys(modules)),
                env=dict(env),
                pass_fds=(lifeline,),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        os.close(lifeline)
        self._wait_listening()

    def _wait_listening(self, timeout_s: float = 10.0) -> None:
        """Until the socket exists (a client connecting earlier would find none and
        start a fresh interpreter); its imports may still run: clients queue meanwhile."""
        deadline = time.monotonic() + timeout_s
        while not self.socket.exists() and self.alive() and time.monotonic() < deadline:
            time.sleep(0.005)

    @property
    def log(self) -> Path:
        return self.dir / "server.log"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the server (it kills whatever it forked that still runs)."""
        if self._lifeline >= 0:
            os.close(self._lifeline)
            self._lifeline = -1
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


_servers: dict[str, PreloadServer] = {}
_servers_lock = threading.Lock()


def preload_server(env: Mapping[str, str], modules: Sequence[str]) -> PreloadServer:
    """The running server for launches with `env`, started now if there is none (the
    first launch then waits for its imports, the later ones fork at once)."""
    key = environment_key(env)
    with _servers_lock:
        server = _servers.get(key)
        if server is None or not server.alive():
            if server is not None:
                server.close()
            while len(_servers) >= MAX_SERVERS:
                _servers.pop(next(iter(_servers))).close()
            if not _servers:
                atexit.register(close_servers)
            server = _servers[key] = PreloadServer(env, modules)
        return server


def close_servers() -> None:
    with _servers_lock:
        while _servers:
            _servers.popitem()[1].close()


def environment_key(env: Mapping[str, str]) -> str:
    """What a server's imports may have read from the environment, hashed."""
    kept = sorted((k, v) for k, v in env.items() if not _per_launch(k))
    return hashlib.sha256(json.dumps(kept).encode()).hexdigest()[:16]


def _per_launch(name: str) -> bool:
    return name in PER_LAUNCH_ENV or name.startswith(PER_LAUNCH_PREFIXES)


# --- the client: stands in for `python -m MODULE ARGS...` ----------------------------


def run_client(module: str, args: list[str]) -> NoReturn:
    pending: list[int] = []  # signals that came before the child's pid was known
    child = 0

    def forward(signum, frame) -> None:
        if child:
            _signal_group(child, signum)
        else:
            pending.append(signum)

    for sig in FORWARDED_SIGNALS:
        signal.signal(sig, forward)
    path = os.environ.get(SOCKET_ENV)
    reader = None
    if path:
        child, reader, refusal = _request(path, module, args)
        if refusal:
            print(f"preload: {refusal}; starting a fresh interpreter", file=sys.stderr)
    if child:
        for signum in pending:
            _signal_group(child, signum)
        _exit_as(_wait_child(reader))
    if pending:  # asked to stop before anything started: stop
        _exit_as(-pending[0])
    os.execv(sys.executable, [sys.executable, "-u", "-m", module, *args])


def _request(path: str, module: str, args: list[str]):
    """(child pid, reply reader, refusal); pid 0 when nothing was started."""
    try:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.connect(path)
        payload = json.dumps(
            {
                "module": module,
                "argv": args,
                "cwd": os.getcwd(),
                "env": dict(os.environ),
                "python": sys.executable,
            }
        ).encode()
        socket.send_fds(conn, [_HEADER.pack(len(payload))], [0, 1, 2])
        conn.sendall(payload)
        reader = conn.makefile("rb")
        word, _, rest = reader.readline().decode().strip().partition(" ")
    except OSError as exc:
        return 0, None, f"no preload server ({exc.strerror or exc})"
    if word == "pid":
        return int(rest), reader, None
    return 0, None, rest or "the preload server closed the connection"


def _wait_child(reader) -> int:
    """The child's exit code (negative: killed by that signal)."""
    word, _, code = reader.readline().decode().strip().partition(" ")
    if word != "exit":
        print("preload: the preload server died (and with it the child)", file=sys.stderr)
        return 1
    return int(code)


def _exit_as(code: int) -> NoReturn:
    sys.stdout.flush()
    sys.stderr.flush()
    if code < 0:  # die of the same signal, so whoever waits on us sees what happened
        if -code not in (signal.SIGKILL, signal.SIGSTOP):
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    os._exit(code if code >= 0 else 128 - code)


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


# --- the server -----------------------------------------------------------------------


def serve(path: str, lifeline: int, modules: Sequence[str]) -> dict | None:
    """Import `modules`, then fork one child per request until the lifeline closes.
    Returns None in the server when it stops; returns the request in a forked child,
    already set up as the client's process (streams, environment, directory)."""
    import evalcore.processes  # noqa: F401 - every child arms it

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(128)  # clients may connect while the imports run; they wait
    environment = dict(os.environ)
    for name in modules:
        try:
            __import__(name)
        except Exception as exc:  # noqa: BLE001 - the child imports it again and says why
            print(f"preload: {name} not preloaded: {type(exc).__name__}: {exc}", flush=True)
    gc.freeze()  # the collector of a child never walks (and so never copies) these objects
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes select through the pipe
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ, "listener")
    sel.register(lifeline, selectors.EVENT_READ, "lifeline")
    sel.register(wake_r, selectors.EVENT_READ, "wake")
    clients: dict[int, socket.socket | None] = {}  # child pid -> its client's connection
    try:
        while True:
            for key, _ in sel.select():
                what = key.data
                if what == "listener":
                    conn, _ = listener.accept()
                    sel.register(conn, selectors.EVENT_READ, "request")
                elif what == "lifeline":
                    if not os.read(lifeline, 1):
                        return None  # the process that started us is gone
                elif what == "wake":
                    os.read(wake_r, 512)
                elif what == "request":
                    conn = key.fileobj
                    sel.unregister(conn)
                    pid, request = _start(conn, environment)
                    if pid == 0:  # the child
                        for fd in (lifeline, wake_r, wake_w):
                            os.close(fd)
                        sel.close()
                        listener.close()
                        for other in clients.values():
                            if other is not None:
                                other.close()
                        conn.close()
                        return request
                    if pid > 0:
                        clients[pid] = conn
                        sel.register(conn, selectors.EVENT_READ, pid)
                else:  # a child's client: the only thing it ever sends is end of file
                    conn = key.fileobj
                    if not conn.recv(1):
                        sel.unregister(conn)
                        conn.close()
                        clients[what] = None
                        _signal_group(what, signal.SIGKILL)  # the client was killed
            _reap(clients, sel)
    finally:
        if clients and os.getpid() == _server_pid:
            for pid in clients:
                _signal_group(pid, signal.SIGKILL)


_server_pid = os.getpid()


def _start(conn: socket.socket, environment: dict[str, str]) -> tuple[int, dict | None]:
    """Read the request and fork: (0, request) in the child, set up as the client's
    process; (pid, None) in the server; (-1, None) if refused or unreadable (the client
    then starts a fresh interpreter)."""
    fds: list[int] = []
    try:
        conn.settimeout(10)
        header, fds, _, _ = socket.recv_fds(conn, _HEADER.size, 3)
        while len(header) < _HEADER.size:
            chunk = conn.recv(_HEADER.size - len(header))
            if not chunk:
                raise ConnectionError("closed")
            header += chunk
        (size,) = _HEADER.unpack(header)
        payload = b""
        while len(payload) < size:
            chunk = conn.recv(size - len(payload))
            if not chunk:
                raise ConnectionError("closed")
            payload += chunk
        request = json.loads(payload)
        conn.settimeout(None)
    except (OSError, ValueError):
        for fd in fds:
            os.close(fd)
        conn.close()
        return -1, None
    refusal = _refusal(request, environment, len(fds))
    if refusal:
        for fd in fds:
            os.close(fd)
        _reply(conn, f"refuse {refusal}")
        conn.close()
        return -1, None
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        _become(request, fds)
        return 0, request
    for fd in fds:
        os.close(fd)
    if not _reply(conn, f"pid {pid}"):
        _signal_group(pid, signal.SIGKILL)  # nobody waits for it
    return pid, None


def _refusal(request: dict, environment: dict[str, str], n_fds: int) -> str | None:
    if request.get("python") != sys.executable:
        return f"another Python ({request.get('python')})"
    if n_fds != 3:
        return "standard streams not received"
    env = request.get("env", {})
    differs = sorted(
        k
        for k in set(env) | set(environment)
        if not _per_launch(k) and env.get(k) != environment.get(k)
    )
    if differs:
        return "environment differs from the preload server's: " + ", ".join(differs[:5])
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        return "CUDA was started while preloading (a fork could not use it)"
    if threading.active_count() > 1:
        return "threads run in the preload server (a fork could deadlock)"
    return None


def _become(request: dict, fds: list[int]) -> None:
    """In the fresh child: the client's session, streams, directory and environment."""
    from evalcore.processes import die_with_parent_now

    os.setsid()  # its own process group, as a launch's processes have
    die_with_parent_now()
    signal.set_wakeup_fd(-1)
    for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_DFL)
    for sig in (signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    for fd in fds:
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = [request["module"], *request["argv"]]
    sys.path[0] = request["cwd"]  # where `python -m` puts the working directory
    numpy = sys.modules.get("numpy")
    if numpy is not None:  # its global generator was seeded once, in the server
        numpy.random.seed()


def _reply(conn: socket.socket, line: str) -> bool:
    try:
        conn.sendall(line.encode() + b"\n")
        return True
    except OSError:
        return False


def _reap(clients: dict[int, Any], sel: selectors.BaseSelector) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        conn = clients.pop(pid, None)
        if conn is not None:
            sel.unregister(conn)
            _reply(conn, f"exit {os.waitstatus_to_exitcode(status)}")
            conn.close()


def run_child(request: dict) -> NoReturn:
    """Run the request's module as `__main__`, then exit as an interpreter would (threads
    joined, atexit handlers run, streams flushed) but without tearing the modules down:
    freeing torch's objects one by one would copy every page the fork shares with the
    server (0.4 s here) for nothing."""
    import runpy

    sys.modules.pop(request["module"], None)  # run afresh as __main__, as `python -m` does
    try:
        runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as stop:
        code = _exit_code(stop.code)
    except BaseException:  # as an uncaught exception ends `python -m`: traceback, 1
        sys.excepthook(*sys.exc_info())
        code = -signal.SIGINT if sys.exc_info()[0] is KeyboardInterrupt else 1
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    _exit_as(code)


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def main(argv: list[str]) -> int:
    if argv[:1] == ["--serve"]:
        request = serve(argv[1], int(argv[2]), argv[3:])
        if request is None:
            return 0
        run_child(request)
    if not argv:
        print(f"usage: python -m {CLIENT_MODULE} MODULE [ARGS...]", file=sys.stderr)
        return 2
    run_client(argv[0], argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
