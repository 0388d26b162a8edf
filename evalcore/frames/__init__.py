"""Sampled video frames: which to take, how to decode them, where they are kept.

`extract_videos` fills a `FrameCache` from many `VideoJob`s under one `FrameSettings`;
a model then reads a `FrameEntry` (JPEG files plus indices and timestamps). Bad videos
come back as `FrameFailure` records, never as exceptions.
"""

from evalcore.frames.cache import FrameCache, FrameEntry, FrameFailure, VideoJob, fingerprint
from evalcore.frames.extract import ExtractionReport, extract_videos
from evalcore.frames.sampling import frame_indices, sample_fps, sample_uniform
from evalcore.frames.settings import FrameSettings

__all__ = [
    "ExtractionReport",
    "FrameCache",
    "FrameEntry",
    "FrameFailure",
    "FrameSettings",
    "VideoJob",
    "extract_videos",
    "fingerprint",
    "frame_indices",
    "sample_fps",
    "sample_uniform",
]
