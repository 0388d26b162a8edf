"""Frame extraction begun before the flow starts, and adopted by it.

`evalcore run` starts a temporary Prefect server as its first act and waits about 3 s
for it (the server's imports); against a running server the flow still begins ~1 s
after the config is read. Decoding does not need Prefect, so the command line begins
every extraction of the checked config at once (`begin`), in this process, each marked
with its own run mark; the flow takes it (`take`) and hands it to its extraction
task, which waits on it instead of decoding again (`tasks.frames.extract_frames`). Nothing
changes for a flow that runs elsewhere (a deployment's flow run, a retry): no head
start is registered in its process, and its task extracts as before.

If the flow never adopts it (Prefect's server fails to start, Ctrl-C), the process
does not wait for it: the thread is a daemon, and its end is that of a killed run (the
clips done are cached, the journal's lock goes with the process, so the next run
records the missing clips as `ExtractionStopped` and decodes them again; the decoder
processes go with the command, flows.cli.reaper).
"""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import Future
from pathlib import Path

from evalcore.cell import cells_of, extract_dataset_frames, frame_plans
from evalcore.config import EvalConfig
from evalcore.frames.index import FramesSummary
from evalcore.workspace import Workspace


class HeadStart:
    """One extraction begun before the flow: its run mark, its result, and its progress
    (clips done so far, then each one to whoever follows it)."""

    def __init__(self, run: str) -> None:
        self.run = run
        self.result: Future[FramesSummary] = Future()
        self._done = 0
        self._listener = None
        self._lock = threading.Lock()

    def clip_done(self, *_: object) -> None:
        with self._lock:
            self._done += 1
            listener = self._listener
        if listener is not None:
            listener()

    def follow(self, on_clip) -> int:
        """Call `on_clip()` for each clip done from now on; returns those done before."""
        with self._lock:
            self._listener = on_clip
            return self._done


_STARTED: dict[Path, HeadStart] = {}
_LOCK = threading.Lock()


def begin(config: EvalConfig) -> list[HeadStart]:
    """Begin extracting every (dataset, frame plan) of a checked config, each on a thread."""
    ws = Workspace.of(config)
    begun = []
    for dataset, frames in frame_plans(cells_of(config)):
        path = frames.index_path(dataset, ws)
        head = HeadStart(uuid.uuid4().hex)
        with _LOCK:
            if path in _STARTED:
                continue
            _STARTED[path] = head

        def extract(dataset=dataset, frames=frames, head=head) -> None:
            try:
                summary = extract_dataset_frames(dataset, frames, ws, head.clip_done, head.run)
            except BaseException as error:  # the adopting task raises it
                head.result.set_exception(error)
            else:
                head.result.set_result(summary)

        name = f"head-start {dataset.dataset_name}"
        threading.Thread(target=extract, name=name, daemon=True).start()
        begun.append(head)
    return begun


def started(index_path: Path) -> HeadStart | None:
    """The extraction begun in this process for this frame index, if any."""
    with _LOCK:
        return _STARTED.get(Path(index_path))


def take(index_path: Path) -> HeadStart | None:
    """The extraction begun in this process for this frame index, handed to one flow
    (once: a later flow call in this process extracts for itself)."""
    with _LOCK:
        return _STARTED.pop(Path(index_path), None)
