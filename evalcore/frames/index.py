"""Which cached frames answer which sample, and what each sample's video is.

Written once per extraction, read by every inference process (inline, torchrun ranks,
API workers) without touching a decoder. Per sample it keeps the video's content
fingerprint (the input of the sample's answer key) and the frame cache key, or the
failure that stands for the frames.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from evalcore.atomic import atomic_write_text
from evalcore.dataset import Sample
from evalcore.frames.cache import FrameCache, FrameEntry, FrameFailure, VideoJob
from evalcore.frames.extract import ExtractionReport, extract_videos
from evalcore.frames.settings import FrameSettings

FrameLookup = dict[str, FrameEntry | FrameFailure]


def video_job(sample: Sample) -> VideoJob | None:
    if sample.video_path is None:
        return None
    return VideoJob(sample.video_path, sample.start, sample.end)


def video_fingerprints(samples: Sequence[Sample], cache: FrameCache) -> dict[str, str]:
    """Sample id -> its video's content fingerprint (memoized: a known, unchanged file is
    not read), or the state of a video that has none: `invalid-path`, `missing`,
    `unreadable`. A file that appears or changes gets a new fingerprint."""
    paths = {s.video_path for s in samples if s.video_path is not None}
    known = cache.known_fingerprints(paths)
    out: dict[str, str] = {}
    for s in samples:
        path = s.video_path
        if path is None:
            out[s.sample_id] = "invalid-path"
        elif path in known:
            out[s.sample_id] = known[path]
        elif not path.exists():  # a file, or a folder of frames
            out[s.sample_id] = "missing"
        else:
            try:
                known[path] = cache.video_fingerprint(path)
                out[s.sample_id] = known[path]
            except OSError as error:
                out[s.sample_id] = f"unreadable:{error.errno}"
    return out


@dataclass(frozen=True)
class FrameIndex:
    """The index of one dataset under one frame plan."""

    lookup: FrameLookup  # sample id -> cached frames or the failure standing for them
    videos: dict[str, str]  # sample id -> video fingerprint (see `video_fingerprints`)

    def frames_for(self, sample_id: str) -> FrameEntry | FrameFailure:
        """A sample's cached frames, or the failure that stands for them (missing: never
        extracted). Every launcher turns a failure into a record without a model."""
        found = self.lookup.get(sample_id)
        return found or FrameFailure("FramesMissing", "no frames were extracted")


@dataclass(frozen=True)
class FramesSummary:
    """What one extraction did (small: a Prefect task returns it)."""

    dataset: str
    index_path: str
    videos: int
    hits: int
    decoded: int
    failed: int
    seconds: float


def prepare_frames(
    samples: Sequence[Sample],
    settings: FrameSettings,
    cache: FrameCache,
    index_path: Path,
    on_done: Callable[..., None] | None = None,
) -> FramesSummary:
    """Extract (or find cached) the frames of every distinct clip; write the index."""
    jobs: list[VideoJob] = list(dict.fromkeys(j for s in samples if (j := video_job(s))))
    report = extract_videos(jobs, cache, settings, on_done=on_done)
    write_frame_index(index_path, samples, report, video_fingerprints(samples, cache))
    return FramesSummary(
        dataset=samples[0].dataset if samples else "",
        index_path=str(index_path),
        videos=len(jobs),
        hits=report.hits,
        decoded=report.decoded,
        failed=report.failed,
        seconds=round(report.seconds, 3),
    )


def write_frame_index(
    path: Path, samples: Sequence[Sample], report: ExtractionReport, videos: dict[str, str]
) -> Path:
    entries: dict[str, dict] = {}
    for s in samples:
        job = video_job(s)
        outcome = (
            report.results.get(job) if job else FrameFailure("InvalidPath", s.path_error or "")
        )
        item: dict = {"video": videos[s.sample_id]}
        if isinstance(outcome, FrameEntry):
            item["key"] = outcome.key
        elif isinstance(outcome, FrameFailure):
            item.update(error_type=outcome.error_type, error=outcome.message)
        entries[s.sample_id] = item
    atomic_write_text(path, json.dumps(entries, sort_keys=True))
    return path


def read_frame_index(path: Path, cache: FrameCache) -> FrameIndex:
    """Open each cache entry; an entry deleted since extraction becomes a failure."""
    lookup: FrameLookup = {}
    videos: dict[str, str] = {}
    for sample_id, item in json.loads(Path(path).read_text(encoding="utf-8")).items():
        videos[sample_id] = item.get("video", "unknown")
        if "key" in item:
            entry = cache.open(item["key"])
            lookup[sample_id] = entry or FrameFailure(
                "FramesMissing", f"frame cache entry {item['key']} is gone; re-run extraction"
            )
        else:
            lookup[sample_id] = FrameFailure(item["error_type"], item["error"])
    return FrameIndex(lookup, videos)


def read_index_videos(path: Path) -> dict[str, str]:
    """Only the video fingerprints of an index (scoring needs no frames)."""
    items = json.loads(Path(path).read_text(encoding="utf-8"))
    return {sample_id: item.get("video", "unknown") for sample_id, item in items.items()}
