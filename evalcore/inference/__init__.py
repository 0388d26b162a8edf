"""Inference: the loop over pending samples and the frame lookup it reads."""

from evalcore.inference.frame_index import FrameLookup, read_frame_index, write_frame_index
from evalcore.inference.runner import InferenceSummary, pending_samples, run_samples

__all__ = [
    "FrameLookup",
    "InferenceSummary",
    "pending_samples",
    "read_frame_index",
    "run_samples",
    "write_frame_index",
]
