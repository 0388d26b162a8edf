"""Which frames to take from a clip: pure index arithmetic, no decoding.

Kept apart from the decoders so the formulas can be tested with exact lists and so every
backend samples the same frames. Times are in seconds from the first frame.

A clip [start_s, end_s) covers the frames whose display interval overlaps it: frame i
is shown during [t_i, t_{i+1}), with t_i = i / video_fps for a constant frame rate, or
the measured presentation times (`frame_times`) for a variable one.

The rule is `FrameSettings.sampler`'s: ours (`midpoint`: `sample_uniform`,
`sample_fps`), VLMEvalKit's frame-based one (`vlmevalkit`: `sample_uniform_vlmevalkit`,
`sample_fps_vlmevalkit`), so its published numbers can be reproduced frame for frame,
or another pipeline's video reader (`qwen_vl`, `lmms_eval_qwen`, `llava_ov`, `mvbench`:
`evalcore.frames.reference_samplers`).
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Sequence

from evalcore.frames.reference_samplers import (
    sample_llava_ov,
    sample_lmms_eval_qwen,
    sample_mvbench,
    sample_qwen_vl,
)
from evalcore.frames.settings import FrameSettings

_EPS = 1e-6  # absorbs float noise such as 0.1 * 30 = 3.0000000000000004


def sample_uniform(n_total: int, nframe: int, start: int = 0, end: int | None = None) -> list[int]:
    """`nframe` indices in [start, end): the midpoint of each of nframe equal segments.

    index_i = start + floor((2i + 1) * L / (2 * nframe)) for i in 0..nframe-1, with
    L = end - start (end defaults to n_total; both are clamped to [0, n_total]).
    Midpoints avoid the first and last frame, which are often black or a title card.
    Always returns exactly nframe indices for a non-empty range (a range shorter than
    nframe repeats frames, so a model gets the count it expects); [] for an empty one.
    """
    if nframe < 1:
        raise ValueError(f"nframe must be >= 1, got {nframe}")
    end = n_total if end is None else end
    start, end = max(0, min(start, n_total)), max(0, min(end, n_total))
    length = end - start
    if length <= 0:
        return []
    return [start + (2 * i + 1) * length // (2 * nframe) for i in range(nframe)]


def sample_fps(
    n_total: int,
    video_fps: float,
    fps: float,
    max_frames: int,
    start_s: float | None = None,
    end_s: float | None = None,
    *,
    frame_times: Sequence[float] | None = None,
) -> list[int]:
    """Frames at a fixed rate: the frame shown at t_k = start + (k + 0.5) / fps.

    k runs while t_k < end, so a 10 s clip at fps=1 gives the frames at 0.5, 1.5, ...
    9.5 s. start/end default to the whole video. If that is more than `max_frames`, the
    clip gets `sample_uniform(max_frames)` over its frame range instead (so the frames
    still span the whole clip, only sparser). A non-empty clip shorter than half a
    period gets its middle frame rather than nothing. `frame_times` (presentation time of
    each frame) makes time-to-frame lookups exact on variable-frame-rate video.
    """
    if fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    first, stop = clip_frame_range(n_total, video_fps, start_s, end_s, frame_times=frame_times)
    if stop <= first:
        return []
    begin = max(0.0, start_s or 0.0)
    end = min(_duration(n_total, video_fps, frame_times), _inf_if_none(end_s))
    count = max(0, math.ceil((end - begin) * fps - 0.5 - _EPS))  # k with t_k < end
    if count > max_frames:
        return sample_uniform(n_total, max_frames, first, stop)
    if count == 0:
        return sample_uniform(n_total, 1, first, stop)
    indices = []
    for k in range(count):
        index = _frame_at(begin + (k + 0.5) / fps, video_fps, frame_times)
        indices.append(min(max(index, first), stop - 1))
    return indices


def frame_indices(
    n_total: int,
    video_fps: float,
    settings: FrameSettings,
    start_s: float | None,
    end_s: float | None,
    *,
    frame_times: Sequence[float] | None = None,
) -> list[int]:
    """The frames `settings` asks for from the clip [start_s, end_s) (None: video edge).

    midpoint and vlmevalkit: with nframe, `sample_uniform` (or
    `sample_uniform_vlmevalkit`) over the clip's frame range; with fps, `sample_fps`
    (or `sample_fps_vlmevalkit`). The other samplers: their `reference_samplers`
    function, over the clip's frame range (`mvbench`: on the clip bounds). Returns []
    when the clip holds no frame (empty video, or bounds outside it). Raises
    `SamplingRefusedError` where the sampler's peer refuses the clip.
    """
    if settings.sampler not in ("midpoint", "vlmevalkit"):
        return _reference_indices(n_total, video_fps, settings, start_s, end_s, frame_times)
    vlmevalkit = settings.sampler == "vlmevalkit"
    if settings.fps is not None:
        by_rate = sample_fps_vlmevalkit if vlmevalkit else sample_fps
        return by_rate(
            n_total,
            video_fps,
            settings.fps,
            settings.max_frames,
            start_s,
            end_s,
            frame_times=frame_times,
        )
    assert settings.nframe is not None  # FrameSettings guarantees one of the two
    first, stop = clip_frame_range(n_total, video_fps, start_s, end_s, frame_times=frame_times)
    uniform = sample_uniform_vlmevalkit if vlmevalkit else sample_uniform
    return uniform(n_total, settings.nframe, first, stop) if stop > first else []


def _reference_indices(
    n_total: int,
    video_fps: float,
    settings: FrameSettings,
    start_s: float | None,
    end_s: float | None,
    frame_times: Sequence[float] | None,
) -> list[int]:
    """`frame_indices` for the samplers of `reference_samplers`."""
    first, stop = clip_frame_range(n_total, video_fps, start_s, end_s, frame_times=frame_times)
    if stop <= first:
        return []
    video_fps = _positive(video_fps)
    if settings.sampler == "qwen_vl":
        return sample_qwen_vl(
            first,
            stop,
            video_fps,
            nframe=settings.nframe,
            fps=settings.fps,
            max_frames=settings.max_frames,
        )
    assert settings.nframe is not None  # FramePlan: these samplers take nframe only
    if settings.sampler == "lmms_eval_qwen":
        return sample_lmms_eval_qwen(first, stop, video_fps, settings.nframe)
    if settings.sampler == "llava_ov":
        return sample_llava_ov(first, stop, video_fps, settings.nframe)
    if settings.sampler == "mvbench":
        return sample_mvbench(n_total, video_fps, settings.nframe, start_s, end_s)
    raise ValueError(f"unknown sampler {settings.sampler!r}")


def sample_uniform_vlmevalkit(
    n_total: int, nframe: int, start: int = 0, end: int | None = None
) -> list[int]:
    """VLMEvalKit's nframe rule: `nframe` indices in [start, end) that cut it into
    nframe + 1 equal parts (vlmeval/dataset/video_base.py, `save_video_frames`).

    index_i = start + int(i * step) for i in 1..nframe, step = L / (nframe + 1), with
    L = end - start (clamped as in `sample_uniform`). The step is a float computed first,
    as VLMEvalKit does, and the product is truncated: that differs now and then from the
    exact floor(i * L / (nframe + 1)) (L=30, nframe=21, i=11 gives 14, not 15), and the
    point of this rule is VLMEvalKit's frames. VLMEvalKit reads whole videos only; a clip
    is treated as a video made of the clip's frames. [] for an empty range.
    """
    if nframe < 1:
        raise ValueError(f"nframe must be >= 1, got {nframe}")
    end = n_total if end is None else end
    start, end = max(0, min(start, n_total)), max(0, min(end, n_total))
    length = end - start
    if length <= 0:
        return []
    step = length / (nframe + 1)
    return [start + int(i * step) for i in range(1, nframe + 1)]


def sample_fps_vlmevalkit(
    n_total: int,
    video_fps: float,
    fps: float,
    max_frames: int,
    start_s: float | None = None,
    end_s: float | None = None,
    *,
    frame_times: Sequence[float] | None = None,
) -> list[int]:
    """VLMEvalKit's fps rule (vlmeval/dataset/video_base.py, `save_video_frames`, the
    `fps > 0` branch): int(n / video_fps * fps) frames, index_k = int(k * step) with
    step = video_fps / fps, k = 0, 1, ...; n is the clip's frame count, so the first
    frame is always taken and the tail shorter than one period never is.

    As VLMEvalKit (decord's average rate), the arithmetic is on frame numbers at the
    average rate; `frame_times` only places the clip bounds. Two departures, both where
    VLMEvalKit has no answer: more than `max_frames` frames become
    `sample_uniform_vlmevalkit(max_frames)` over the clip (VLMEvalKit has no cap), and a
    non-empty clip shorter than one period gets its first frame (VLMEvalKit: none).
    """
    if fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    first, stop = clip_frame_range(n_total, video_fps, start_s, end_s, frame_times=frame_times)
    if stop <= first:
        return []
    video_fps = _positive(video_fps)
    total_duration = (stop - first) / video_fps
    required = int(total_duration * fps)  # VLMEvalKit's expressions, in its order
    if required > max_frames:
        return sample_uniform_vlmevalkit(n_total, max_frames, first, stop)
    step = video_fps / fps
    return [min(first + int(k * step), stop - 1) for k in range(max(1, required))]


def clip_frame_range(
    n_total: int,
    video_fps: float,
    start_s: float | None,
    end_s: float | None,
    *,
    frame_times: Sequence[float] | None = None,
) -> tuple[int, int]:
    """[first, stop) indices of the frames overlapping [start_s, end_s) (None: edge)."""
    first, stop = 0, n_total
    if start_s is not None:
        ends_before = start_s >= _duration(n_total, video_fps, frame_times) - _EPS
        first = n_total if ends_before else _frame_at(start_s, video_fps, frame_times)
    if end_s is not None:
        if frame_times is not None:
            stop = bisect_left(frame_times, end_s - _EPS)  # frames that start before end
        else:
            stop = math.ceil(end_s * _positive(video_fps) - _EPS)
    return max(0, min(first, n_total)), max(0, min(stop, n_total))


def _frame_at(t: float, video_fps: float, frame_times: Sequence[float] | None) -> int:
    """Index of the frame on screen at time t (may be out of range; callers clamp)."""
    if frame_times is not None:
        return max(0, bisect_right(frame_times, t + _EPS) - 1)
    return max(0, math.floor(t * _positive(video_fps) + _EPS))


def _duration(n_total: int, video_fps: float, frame_times: Sequence[float] | None) -> float:
    if frame_times is not None and len(frame_times) > 0:
        return frame_times[-1] + 1.0 / _positive(video_fps)  # the last frame lasts one period
    return n_total / _positive(video_fps)


def _positive(video_fps: float) -> float:
    if not video_fps > 0:
        raise ValueError(f"video frame rate must be > 0, got {video_fps}")
    return video_fps


def _inf_if_none(value: float | None) -> float:
    return math.inf if value is None else value
