"""`video_input` against the peers' own calls, tensor for tensor.

For each Qwen family two reference pipelines run unmodified on a real video file:
VLMEvalKit's (vlmeval/vlm/qwen2_vl/model.py `generate_inner_transformers`: the request
keys of `_prepare_content`, `process_vision_info([messages])`, the processor given the
videos only; vlmeval/vlm/qwen3_vl/model.py: patch 16, the metadata, `do_resize=False`)
and the model card's (qwen-vl-utils 0.0.14 README: `return_video_metadata=True`, the
processor given the metadata; Qwen3-VL also patch 16, `do_resize=False`). qwen-vl-utils
reads the file itself (decord). Our side: the frames PyAV decodes at the indices
`qwen_video_frames` picks, through the adapter's own `_prepare` / `_process`, with the
`video_input` that names the same call. Token ids, grids and temporal spacing must be
identical; pixels equal up to the two decoders (mean absolute difference in 0-255
units). LLaVA-OneVision under VLMEvalKit (vlmeval/vlm/llava/llava.py,
`LLaVA_OneVision_HF.generate_inner_video` and `load_video`) is reproduced here with
decord, as it is written there.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
qvu = pytest.importorskip("qwen_vl_utils")
decord = pytest.importorskip("decord")

from evalcore.frames.decoders import PyAVSource  # noqa: E402
from evalcore.frames.qwen_vl import qwen_video_frames, vlmevalkit_nframes  # noqa: E402
from evalcore.models import ChatMessage, Runtime, VideoRequest  # noqa: E402
from evalcore.models.transformers import (  # noqa: E402
    TransformersModel,
    TransformersParams,
    build_tiny_checkpoint,
)
from tests.doubles.peer_calls import (  # noqa: E402
    assert_same_inputs,
    lmms_eval_qwen25,
    native_qwen,
    vlmevalkit_llava_ov,
    vlmevalkit_qwen,
)
from tests.doubles.videos import write_video  # noqa: E402

TOKEN = 28 * 28
QUESTION = "What moves in the video? A. a ball B. a bar. Answer with the letter."
# torch's CPU linspace is fused on x86-64 with AVX2/AVX-512 (see linspace_indices)
FUSED = torch.backends.cpu.get_cpu_capability() != "DEFAULT"

# 30 frames: 10 at 10 fps, 10 at 30 fps, 10 at 10 fps
_VFR_TIMES = [
    round(sum(0.1 if i < 10 or i >= 20 else 1 / 30 for i in range(k)), 3) for k in range(30)
]
VIDEOS: dict[str, dict[str, Any]] = {
    "odd": {"n_frames": 50, "fps": 25, "width": 641, "height": 361, "pix_fmt": "yuv444p"},
    "ntsc": {"n_frames": 90, "fps": Fraction(30000, 1001)},
    "vfr": {"n_frames": 30, "frame_times": _VFR_TIMES},
    "short": {"n_frames": 45, "fps": 15},  # shorter than VLMEvalKit's nframe 64
    "hd": {"n_frames": 6, "fps": 30, "width": 1920, "height": 1080, "preset": "ultrafast"},
    "long": {"n_frames": 250, "fps": 2, "width": 64, "height": 48},  # 125 s
}
# VLMEvalKit: (the dataset's nframe, the model's min/max/total pixels from config.py);
# hd: the Qwen2.5-VL-7B-Instruct entry. Small budgets keep the others cheap.
VLMEVALKIT: dict[str, tuple[int, dict[str, int]]] = {
    "odd": (8, {}),
    "ntsc": (16, {}),
    "vfr": (8, {"min_pixels": 16 * TOKEN, "max_pixels": 64 * TOKEN}),
    "short": (64, {"min_pixels": 16 * TOKEN, "max_pixels": 32 * TOKEN}),
    "hd": (4, {"min_pixels": 1280 * TOKEN, "max_pixels": 16384 * TOKEN}),
    "long": (16, {"min_pixels": 16 * TOKEN, "total_pixels": 256 * TOKEN}),
}
# the model card's request keys (defaults: fps 2)
NATIVE: dict[str, dict[str, Any]] = {
    "odd": {},
    "ntsc": {},
    "vfr": {},
    "short": {"min_pixels": 16 * TOKEN},
    "hd": {},
    "long": {"fps": 0.2, "min_pixels": 16 * TOKEN, "max_pixels": 48 * TOKEN},
}
QWEN_ARCHS = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")
PIXEL_KEYS = ("min_pixels", "max_pixels", "total_pixels")


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("videos")
    return {name: write_video(root / f"{name}.mp4", gop=12, **kw) for name, kw in VIDEOS.items()}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("checkpoints")
    return {
        arch: build_tiny_checkpoint(arch, root / arch) for arch in (*QWEN_ARCHS, "llava_onevision")
    }


def processor_of(checkpoint: Path) -> Any:
    """The checkpoint's processor as a peer loads it."""
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(checkpoint, local_files_only=True)


# -- our side ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DecodedFrames:
    """Frames as the frame cache would hold them at native size, lossless."""

    array: np.ndarray
    timestamps: tuple[float, ...]
    indices: tuple[int, ...]
    paths: tuple = ()

    def load(self) -> np.ndarray:
        return self.array


def our_request(path: Path, indices: list[int], system: str | None = None) -> VideoRequest:
    """The request the runner builds for the frames our decoder reads at `indices`, the
    question in a user turn after them (after a system turn when `system` is given)."""
    with PyAVSource(path) as source:
        info = source.info
        read = {i: (t, np.asarray(image)) for i, t, image in source.read(sorted(set(indices)))}
    frames = DecodedFrames(
        np.stack([read[i][1] for i in indices]),
        tuple(read[i][0] for i in indices),
        tuple(indices),
    )
    turns = (ChatMessage(role="system", text=system),) if system is not None else ()
    return VideoRequest(
        sample_id="s0",
        prompt=QUESTION,
        question=QUESTION,
        options=(),
        frames=frames,
        messages=(*turns, ChatMessage(role="user", text=QUESTION, video=True)),
        source_fps=info.fps,
        source_frames=info.n_frames,
        frame_indices=frames.indices,
    )


def our_inputs(
    checkpoint: Path, video_input: dict[str, Any], request: VideoRequest, processor=None
) -> Any:
    """The processor's output for `request` through the adapter's own preprocessing."""
    params = TransformersParams.model_validate(
        {"model": str(checkpoint), "video_input": video_input, "processor": processor or {}}
    )
    model = TransformersModel(params)
    model.load(Runtime())
    prepared = model._prepare(0, request)
    assert not isinstance(prepared, Exception), prepared
    return model._process([prepared])


def qwen_indices(path: Path, patch: int, **keys: Any) -> list[int]:
    """The frames qwen-vl-utils takes under the request `keys`, by our arithmetic."""
    with PyAVSource(path) as source:
        info = source.info
        width, height = next(source.read([0]))[2].size
    frames = qwen_video_frames(
        info.n_frames, info.fps, height, width, image_patch_size=patch, fused=FUSED, **keys
    )
    return list(frames.indices)


# -- comparing --------------------------------------------------------------------------


# -- Qwen under VLMEvalKit --------------------------------------------------------------


def vlmevalkit_video_input(arch: str, pixels: dict) -> dict[str, Any]:
    if arch == "qwen3_vl":
        return {"resize": "qwen_vl", **pixels, "time_input": "metadata", "do_resize": False}
    return {"resize": "qwen_vl", **pixels, "time_input": "none"}


@pytest.mark.parametrize("video", list(VIDEOS))
@pytest.mark.parametrize("arch", QWEN_ARCHS)
def test_qwen_under_vlmevalkit(arch, video, videos, checkpoints):
    path, (nframe, pixels) = videos[video], VLMEVALKIT[video]
    patch = 16 if arch == "qwen3_vl" else 14
    with PyAVSource(path) as source:
        nframes = vlmevalkit_nframes(nframe, source.info.n_frames)
    processor = processor_of(checkpoints[arch])
    theirs = vlmevalkit_qwen(arch, processor, path, nframes, pixels, QUESTION)
    request = our_request(path, qwen_indices(path, patch, nframes=nframes, **pixels))
    ours = our_inputs(checkpoints[arch], vlmevalkit_video_input(arch, pixels), request)
    assert_same_inputs(f"vlmevalkit {arch} {video}", ours, theirs, processor)


# -- Qwen as the model card calls it ----------------------------------------------------


@pytest.mark.parametrize("video", list(VIDEOS))
@pytest.mark.parametrize("arch", QWEN_ARCHS)
def test_qwen_as_the_model_card_calls_it(arch, video, videos, checkpoints):
    path, keys = videos[video], NATIVE[video]
    patch = 16 if arch == "qwen3_vl" else 14
    processor = processor_of(checkpoints[arch])
    theirs = native_qwen(arch, processor, path, keys, QUESTION)
    request = our_request(path, qwen_indices(path, patch, **keys))
    pixels = {k: v for k, v in keys.items() if k in PIXEL_KEYS}
    video_input = {"resize": "qwen_vl", **pixels, "time_input": "metadata"}
    if arch == "qwen3_vl":
        video_input["do_resize"] = False
    ours = our_inputs(checkpoints[arch], video_input, request)
    assert_same_inputs(f"native {arch} {video}", ours, theirs, processor)


# -- LLaVA-OneVision under VLMEvalKit ---------------------------------------------------


@pytest.mark.parametrize("video", list(VIDEOS))
def test_llava_onevision_under_vlmevalkit(video, videos, checkpoints):
    checkpoint = checkpoints["llava_onevision"]
    processor = processor_of(checkpoint)
    theirs, indices = vlmevalkit_llava_ov(processor, videos[video], 8, QUESTION)
    request = our_request(videos[video], indices)
    video_input = {"prompt": "llava_ov_times", "time_input": "none"}
    ours = our_inputs(checkpoint, video_input, request)
    assert_same_inputs(f"vlmevalkit llava_onevision {video}", ours, theirs, processor, 2)
    image_token_id = processor.tokenizer.convert_tokens_to_ids("<image>")
    assert ours["input_ids"][0].tolist().count(image_token_id) == 1


# -- Qwen2.5-VL under lmms-eval ---------------------------------------------------------


@pytest.mark.parametrize(("video", "max_num_frames"), [("ntsc", 4), ("long", 8)])
def test_qwen25_under_lmms_eval(video, max_num_frames, videos, checkpoints):
    """Its frames: the ones qwen-vl-utils reads at fps 2, subsampled (the sampler's
    part); their size: for all the frames read (`budget_fps` 2); no time input."""
    path, checkpoint = videos[video], checkpoints["qwen2_5_vl"]
    pixels = {"min_pixels": 16 * TOKEN, "max_pixels": 64 * TOKEN}
    processor = processor_of(checkpoint)
    theirs = lmms_eval_qwen25(checkpoint, path, pixels, max_num_frames, QUESTION)
    read = qwen_indices(path, 14, **pixels)
    sub = np.unique(np.linspace(0, len(read) - 1, max_num_frames, dtype=int)).tolist()
    sub += [] if len(read) - 1 in sub else [len(read) - 1]
    request = our_request(path, [read[i] for i in sub], system="You are a helpful assistant.")
    video_input = {"resize": "qwen_vl", **pixels, "budget_fps": 2.0, "time_input": "none"}
    ours = our_inputs(checkpoint, video_input, request, processor=pixels)
    assert_same_inputs(f"lmms-eval qwen2_5_vl {video}", ours, theirs, processor)
