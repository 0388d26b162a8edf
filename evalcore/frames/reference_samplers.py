"""Other pipelines' frame choices, reproduced index for index: qwen-vl-utils (as
VLMEvalKit's Qwen2-VL wrapper calls it), lmms-eval's Qwen2.5-VL adapter, VLMEvalKit's
LLaVA-OneVision (HF) wrapper and VLMEvalKit's MVBench reader.

Each rule is written from its peer's source, cited by file and line (VLMEvalKit at
commit e8e78f05, lmms-eval at 75571cfe, qwen-vl-utils 0.0.14), in our own arithmetic;
tests/evalcore/frames/test_reference_samplers.py works cases by hand and compares the
rules against the peers' own expressions (qwen-vl-utils itself where it is installed,
numpy for the lines that are numpy). `sampling.frame_indices` picks one by
`FramePlan.sampler`.

The peers read whole videos; a clip is treated as a video made of the clip's frames
[first, stop) (`sampling.clip_frame_range`), except MVBench, whose own reader applies
the clip bounds in seconds. Their arithmetic is on frame numbers at the decoder's
average rate (decord's `get_avg_fps`), so `video_fps` here is that rate, whatever the
presentation times of a variable-rate file.

Where a peer would raise (qwen-vl-utils refuses a frame count outside [2, L]; a
LLaVA-OneVision step of 0 frames), the clip raises `SamplingRefusedError`: it fails
with that reason, rather than getting frames its peer would never have shown.
"""

from __future__ import annotations

from evalcore.frames.decoders import FrameError
from evalcore.frames.qwen_vl import (
    FPS_MAX_FRAMES,
    linspace_indices,
    smart_nframes,
    vlmevalkit_nframes,
)
from evalcore.predictions.failures import FailureKind

# torch's x86-64 CPU linspace kernel (AVX2/AVX-512: a fused multiply-add), which is what
# qwen-vl-utils computes on the machines that run these models; see linspace_indices.
_FUSED = True
_NO_BOUND = 100000  # MVBench.get_index's stand-in for a missing clip bound, in seconds


class SamplingRefusedError(FrameError):
    """The sampler's peer refuses this clip (too few frames for the count it asks for,
    say): the clip fails with this reason; no other frames stand in for it."""

    error_type = FailureKind.SamplingRefused


def sample_qwen_vl(
    first: int,
    stop: int,
    video_fps: float,
    *,
    nframe: int | None = None,
    fps: float | None = None,
    max_frames: int | None = None,
) -> list[int]:
    """The frames qwen-vl-utils' `fetch_video` takes from the clip [first, stop), asked
    as VLMEvalKit's `Qwen2VLChat._prepare_content` asks (vlmeval/vlm/qwen2_vl/model.py
    lines 349-361).

    With `nframe`: the request's `nframes` is `vlmevalkit_nframes(nframe, L)` (nframe,
    or L rounded down to an even count for a shorter clip), L = stop - first. With
    `fps`: the request's `fps`, and `max_frames` only if it is below qwen-vl-utils'
    own cap min(768, L) (`smart_nframes`, vision_process.py lines 144-181, decides the
    count either way). The frames are `torch.linspace(0, L - 1, count).round()`
    (vision_process.py lines 316-317), reproduced by `linspace_indices` with the fused
    (x86-64 AVX2) kernel. Raises SamplingRefusedError where `smart_nframes` raises: a
    count outside [2, L] (a 1-frame clip; an odd nframe that rounds up past L).
    """
    length = stop - first
    if length <= 0:
        return []
    try:
        if fps is not None:
            cap = (
                max_frames
                if max_frames is not None and max_frames < min(FPS_MAX_FRAMES, length)
                else None
            )
            count = smart_nframes(length, video_fps, fps=fps, max_frames=cap)
        else:
            assert nframe is not None
            count = smart_nframes(length, video_fps, nframes=vlmevalkit_nframes(nframe, length))
    except ValueError as error:
        raise SamplingRefusedError(
            f"qwen-vl-utils refuses a {length}-frame clip ({error})"
        ) from None
    return [first + i for i in linspace_indices(0, length - 1, count, fused=_FUSED)]


def sample_lmms_eval_qwen(first: int, stop: int, video_fps: float, nframe: int) -> list[int]:
    """The frames lmms-eval's Qwen2.5-VL adapter shows the model from the clip
    [first, stop) (lmms_eval/models/simple/qwen2_5_vl.py lines 291-300).

    It asks qwen-vl-utils for the video with neither fps nor nframes, which takes
    T = smart_nframes(L, video_fps) frames (2 per second, at least 4 and at most
    min(768, L), even) at `linspace_indices(0, L - 1, T)`; then keeps positions
    np.unique(np.linspace(0, T - 1, nframe, dtype=int)) of those, with T - 1 appended
    when missing (so nframe = 1 gives 2 frames, and a T below nframe gives T frames).
    Raises SamplingRefusedError where qwen-vl-utils refuses (a clip of 1 frame).
    """
    length = stop - first
    if length <= 0:
        return []
    try:
        fetched_count = smart_nframes(length, video_fps)
    except ValueError as error:
        raise SamplingRefusedError(
            f"qwen-vl-utils refuses a {length}-frame clip ({error})"
        ) from None
    fetched = linspace_indices(0, length - 1, fetched_count, fused=_FUSED)
    kept = sorted(set(numpy_linspace_int(fetched_count - 1, nframe)) | {fetched_count - 1})
    return [first + fetched[position] for position in kept]


def sample_llava_ov(first: int, stop: int, video_fps: float, nframe: int) -> list[int]:
    """VLMEvalKit's LLaVA-OneVision (HF) frames from the clip [first, stop)
    (vlmeval/vlm/llava/llava.py, `LLaVA_OneVision_HF.load_video`, lines 798-817, which
    `generate_inner_video` calls with fps=1, line 775, and force_sample off).

    One frame per second from the first: step = round(video_fps / 1) (Python's round,
    half to even: 29.97 -> 30, 2.5 -> 2), frames 0, step, 2 * step, ... < L; if that is
    more than nframe, np.linspace(0, L - 1, nframe, dtype=int) instead (floored, both
    ends included). Raises SamplingRefusedError for a rate under 0.5 fps, where the
    step is 0 and `range` raises there.
    """
    length = stop - first
    if length <= 0:
        return []
    step = round(video_fps / 1)
    if step <= 0:
        raise SamplingRefusedError(
            f"LLaVA-OneVision's reader takes every round({video_fps:g} / 1) = {step}th "
            "frame, which it cannot"
        )
    picked = list(range(0, length, step))
    if len(picked) > nframe:
        picked = numpy_linspace_int(length - 1, nframe)
    return [first + i for i in picked]


def sample_mvbench(
    n_total: int, video_fps: float, nframe: int, start_s: float | None, end_s: float | None
) -> list[int]:
    """VLMEvalKit's MVBench frames (vlmeval/dataset/mvbench.py, `MVBench.get_index`,
    lines 211-223, as `read_video` calls it, lines 225-232): segment midpoints between
    the clip bounds rounded to frames, on the whole video's frame numbers.

    start_idx = max(0, round(start_s * fps)), end_idx = min(round(end_s * fps),
    n_total - 1) (a missing bound is -100000 / 100000 s; round is Python's, half to
    even); seg = (end_idx - start_idx) / nframe; index_i = int(start_idx + seg / 2 +
    np.round(seg * i)) for i < nframe. Not `clip_frame_range`: end_idx is a frame that
    is taken, and the rounding differs. Its frame-folder reader (`read_frame`: 1-based
    files, `first_idx=1`) is not reproduced: a folder is read as a video.
    """
    start = -_NO_BOUND if start_s is None else start_s
    end = _NO_BOUND if end_s is None else end_s
    start_idx = max(0, round(start * video_fps))
    end_idx = min(round(end * video_fps), n_total - 1)
    seg = float(end_idx - start_idx) / nframe
    indices = [int(start_idx + seg / 2 + float(round(seg * i))) for i in range(nframe)]
    outside = [i for i in indices if not 0 <= i < n_total]
    if outside:  # not seen for a clip that holds a frame; MVBench would fail to read it
        raise SamplingRefusedError(
            f"MVBench's get_index gives frame {outside[0]} of a {n_total}-frame video"
        )
    return indices


def numpy_linspace_int(stop: int, num: int) -> list[int]:
    """`np.linspace(0, stop, num, dtype=int).tolist()` for stop >= 0, exactly: numpy
    multiplies i by the float64 step stop / (num - 1), sets the last value to stop, and
    floors ([0] for num = 1)."""
    if num == 1:
        return [0]
    step = stop / (num - 1)
    return [int(i * step) for i in range(num - 1)] + [stop]
