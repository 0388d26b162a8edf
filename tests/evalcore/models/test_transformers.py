"""`kind: transformers` on real (tiny, random-weight) checkpoints of each family.

Each architecture's checkpoint is built in a temp dir with the family's real model,
processor and chat-template classes, then loaded with `from_pretrained` offline, so
these tests run the same code path a 7B checkpoint on a GPU would, on CPU in seconds.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from evalcore.models import (
    ChatMessage,
    GenerationConfig,
    ModelError,
    ModelOutput,
    Runtime,
    VideoRequest,
)
from evalcore.models.transformers import (
    TINY_ARCHS,
    TransformersModel,
    TransformersParams,
    build_tiny_checkpoint,
)

GREEDY = GenerationConfig(max_new_tokens=8)


def texts(answers) -> list[str]:
    """The answers' texts; each answer must be a `ModelOutput` with a text."""
    assert all(isinstance(a, ModelOutput) and isinstance(a.text, str) for a in answers)
    return [a.text for a in answers]


class FakeFrames:
    """Frames as the frame cache hands them out: an array, timestamps, maybe a failure."""

    def __init__(self, array: np.ndarray, timestamps, error: Exception | None = None) -> None:
        self.array = array
        self._timestamps = tuple(timestamps)
        self._error = error

    @property
    def paths(self) -> tuple:
        return ()

    @property
    def timestamps(self) -> tuple[float, ...]:
        return self._timestamps

    def load(self) -> np.ndarray:
        if self._error is not None:
            raise self._error
        return self.array


def make_request(
    seed: int,
    n_frames: int = 8,
    size: tuple[int, int] = (64, 64),
    question: str = "Which option matches the video?",
    start: float = 1.0,
    interval: float = 0.4,
    source_fps: float | None = 25.0,
    error: Exception | None = None,
    channels: int = 3,
) -> VideoRequest:
    """Random frames at `start + k * interval` s, a system turn and a video user turn."""
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (n_frames, *size, channels), dtype=np.uint8)
    timestamps = [round(start + k * interval, 6) for k in range(n_frames)]
    prompt = f"{question} A. red B. blue C. green. Answer with the letter."
    return VideoRequest(
        sample_id=f"s{seed}",
        prompt=prompt,
        question=question,
        options=("red", "blue", "green"),
        frames=FakeFrames(frames, timestamps, error),
        messages=(
            ChatMessage(role="system", text="You answer questions about videos."),
            ChatMessage(role="user", text=prompt, video=True),
        ),
        source_fps=source_fps,
    )


@pytest.fixture
def spy(loaded, monkeypatch):
    """Records what reaches the video processor and what `model.generate` gets/returns."""
    calls: dict[str, list] = {"videos": [], "videos_kwargs": [], "generate": []}
    video_processor = loaded.processor.video_processor
    preprocess, generate = video_processor.preprocess, loaded.model.generate

    def recording_preprocess(videos, **kwargs):
        calls["videos"].append(videos)
        calls["videos_kwargs"].append(kwargs)
        return preprocess(videos, **kwargs)

    def recording_generate(**kwargs):
        output = generate(**kwargs)
        calls["generate"].append((kwargs, output))
        return output

    monkeypatch.setattr(video_processor, "preprocess", recording_preprocess)
    monkeypatch.setattr(loaded.model, "generate", recording_generate)
    return calls


# --- the tiny checkpoints ------------------------------------------------------------


def test_tiny_checkpoint_loads_with_auto_classes(arch, checkpoint):
    from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor

    config = AutoConfig.from_pretrained(checkpoint, local_files_only=True)
    processor = AutoProcessor.from_pretrained(checkpoint, local_files_only=True)
    model = AutoModelForImageTextToText.from_pretrained(checkpoint, local_files_only=True)
    assert config.model_type == arch
    assert model.config.model_type == arch
    assert processor.video_processor is not None and processor.image_processor is not None
    assert processor.chat_template
    size = sum(f.stat().st_size for f in Path(checkpoint).iterdir())
    assert size < 20 * 2**20


def test_tiny_build_is_deterministic(arch, tmp_path):
    """(How long a build takes depends on the machine's load: bench/models.py prints it.)"""
    for name in ("one", "two"):
        build_tiny_checkpoint(arch, tmp_path / name)
    for file in ("model.safetensors", "tokenizer.json", "config.json"):
        assert (tmp_path / "one" / file).read_bytes() == (tmp_path / "two" / file).read_bytes()


def test_unknown_tiny_arch_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown tiny arch"):
        build_tiny_checkpoint("gpt2", tmp_path)


# --- frames and time reach the processor ---------------------------------------------


@pytest.mark.parametrize("source_fps", [25.0, None], ids=["fps25", "no-fps"])
def test_frames_and_timestamps_reach_the_processor(arch, loaded, spy, source_fps):
    request = make_request(0, n_frames=8, start=1.0, interval=0.4, source_fps=source_fps)
    answer = loaded.generate([request], GREEDY)[0]
    assert isinstance(answer, ModelOutput) and isinstance(answer.text, str)

    (videos,) = spy["videos"]
    assert len(videos) == 1 and np.array_equal(videos[0], request.frames.array)  # (8,64,64,3)
    kwargs = spy["videos_kwargs"][0]
    assert kwargs["do_sample_frames"] is False  # our frames, never re-sampled
    (metadata,) = kwargs["video_metadata"]
    assert metadata.timestamps == pytest.approx(request.timestamps, abs=1e-3)
    assert metadata.fps == (source_fps or 1000.0)
    assert metadata.total_num_frames > max(metadata.frames_indices)
    assert (metadata.height, metadata.width) == (64, 64)

    (inputs, _), *_ = spy["generate"]
    if arch in ("qwen2_vl", "qwen2_5_vl", "qwen3_vl"):
        # 8 frames -> 4 temporal patches; 64 px -> 56 (28-multiples) / 14, or 64 / 16
        assert inputs["video_grid_thw"].tolist() == [[4, 4, 4]]
    elif arch in ("llava_onevision", "llava_next_video"):
        assert tuple(inputs["pixel_values_videos"].shape) == (1, 8, 3, 32, 32)
    elif arch == "internvl":
        assert tuple(inputs["pixel_values"].shape) == (8, 3, 32, 32)
    if arch == "qwen2_5_vl":
        # 2 frames per temporal patch x 0.4 s between frames
        assert inputs["second_per_grid_ts"].tolist() == pytest.approx([0.8])
    if arch == "qwen3_vl":
        prompt = loaded.processor.tokenizer.decode(inputs["input_ids"][0])
        # each temporal patch labelled with the mean time of its two frames
        for label in ("<1.2 seconds>", "<2.0 seconds>", "<2.8 seconds>", "<3.6 seconds>"):
            assert label in prompt


@pytest.mark.parametrize(
    ("arch", "max_pixels"),
    [("qwen2_vl", 28 * 28), ("qwen2_5_vl", 28 * 28), ("qwen3_vl", 8 * 32 * 32)],
    indirect=["arch"],
)
def test_qwen_pixel_bounds_reach_the_processor(arch, checkpoint, max_pixels):
    """max_pixels bounds a frame (Qwen2/2.5-VL) or the clip (Qwen3-VL): 64 px -> 28/32 px."""
    processor = {"max_pixels": max_pixels, "cap_pixels_per_frame": True}
    params = TransformersParams.model_validate({"model": str(checkpoint), "processor": processor})
    model = TransformersModel(params)
    model.load(Runtime())
    seen = []
    generate = model.model.generate
    model.model.generate = lambda **kw: seen.append(kw) or generate(**kw)
    assert texts(model.generate([make_request(0)], GREEDY))
    assert seen[0]["video_grid_thw"].tolist() == [[4, 2, 2]]


# --- generation ----------------------------------------------------------------------


def test_greedy_batch_is_deterministic_and_equals_single_calls(arch, loaded):
    requests = [
        make_request(0, question="Which?"),
        make_request(1, n_frames=6, question="Which ball moves left, and how often, in the clip?"),
        make_request(2, n_frames=8, question="What colour is the square?"),
        make_request(3, n_frames=4, size=(48, 80), question="Count the shapes."),
    ]
    batch = texts(loaded.generate(requests, GREEDY))
    assert texts(loaded.generate(requests, GREEDY)) == batch
    assert [texts(loaded.generate([r], GREEDY))[0] for r in requests] == batch
    assert len(set(batch)) > 1  # answers depend on the input, so the comparison means something


@pytest.mark.parametrize("max_new_tokens", [1, 5])
def test_max_new_tokens_is_honoured(loaded, spy, max_new_tokens):
    generation = GenerationConfig(max_new_tokens=max_new_tokens)
    texts(loaded.generate([make_request(0), make_request(1)], generation))
    (inputs, output), *_ = spy["generate"]
    new_tokens = output.shape[1] - inputs["input_ids"].shape[1]
    assert 1 <= new_tokens <= max_new_tokens


def test_sampling_is_seeded(loaded):
    requests = [make_request(0), make_request(1)]
    sampled = GenerationConfig(max_new_tokens=6, temperature=1.0, top_p=0.9, seed=5)
    first = texts(loaded.generate(requests, sampled))
    assert texts(loaded.generate(requests, sampled)) == first
    others = [
        texts(loaded.generate(requests, sampled.model_copy(update={"seed": s}))) for s in (6, 7)
    ]
    assert any(answers != first for answers in others)


def test_answers_carry_token_counts_from_the_tokenizer(loaded, spy):
    short = make_request(0, question="Which?")
    long = make_request(1, question="Which option matches what the video shows? " * 4)
    alone = loaded.generate([short], GREEDY)[0]
    ((kwargs, output),) = spy["generate"]
    width = kwargs["input_ids"].shape[1]  # one request: no padding, every token is prompt
    assert isinstance(alone, ModelOutput) and alone.usage.prompt_tokens == width
    pad = loaded.processor.tokenizer.pad_token_id
    pad = pad if pad is not None else loaded.processor.tokenizer.eos_token_id
    assert alone.usage.completion_tokens == int((output[0, width:] != pad).sum())
    assert 1 <= alone.usage.completion_tokens <= GREEDY.max_new_tokens

    both = [answer.usage for answer in loaded.generate([short, long], GREEDY)]
    assert both[0].prompt_tokens == alone.usage.prompt_tokens  # its left padding: not counted
    assert both[1].prompt_tokens > alone.usage.prompt_tokens
    assert both[1].prompt_tokens == spy["generate"][1][0]["input_ids"].shape[1]


def test_answers_are_cut_at_stop_strings(loaded):
    full = loaded.generate([make_request(4)], GenerationConfig(max_new_tokens=12))[0].text
    stop = next((c for c in full[1:] if c.isascii() and c.isalnum()), None)
    if stop is None:
        pytest.skip(f"no ASCII character to stop at in {full!r}")
    cut = loaded.generate([make_request(4)], GenerationConfig(max_new_tokens=12, stop=(stop,)))
    cut = cut[0].text
    assert cut == full[: full.find(stop)].strip()


def test_out_of_memory_propagates(loaded, monkeypatch):
    def oom(**kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(loaded.model, "generate", oom)
    with pytest.raises(torch.cuda.OutOfMemoryError):
        loaded.generate([make_request(0), make_request(1)], GREEDY)


# --- a bad request fails alone -------------------------------------------------------


def test_unreadable_frames_fail_alone(arch, loaded):
    good = [make_request(0), make_request(2)]
    broken = make_request(1, error=OSError("frame cache entry gone"))
    invalid = make_request(3, channels=4)
    answers = loaded.generate([good[0], broken, invalid, good[1]], GREEDY)
    assert isinstance(answers[1], ModelError) and answers[1].error_type == "FramesUnreadable"
    assert "frame cache entry gone" in str(answers[1])
    assert isinstance(answers[2], ModelError) and answers[2].error_type == "InvalidFrames"
    singles = [texts(loaded.generate([r], GREEDY))[0] for r in good]
    assert texts([answers[0], answers[3]]) == singles


def test_preprocessing_failure_fails_alone(arch, loaded, monkeypatch):
    video_processor = loaded.processor.video_processor
    preprocess = video_processor.preprocess

    def refuses_40px(videos, **kwargs):
        if any(np.asarray(v).shape[1] == 40 for v in videos):
            raise ValueError("cannot resize a 40 px clip")
        return preprocess(videos, **kwargs)

    monkeypatch.setattr(video_processor, "preprocess", refuses_40px)
    requests = [make_request(0), make_request(1, size=(40, 40)), make_request(2)]
    answers = loaded.generate(requests, GREEDY)
    assert isinstance(answers[1], ModelError) and answers[1].error_type == "PreprocessingError"
    assert "40 px" in str(answers[1])
    singles = [texts(loaded.generate([r], GREEDY))[0] for r in (requests[0], requests[2])]
    assert texts([answers[0], answers[2]]) == singles


# --- identity ------------------------------------------------------------------------


def test_identity_follows_revision_dtype_and_files(tmp_path, monkeypatch):
    import transformers

    checkpoint = build_tiny_checkpoint("qwen2_vl", tmp_path / "ck")

    def identity(**changes):
        params = TransformersParams.model_validate({"model": str(checkpoint), **changes})
        return TransformersModel.identity(params)

    def no_weights(*args, **kwargs):
        raise AssertionError("identity must not load weights")

    monkeypatch.setattr(transformers.AutoModelForImageTextToText, "from_pretrained", no_weights)
    first = identity()
    json.dumps(first)  # goes into cache keys
    assert identity() == first
    assert identity(revision="v2") != first
    assert identity(dtype="bfloat16") != first
    assert identity(processor={"max_pixels": 3136}) != first
    assert identity(allow_network=True) == first  # where files may come from, not what

    weights = checkpoint / "model.safetensors"
    stat = weights.stat()
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # touched in place
    touched = identity()
    assert touched != first and touched["checkpoint"] != first["checkpoint"]
    (checkpoint / "README.md").write_text("notes")  # not part of what answers
    assert identity() == touched


def test_hub_id_resolves_from_the_local_cache(tmp_path, monkeypatch):
    import huggingface_hub.constants

    cache = tmp_path / "hub"
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / "models--acme--tiny-vl"
    build_tiny_checkpoint("qwen2_vl", repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))

    params = TransformersParams.model_validate({"model": "acme/tiny-vl"})
    assert TransformersModel.identity(params)["checkpoint"] == commit
    model = TransformersModel(params)
    model.load(Runtime())
    assert texts(model.generate([make_request(0)], GREEDY))

    with pytest.raises(ValidationError) as raised:
        TransformersParams.model_validate({"model": "acme/absent-vl"})
    (error,) = raised.value.errors()
    assert error["loc"] == ("model",)
    assert "not in the local Hugging Face cache" in error["msg"]
    assert "allow_network: true" in error["msg"]
    online = TransformersParams.model_validate({"model": "acme/absent-vl", "allow_network": True})
    assert TransformersModel.identity(online)["checkpoint"] == "unresolved"


# --- params fail at validation, naming the field -------------------------------------


@pytest.fixture(scope="module")
def llava_checkpoint(tmp_path_factory) -> Path:
    return build_tiny_checkpoint("llava_onevision", tmp_path_factory.mktemp("llava"))


@pytest.mark.parametrize(
    ("changes", "loc", "message"),
    [
        ({"bogus": 1}, ("bogus",), "Extra inputs are not permitted"),
        ({"dtype": "int7"}, ("dtype",), "'auto', 'float32', 'bfloat16' or 'float16'"),
        ({"model": "/nonexistent/ck"}, ("model",), "no checkpoint at /nonexistent/ck"),
        ({"processor": {"min_pixels": 0}}, ("processor", "min_pixels"), "greater than"),
        ({"processor": {"max_pixels": 9}}, ("processor", "max_pixels"), "only the Qwen"),
        ({"processor": {"frames": 8}}, ("processor", "frames"), "Extra inputs"),
    ],
)
def test_bad_params_fail_at_validation(llava_checkpoint, changes, loc, message):
    with pytest.raises(ValidationError) as raised:
        TransformersParams.model_validate({"model": str(llava_checkpoint), **changes})
    (error,) = raised.value.errors()
    assert error["loc"] == loc
    assert message in error["msg"]


def test_directory_without_config_fails_at_validation(tmp_path):
    with pytest.raises(ValidationError, match="no config.json in"):
        TransformersParams.model_validate({"model": str(tmp_path)})


def test_registry_builds_the_kind_and_names_bad_fields(llava_checkpoint):
    from evalcore.models import ModelParamsError, build_model, model_identity

    model = build_model("transformers", {"model": str(llava_checkpoint)})
    assert isinstance(model, TransformersModel)
    assert model_identity("transformers", {"model": str(llava_checkpoint)})["kind"] == (
        "transformers"
    )
    with pytest.raises(ModelParamsError, match=r"params\.model: no checkpoint at /nope"):
        build_model("transformers", {"model": "/nope"})


def test_every_tiny_arch_has_a_family():
    from evalcore.models.transformers.families import GENERIC, family_for

    assert all(family_for(arch) is not GENERIC for arch in TINY_ARCHS)
    assert family_for("smolvlm") is GENERIC


@pytest.mark.parametrize("arch", ["qwen2_vl", "llava_onevision"], indirect=True)
def test_generic_path_answers_like_the_family(arch, loaded, monkeypatch):
    """Any other model_type takes the generic path; where the family adds nothing to
    the processor call (these two), the answers must be the same."""
    from evalcore.models.transformers.families import GENERIC

    requests = [make_request(0), make_request(1, n_frames=6), make_request(2)]
    by_family = texts(loaded.generate(requests, GREEDY))
    monkeypatch.setattr(loaded, "family", GENERIC)
    assert texts(loaded.generate(requests, GREEDY)) == by_family
