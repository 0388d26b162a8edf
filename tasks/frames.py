"""Frame extraction of one dataset under one frame plan, parallel across its videos; its
frame index is written as clips finish, and inference reads it meanwhile.

`submit_extractions` submits one extraction task per (dataset, frame plan) of a config;
`FrameExtraction.begun` is where a dataset's inference waits for its frames to start.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from concurrent import futures
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectConcurrentFuture

from evalcore.benchmarks import load_samples
from evalcore.cell import Cell, extract_dataset_frames, frame_plans
from evalcore.config import DatasetSpec
from evalcore.frames import FrameSettings
from evalcore.frames.index import FramesSummary, index_run
from evalcore.progress import progress_bar
from evalcore.workspace import Workspace


class BegunExtraction(Protocol):
    """An extraction begun before the flow (`flows.cli.head_start.HeadStart`)."""

    run: str  # the mark of its frame index's head
    result: Future[FramesSummary]

    def follow(self, on_clip: Callable[[], object]) -> int:
        """Call `on_clip()` for each clip done from now on; returns those done before."""


# Not Prefect-cached on purpose: the frame cache is content-addressed, so a repeat only
# stats files and finds manifests (no decoder opens), and it notices a changed video or
# a deleted cache entry, which a persisted Prefect result would not.
#
# No retries: inference reads the index while it is written, so a second attempt would
# come after the units have recorded the clips the first one never reached
# (`ExtractionStopped`, retried by the next run).
@task(name="extract-frames", cache_policy=NO_CACHE)
def extract_frames(
    dataset: DatasetSpec,
    frames: FrameSettings,
    ws: Workspace,
    run: str = "",
    head: BegunExtraction | None = None,
) -> FramesSummary:
    """`run` marks the index's head, so the flow sees when this extraction has begun;
    `head`: the same extraction, begun by the command line before the flow (with that
    mark), which this task waits on instead of decoding again."""
    clips = len({(s.video_path, s.start, s.end) for s in load_samples(dataset) if s.video_path})
    with progress_bar(clips, f"frames {dataset.dataset_name}", "video") as bar:
        if head is not None:
            bar.update(head.follow(lambda: bar.update()))
            return head.result.result()
        return extract_dataset_frames(dataset, frames, ws, lambda *_: bar.update(), run)


@dataclass(frozen=True)
class FrameExtraction:
    """One submitted extraction: its frame index, the mark of its run, its task."""

    index: Path
    run: str
    future: PrefectConcurrentFuture  # the flow's task runner is a thread pool

    def begun(self) -> bool:
        """Wait until the extraction has written the head of its frame index (every
        answer key is known then, so the units of its cells can start); False if it
        failed first."""
        # the thread pool's own future: Prefect's `wait(timeout=...)` ends each wait by
        # raising an asynchronous exception in this thread (its watcher thread), 20 times
        # a second here; this one just waits
        task_thread = self.future.wrapped_future
        while index_run(self.index) != self.run:
            if futures.wait([task_thread], timeout=0.05).done:
                self.future.wait()  # its final state (`state` might read one not yet recorded)
                # completed: its index was written, though replaced since by another run's
                return index_run(self.index) == self.run or self.completed()
        return True

    def completed(self) -> bool:
        return self.future.state.is_completed()


def submit_extractions(
    cells: Sequence[Cell], ws: Workspace, head_start: Callable[[Path], BegunExtraction | None]
) -> dict[Path, FrameExtraction]:
    """One extraction task per (dataset, frame plan) of the grid, by frame index;
    `head_start(index)`: an extraction of that index begun before the flow, or None."""
    extractions = {}
    for dataset, frames in frame_plans(cells):
        path = frames.index_path(dataset, ws)
        head = head_start(path)
        run = head.run if head is not None else uuid.uuid4().hex
        future = extract_frames.with_options(
            task_run_name=f"extract {dataset.dataset_name} {frames.label}"
        ).submit(dataset, frames, ws, run, head)
        extractions[path] = FrameExtraction(path, run, future)
    return extractions
