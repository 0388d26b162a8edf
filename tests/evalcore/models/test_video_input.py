"""`video_input`: what the config may set for which checkpoint, what it adds to the model
identity, what a request must carry for it, and the request the runner builds from a
real frame cache entry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from evalcore.dataset import Sample
from evalcore.frames import FrameCache, FrameSettings, VideoJob, extract_videos
from evalcore.frames.qwen_vl import qwen_video_frames
from evalcore.inference.runner import build_request
from evalcore.models import (
    ChatMessage,
    GenerationConfig,
    ModelError,
    ModelOutput,
    Runtime,
    VideoRequest,
)
from evalcore.models.transformers import (
    TransformersModel,
    TransformersParams,
    build_tiny_checkpoint,
)
from evalcore.predictions import FailureKind
from tests.doubles.videos import write_video


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny")
    return {
        arch: build_tiny_checkpoint(arch, root / arch) for arch in ("qwen2_5_vl", "llava_onevision")
    }


def params(checkpoint: Path, **video_input) -> TransformersParams:
    return TransformersParams.model_validate({"model": str(checkpoint), "video_input": video_input})


def loaded(checkpoint: Path, **video_input) -> TransformersModel:
    model = TransformersModel(params(checkpoint, **video_input))
    model.load(Runtime())
    return model


class ArrayFrames:
    def __init__(self, array: np.ndarray, timestamps) -> None:
        self.array, self.timestamps, self.paths = array, tuple(timestamps), ()

    def load(self) -> np.ndarray:
        return self.array


def request(seed: int = 0, n: int = 4, size=(64, 64), **fields) -> VideoRequest:
    """`n` random frames 0.5 s apart from frame 15 of a 25 fps, 250-frame video."""
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (n, *size, 3), dtype=np.uint8)
    indices = tuple(15 + 12 * k for k in range(n))
    text = "Which colour? A. red B. blue"
    known = {"source_fps": 25.0, "source_frames": 250, "frame_indices": indices}
    return VideoRequest(
        sample_id=f"s{seed}",
        prompt=text,
        question=text,
        options=("red", "blue"),
        frames=ArrayFrames(frames, [i / 25 for i in indices]),
        messages=(ChatMessage(role="user", text=text, video=True),),
        **(known | fields),
    )


# -- the config ---------------------------------------------------------------------------


def test_the_default_leaves_the_identity_as_it_was(tiny):
    checkpoint = tiny["qwen2_5_vl"]
    default = TransformersModel.identity(params(checkpoint))
    assert "video_input" not in default
    spelled_out = params(checkpoint, resize="processor", time_input="exact", prompt="template")
    assert TransformersModel.identity(spelled_out) == default
    changed = TransformersModel.identity(params(checkpoint, resize="qwen_vl", time_input="none"))
    assert changed.pop("video_input") == {"resize": "qwen_vl", "time_input": "none"}
    assert changed == default


@pytest.mark.parametrize(
    ("arch", "video_input", "errors"),
    [
        (
            "llava_onevision",
            {"resize": "qwen_vl"},
            {("video_input", "resize"): "take no qwen_vl resize"},
        ),
        (
            "qwen2_5_vl",
            {"prompt": "llava_ov_times"},
            {("video_input", "prompt"): "for llava_onevision checkpoints"},
        ),
        (
            "qwen2_5_vl",
            {"min_pixels": 3136, "budget_fps": 2.0},
            {
                ("video_input", "min_pixels"): "resize: qwen_vl only",
                ("video_input", "budget_fps"): "resize: qwen_vl only",
            },
        ),
        (
            "qwen2_5_vl",
            {"resize": "qwen_vl", "min_pixels": 6272, "max_pixels": 3136},
            {("video_input", "max_pixels"): "at least min_pixels"},
        ),
        (
            "qwen2_5_vl",
            {"resize": "qwen_vl", "image_patch_size": 15},
            {("video_input", "image_patch_size"): "Input should be 14 or 16"},
        ),
        (
            "llava_onevision",
            {"time_input": "approximate"},
            {("video_input", "time_input"): "'exact', 'metadata' or 'none'"},
        ),
    ],
)
def test_settings_that_do_not_apply_are_field_errors(tiny, arch, video_input, errors):
    with pytest.raises(ValidationError) as raised:
        params(tiny[arch], **video_input)
    found = {error["loc"]: error["msg"] for error in raised.value.errors()}
    assert set(found) == set(errors)
    for loc, message in errors.items():
        assert message in found[loc]


# -- what a request must carry --------------------------------------------------------------


@pytest.mark.parametrize(
    ("arch", "video_input", "missing", "reason"),
    [
        (
            "llava_onevision",
            {"prompt": "llava_ov_times"},
            {"source_frames": None},
            "llava_ov_times",
        ),
        ("llava_onevision", {"prompt": "llava_ov_times"}, {"frame_indices": ()}, "frame indices"),
        ("qwen2_5_vl", {"time_input": "metadata"}, {"source_fps": None}, "time_input metadata"),
        (
            "qwen2_5_vl",
            {"resize": "qwen_vl", "budget_fps": 2.0},
            {"source_frames": None},
            "budget_fps needs",
        ),
    ],
)
def test_a_request_without_what_its_setting_needs_fails_alone(
    tiny, arch, video_input, missing, reason
):
    model = loaded(tiny[arch], **video_input)
    answers = model.generate(
        [request(0), request(1, **missing)], GenerationConfig(max_new_tokens=2)
    )
    assert isinstance(answers[0], ModelOutput)
    assert isinstance(answers[1], ModelError)
    assert answers[1].error_type == FailureKind.PreprocessingError
    assert reason in str(answers[1])


def test_llava_ov_times_words_the_turn_as_vlmevalkit_and_the_model_answers(tiny):
    model = loaded(tiny["llava_onevision"], prompt="llava_ov_times", time_input="none")
    prepared = model._prepare(0, request(0))
    assert prepared.text.startswith("<|im_start|>user <video>\n<image>\nThe video lasts for 10.00 ")
    assert "4 frames are uniformly sampled from it. These frames are located at " in prepared.text
    assert "0.60s, 1.08s, 1.56s, 2.04s. Please answer" in prepared.text
    (answer,) = model.generate([request(0)], GenerationConfig(max_new_tokens=2))
    assert isinstance(answer, ModelOutput)


def test_budget_fps_sizes_frames_for_the_frames_read_at_that_rate(tiny):
    """A 10-minute 1080p video at 30 fps: qwen-vl-utils reads 768 frames (its cap) at fps
    2, each sized for a share of its total-pixel budget; 2 frames alone get more."""
    checkpoint = tiny["qwen2_5_vl"]
    full_hd = request(0, n=2, size=(1080, 1920), source_fps=30.0, source_frames=18000)
    budget = loaded(checkpoint, resize="qwen_vl", budget_fps=2.0)._prepare(0, full_hd)
    alone = loaded(checkpoint, resize="qwen_vl")._prepare(0, full_hd)
    read = qwen_video_frames(18000, 30.0, 1080, 1920)
    assert read.nframes == 768
    assert tuple(budget.video.shape) == (2, 3, read.height, read.width)
    assert tuple(alone.video.shape) == (2, 3, 560, 1008)
    assert read.height * read.width < 560 * 1008


# -- the runner's request -------------------------------------------------------------------


def test_the_request_carries_the_videos_frame_count_and_the_frames_numbers(tmp_path):
    video = write_video(tmp_path / "clip.mp4", n_frames=40, fps=20, gop=12)
    job = VideoJob(video)
    settings = FrameSettings(nframe=4)
    report = extract_videos([job], FrameCache(tmp_path / "frames"), settings)
    entry = report.results[job]
    sample = Sample("d", "0", "clip", video, "Which?", ("a", "b"), "A")
    built = build_request(sample, entry)
    assert built.source_fps == 20.0
    assert built.source_frames == 40
    assert built.frame_indices == entry.indices and len(built.frame_indices) == 4
    bare = build_request(sample, ArrayFrames(entry.load(), entry.timestamps))
    assert (bare.source_fps, bare.source_frames, bare.frame_indices) == (None, None, ())
