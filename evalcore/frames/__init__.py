"""Sampled video frames: which to take, how to decode them, where they are kept.

A `FramePlan` says which frames a model sees and owns every key derived from that;
`FrameSettings` is a plan with its decoding limits. `extract_videos` fills a `FrameCache`
from many `VideoJob`s under one `FrameSettings`; a model then reads a `FrameEntry` (JPEG
or PNG files plus indices and timestamps). Bad videos come back as `FrameFailure`
records, never as exceptions (a clip a sampler's peer refuses, too:
`SamplingRefusedError`'s kind). A damaged entry is extracted again when it is read; one
that stays damaged raises `CorruptFramesError` (a `FrameError`). `verify_frame_cache`
checks (and repairs) a whole cache.
"""

from evalcore.frames.cache import (
    CorruptFramesError,
    FrameCache,
    FrameEntry,
    FrameFailure,
    VideoJob,
    fingerprint,
)
from evalcore.frames.decoders import FrameError
from evalcore.frames.extract import ExtractionReport, extract_videos
from evalcore.frames.plan import FramePlan
from evalcore.frames.reference_samplers import SamplingRefusedError
from evalcore.frames.sampling import frame_indices, sample_fps, sample_uniform
from evalcore.frames.settings import FrameSettings
from evalcore.frames.verify import CacheCheck, verify_frame_cache

__all__ = [
    "CacheCheck",
    "CorruptFramesError",
    "ExtractionReport",
    "FrameCache",
    "FrameEntry",
    "FrameError",
    "FrameFailure",
    "FramePlan",
    "FrameSettings",
    "SamplingRefusedError",
    "VideoJob",
    "extract_videos",
    "fingerprint",
    "frame_indices",
    "sample_fps",
    "sample_uniform",
    "verify_frame_cache",
]
