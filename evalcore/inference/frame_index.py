"""Which cached frames answer which sample: written once by extraction, read by every
inference process (inline, torchrun ranks, API workers) without touching a decoder."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from evalcore.atomic import atomic_write_text
from evalcore.dataset import Sample
from evalcore.frames import ExtractionReport, FrameCache, FrameEntry, FrameFailure, VideoJob

FrameLookup = dict[str, FrameEntry | FrameFailure]


def video_job(sample: Sample) -> VideoJob | None:
    return (
        None if sample.video_path is None else VideoJob(sample.video_path, sample.start, sample.end)
    )


def write_frame_index(path: Path, samples: Sequence[Sample], report: ExtractionReport) -> Path:
    entries: dict[str, dict] = {}
    for s in samples:
        job = video_job(s)
        outcome = (
            report.results.get(job) if job else FrameFailure("InvalidPath", s.path_error or "")
        )
        if isinstance(outcome, FrameEntry):
            entries[s.sample_id] = {"key": outcome.key}
        elif isinstance(outcome, FrameFailure):
            entries[s.sample_id] = {"error_type": outcome.error_type, "error": outcome.message}
    atomic_write_text(path, json.dumps(entries, sort_keys=True))
    return path


def read_frame_index(path: Path, cache: FrameCache) -> FrameLookup:
    """Open each cache entry; an entry deleted since extraction becomes a failure."""
    lookup: FrameLookup = {}
    for sample_id, item in json.loads(Path(path).read_text(encoding="utf-8")).items():
        if "key" in item:
            entry = cache.open(item["key"])
            lookup[sample_id] = entry or FrameFailure(
                "FramesMissing", f"frame cache entry {item['key']} is gone; re-run extraction"
            )
        else:
            lookup[sample_id] = FrameFailure(item["error_type"], item["error"])
    return lookup
