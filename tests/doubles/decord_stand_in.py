"""qwen-vl-utils' own frame choice, without a video: its decord reader driven by a
stand-in `decord` that only knows a frame count and a rate, and records the frames it
is asked for."""

from __future__ import annotations

import sys
import types
from typing import Any

import numpy as np


class _Batch:
    def __init__(self, n: int) -> None:
        self.n = n

    def asnumpy(self) -> np.ndarray:
        return np.zeros((self.n, 2, 2, 3), np.uint8)


class StandInReader:
    """Enough of decord.VideoReader for qwen-vl-utils' `_read_video_decord`."""

    total, fps, asked = 0, 0.0, None

    def __init__(self, path: str, *args: Any, **kwargs: Any) -> None:
        pass

    def __len__(self) -> int:
        return type(self).total

    def get_avg_fps(self) -> float:
        return type(self).fps

    def get_batch(self, idx):
        type(self).asked = list(idx)
        return _Batch(len(idx))


def install(monkeypatch) -> None:
    """Make `import decord` give the stand-in for the rest of the test."""
    monkeypatch.setitem(sys.modules, "decord", types.SimpleNamespace(VideoReader=StandInReader))


def qwen_vl_utils_indices(total: int, fps: float, request: dict[str, Any]) -> list[int]:
    """The frames qwen-vl-utils' decord reader takes from a `total`-frame video at
    `fps` under `request` (its video element's keys: nframes, fps, max_frames, ...).
    Needs `install` first; raises what qwen-vl-utils raises (ValueError: a count it
    refuses)."""
    from qwen_vl_utils.vision_process import _read_video_decord

    StandInReader.total, StandInReader.fps = total, fps
    _, meta, _ = _read_video_decord({"video": "x.mp4", **request})
    assert StandInReader.asked == meta["frames_indices"]
    return list(meta["frames_indices"])
