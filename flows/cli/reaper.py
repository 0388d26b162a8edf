"""No orphans after `kill -9` of a run: a watcher process outlives the CLI by a moment
and stops whatever the run started (Prefect's temporary API server, a Dask
LocalCluster, decode workers) that would otherwise keep running.

The CLI marks its environment (`EVALCORE_RUN=<id>`, inherited by every process it
starts) and forks the watcher first, before any thread exists. The watcher blocks on a
pipe whose write end only the CLI holds; the kernel closes it when the CLI dies, however
it dies, and the watcher then SIGKILLs every process carrying the mark. For runs only
(`run`, `demo`, `smoke`): `serve` starts a server that must outlive it.
"""

from __future__ import annotations

import os
import signal
import sys
import uuid

from evalcore.processes import kill_marked

MARK = "EVALCORE_RUN"


def install() -> None:
    if not sys.platform.startswith("linux"):
        return
    run_id = uuid.uuid4().hex
    os.environ[MARK] = run_id
    read_end, write_end = os.pipe()
    if os.fork() == 0:  # the watcher: a fresh interpreter, so `pkill -f "evalcore run"`
        os.close(write_end)  # does not match it
        os.setsid()  # not in the CLI's process group: a group kill leaves it to clean up
        os.set_inheritable(read_end, True)
        code = f"from flows.cli.reaper import watch; watch({read_end}, {run_id!r})"
        os.execv(sys.executable, [sys.executable, "-c", code])
    os.close(read_end)
    os.set_inheritable(write_end, False)  # children must not keep the watcher waiting


def watch(read_end: int, run_id: str) -> None:
    """Block until the CLI is gone (end of file on the pipe), then stop its leftovers."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        while os.read(read_end, 1):
            pass
    finally:
        kill_marked(MARK, run_id)
