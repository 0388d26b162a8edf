"""Frame extraction of one dataset under one frame plan, parallel across its videos; its
frame index is written as clips finish, and inference reads it meanwhile."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from evalcore.cell import extract_dataset_frames
from evalcore.config import DatasetSpec
from evalcore.frames import FrameSettings
from evalcore.frames.index import FramesSummary
from evalcore.progress import progress_bar
from evalcore.workspace import Workspace
from flows.cli.head_start import adopt


# Not Prefect-cached on purpose: the frame cache is content-addressed, so a repeat only
# stats files and finds manifests (no decoder opens), and it notices a changed video or
# a deleted cache entry, which a persisted Prefect result would not.
#
# No retries: inference reads the index while it is written, so a second attempt would
# come after the units have recorded the clips the first one never reached
# (`ExtractionStopped`, retried by the next run).
@task(name="extract-frames", cache_policy=NO_CACHE)
def extract_frames(
    dataset: DatasetSpec, frames: FrameSettings, ws: Workspace, run: str = ""
) -> FramesSummary:
    """`run` marks the index's head, so the flow sees when this extraction has begun; an
    extraction the command line began before the flow with that mark is waited on."""
    clips = len({(s.video_path, s.start, s.end) for s in dataset.samples() if s.video_path})
    head = adopt(frames.index_path(dataset, ws), run)
    with progress_bar(clips, f"frames {dataset.dataset_name}", "video") as bar:
        if head is not None:
            bar.update(head.follow(lambda: bar.update()))
            return head.result.result()
        return extract_dataset_frames(dataset, frames, ws, lambda *_: bar.update(), run)
