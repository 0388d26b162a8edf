"""Frame extraction for one dataset, parallel across its videos inside the task."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from evalcore.config import DatasetSpec
from evalcore.frames import FrameSettings
from evalcore.stages import FramesSummary, prepare_frames
from evalcore.workspace import Workspace


# Not Prefect-cached on purpose: the frame cache is content-addressed, so a repeat only
# stats files and finds manifests (no decoder opens), and it notices a changed video or
# a deleted cache entry, which a persisted Prefect result would not.
@task(name="extract-frames", cache_policy=NO_CACHE, retries=1)
def extract_frames(dataset: DatasetSpec, frames: FrameSettings, ws: Workspace) -> FramesSummary:
    return prepare_frames(dataset, frames, ws)
