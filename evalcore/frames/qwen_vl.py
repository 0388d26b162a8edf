"""qwen-vl-utils' video input rules, in our own code: which frames, how many, what size,
and the sample rate that goes with them.

The Qwen2/2.5/3-VL model authors (and VLMEvalKit, which hands them the video path) read
a video through qwen-vl-utils' `fetch_video`. To feed a Qwen model what its authors feed
it, from our own decoders and frame cache, these functions reproduce that package's
arithmetic value for value. Line numbers cite qwen-vl-utils 0.0.14,
`qwen_vl_utils/vision_process.py`; tests/evalcore/frames/test_qwen_vl.py compares every
function here against the installed package, which evalcore itself never imports.

The module is named after the peer whose rules it holds, beside `sampling` (ours and
VLMEvalKit's frame-based rules): these rules choose a frame count and a frame size too,
so they are more than an index formula.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from PIL import Image

# qwen-vl-utils' defaults (vision_process.py lines 24-37), named as there.
MAX_RATIO = 200  # longest / shortest side allowed by smart_resize
SPATIAL_MERGE_SIZE = 2  # 2x2 patches merge into one visual token
VIDEO_MIN_TOKEN_NUM = 128  # per-frame pixel floor, in tokens of image_factor^2 pixels
VIDEO_MAX_TOKEN_NUM = 768  # per-frame pixel ceiling, same unit
FPS = 2.0  # frames per second sampled when neither fps nor nframes is given
FRAME_FACTOR = 2  # frame counts are multiples of this (the temporal patch size)
FPS_MIN_FRAMES = 4
FPS_MAX_FRAMES = 768
MODEL_SEQ_LEN = 128000  # its MODEL_SEQ_LEN environment variable's default
IMAGE_PATCH_SIZE = 14  # Qwen2-VL and Qwen2.5-VL; Qwen3-VL callers pass 16
TOTAL_PIXELS_SHARE = 0.9  # total_pixels default = MODEL_SEQ_LEN * image_factor^2 * 0.9


def image_factor(image_patch_size: int = IMAGE_PATCH_SIZE) -> int:
    """Side of one visual token in pixels: 28 for patch 14 (`fetch_video`, line 405)."""
    return image_patch_size * SPATIAL_MERGE_SIZE


def smart_nframes(
    total_frames: int,
    video_fps: float,
    *,
    nframes: int | None = None,
    fps: float | None = None,
    min_frames: int | None = None,
    max_frames: int | None = None,
) -> int:
    """How many frames qwen-vl-utils takes from a video (`smart_nframes`, lines 144-181).

    `nframes` given: rounded to a multiple of FRAME_FACTOR with Python's round (half to
    even: 5 -> 4, 7 -> 8). Otherwise `fps` (default FPS): total_frames / video_fps * fps,
    clamped to [min_frames, max_frames] (rounded up / down to FRAME_FACTOR; max_frames
    defaults to min(FPS_MAX_FRAMES, total_frames)) and to total_frames, then rounded
    down to FRAME_FACTOR. min_frames / max_frames apply to the fps mode only, as there.
    Raises ValueError where it does: both modes at once, or a count outside
    [FRAME_FACTOR, total_frames] (a video shorter than the nframes asked for: see
    `vlmevalkit_nframes` for what VLMEvalKit asks then).
    """
    if nframes is not None and fps is not None:
        raise ValueError("Only accept either `fps` or `nframes`")
    if nframes is not None:
        count = _round_by_factor(nframes, FRAME_FACTOR)
    else:
        rate = FPS if fps is None else fps
        low = _ceil_by_factor(FPS_MIN_FRAMES if min_frames is None else min_frames, FRAME_FACTOR)
        high_default = min(FPS_MAX_FRAMES, total_frames)
        high = _floor_by_factor(high_default if max_frames is None else max_frames, FRAME_FACTOR)
        wanted = total_frames / video_fps * rate
        count = _floor_by_factor(min(min(max(wanted, low), high), total_frames), FRAME_FACTOR)
    if not FRAME_FACTOR <= count <= total_frames:
        raise ValueError(
            f"nframes should in interval [{FRAME_FACTOR}, {total_frames}], but got {count}."
        )
    return count


def vlmevalkit_nframes(requested: int, total_frames: int) -> int:
    """The `nframes` VLMEvalKit's Qwen2-VL wrapper puts in the request: the dataset's
    nframe, or, for a video with fewer frames, its frame count rounded down to
    FRAME_FACTOR (vlmeval/vlm/qwen2_vl/model.py, `Qwen2VLChat._prepare_content`; it
    counts frames with OpenCV's CAP_PROP_FRAME_COUNT). A 45-frame clip asked for 64
    frames gets 44."""
    if total_frames < requested:
        return total_frames // FRAME_FACTOR * FRAME_FACTOR
    return requested


def linspace_indices(start: int, end: int, count: int, *, fused: bool = True) -> list[int]:
    """`torch.linspace(start, end, count).round().long()` (lines 215, 317, 366), exactly.

    The float32 values are what torch's CPU linspace kernel computes: step = (end -
    start) / (count - 1) in float32, element i = start + step * i for the first half
    (i < count // 2) and end - step * (count - 1 - i) for the rest, each one multiply-add
    rounded once to float32 (`fused`: the kernel as torch builds it for x86-64 with
    AVX2/AVX-512, which contracts it into an FMA) or twice (`fused=False`: torch's
    DEFAULT kernel, `ATEN_CPU_CAPABILITY=default`). The two disagree near .5 on a few
    percent of (frame count, nframes) pairs of long videos, so qwen-vl-utils' own choice
    depends on the CPU; exact arithmetic would disagree with both. Rounding is half to
    even, as torch.round. For a video under 2^24 frames with count <= end - start + 1
    (smart_nframes guarantees it), step >= 1 and every product and sum here is exact in
    a Python float, so the one rounding to float32 below is the kernel's.
    """
    if count < 1:
        return []
    first, last = _f32(start), _f32(end)
    step = _f32(_f32(last - first) / _f32(count - 1)) if count > 1 else 0.0
    half = count // 2
    values = []
    for i in range(count):
        if i < half:
            product = step * i if fused else _f32(step * i)
            values.append(_f32(first + product))
        else:
            product = step * (count - 1 - i) if fused else _f32(step * (count - 1 - i))
            values.append(_f32(last - product))
    return [round(value) for value in values]


def smart_resize(
    height: int, width: int, factor: int, min_pixels: float, max_pixels: float
) -> tuple[int, int]:
    """The frame size qwen-vl-utils resizes to (`smart_resize`, lines 56-81): both sides
    rounded to a multiple of `factor`; if that exceeds max_pixels, scaled down by
    sqrt(h * w / max_pixels) and floored to `factor`; if under min_pixels, scaled up
    and ceiled. Returns (height, width). Raises ValueError where it asserts or raises
    (max_pixels < min_pixels; aspect ratio over MAX_RATIO)."""
    if not max_pixels >= min_pixels:
        raise ValueError("The max_pixels of image must be greater than or equal to min_pixels.")
    if max(height, width) / min(height, width) > MAX_RATIO:
        raise ValueError(
            f"absolute aspect ratio must be smaller than {MAX_RATIO}, "
            f"got {max(height, width) / min(height, width)}"
        )
    h_bar = max(factor, _round_by_factor(height, factor))
    w_bar = max(factor, _round_by_factor(width, factor))
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = _floor_by_factor(height / beta, factor)
        w_bar = _floor_by_factor(width / beta, factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = _ceil_by_factor(height * beta, factor)
        w_bar = _ceil_by_factor(width * beta, factor)
    return h_bar, w_bar


def video_pixel_bounds(
    nframes: int,
    *,
    min_pixels: int | None = None,
    max_pixels: float | None = None,
    total_pixels: float | None = None,
    image_patch_size: int = IMAGE_PATCH_SIZE,
) -> tuple[float, float]:
    """(min_pixels, max_pixels) per frame for a video of `nframes` (`fetch_video`, lines
    449-455): the ceiling is max(min(VIDEO_MAX_TOKEN_NUM tokens, total_pixels / nframes *
    FRAME_FACTOR), int(1.05 * min_pixels)), so a total budget spread over many frames
    lowers it; a request's own max_pixels can only lower it further. Defaults:
    min_pixels VIDEO_MIN_TOKEN_NUM tokens, total_pixels MODEL_SEQ_LEN tokens * 0.9.
    The ceiling may be a float, as there."""
    factor = image_factor(image_patch_size)
    floor = VIDEO_MIN_TOKEN_NUM * factor * factor if min_pixels is None else min_pixels
    total = MODEL_SEQ_LEN * factor * factor * TOTAL_PIXELS_SHARE
    total = total if total_pixels is None else total_pixels
    ceiling = max(
        min(VIDEO_MAX_TOKEN_NUM * factor * factor, total / nframes * FRAME_FACTOR),
        int(floor * 1.05),
    )
    if max_pixels is not None:
        ceiling = min(max_pixels, ceiling)
    return floor, ceiling


@dataclass(frozen=True)
class QwenVideoFrames:
    """What qwen-vl-utils makes of one video: the frames it takes (indices into the
    video), the size it resizes them to, and the sample rate it reports
    (`fetch_video(..., return_video_sample_fps=True)`). The model card passes it to the
    processor as `fps`; transformers 5.24 ignores that keyword and computes
    `second_per_grid_ts` = 2 / sample_fps from `video_metadata` (fps, frames_indices,
    total_num_frames) instead (tests/evalcore/frames/test_qwen_vl.py)."""

    indices: tuple[int, ...]
    height: int
    width: int
    sample_fps: float
    image_patch_size: int = IMAGE_PATCH_SIZE

    @property
    def nframes(self) -> int:
        return len(self.indices)

    @property
    def visual_tokens(self) -> int:
        """Tokens the video takes in the prompt: one per FRAME_FACTOR frames and per
        image_factor x image_factor pixels."""
        factor = image_factor(self.image_patch_size)
        return self.nframes // FRAME_FACTOR * (self.height // factor) * (self.width // factor)


def qwen_video_frames(
    total_frames: int,
    video_fps: float,
    height: int,
    width: int,
    *,
    nframes: int | None = None,
    fps: float | None = None,
    min_frames: int | None = None,
    max_frames: int | None = None,
    min_pixels: int | None = None,
    max_pixels: float | None = None,
    total_pixels: float | None = None,
    image_patch_size: int = IMAGE_PATCH_SIZE,
    fused: bool = True,
) -> QwenVideoFrames:
    """What `fetch_video` (lines 403-480) does to a whole video of `total_frames` frames
    at `video_fps` (its decoder's average rate), `height` x `width` pixels, under the
    request's keys (None: the key is absent, its default applies).

    `smart_nframes`; indices `linspace_indices(0, total_frames - 1, nframes)` (the
    decord reader, lines 316-317; torchvision's, line 215, is the same for a whole
    video); sample_fps = nframes / total_frames * video_fps (line 321); size
    `smart_resize` under `video_pixel_bounds` (lines 449-469). Clips (video_start /
    video_end) and fixed sizes (resized_height / resized_width) are not reproduced.
    """
    count = smart_nframes(
        total_frames,
        video_fps,
        nframes=nframes,
        fps=fps,
        min_frames=min_frames,
        max_frames=max_frames,
    )
    indices = linspace_indices(0, total_frames - 1, count, fused=fused)
    floor, ceiling = video_pixel_bounds(
        count,
        min_pixels=min_pixels,
        max_pixels=max_pixels,
        total_pixels=total_pixels,
        image_patch_size=image_patch_size,
    )
    new_height, new_width = smart_resize(
        height, width, image_factor(image_patch_size), floor, ceiling
    )
    return QwenVideoFrames(
        indices=tuple(indices),
        height=new_height,
        width=new_width,
        sample_fps=count / max(total_frames, 1e-6) * video_fps,
        image_patch_size=image_patch_size,
    )


def resize_frames(frames: Sequence[Image.Image], height: int, width: int) -> torch.Tensor:
    """Frames as qwen-vl-utils hands them on (lines 470-475): a float32 (T, 3, H, W)
    tensor of 0-255 values, resized from the uint8 frames with torchvision's bicubic
    with antialias. Needs torch and torchvision (imported here, only by callers that
    resize)."""
    import numpy as np
    import torch
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as tvf

    video = torch.from_numpy(np.stack([np.asarray(f.convert("RGB")) for f in frames]))
    video = video.permute(0, 3, 1, 2)  # THWC -> TCHW
    resized = tvf.resize(
        video, [height, width], interpolation=InterpolationMode.BICUBIC, antialias=True
    )
    return resized.float()


def _f32(value: float) -> float:
    """`value` rounded to the nearest float32 (ties to even), back as a Python float."""
    return struct.unpack("<f", struct.pack("<f", value))[0]


def _round_by_factor(number: float, factor: int) -> int:
    return round(number / factor) * factor


def _ceil_by_factor(number: float, factor: int) -> int:
    return math.ceil(number / factor) * factor


def _floor_by_factor(number: float, factor: int) -> int:
    return math.floor(number / factor) * factor
