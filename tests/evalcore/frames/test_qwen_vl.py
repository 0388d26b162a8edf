"""evalcore.frames.qwen_vl against the installed qwen-vl-utils itself, value for value.

Three levels. The arithmetic: our functions against qwen-vl-utils' own `smart_nframes`,
its decord reader `_read_video_decord` (fed a stand-in decord that records which frames
it is asked for) and `fetch_video`'s resize lines (fed a frame tensor of the right shape
that holds no memory, its resize call recorded), over a grid of videos and requests.
Then real small H.264 videos through the unmodified `fetch_video`: the frames it chose
(read back from their pixels), its shape, its sample fps and its pixels against ours
(decoded by our decoder, resized by `resize_frames`).
"""

from __future__ import annotations

import random
import types
from fractions import Fraction

import pytest

torch = pytest.importorskip("torch")
qvu = pytest.importorskip("qwen_vl_utils.vision_process")

from evalcore.frames.decoders import PyAVSource  # noqa: E402
from evalcore.frames.qwen_vl import (  # noqa: E402
    QwenVideoFrames,
    linspace_indices,
    qwen_video_frames,
    resize_frames,
    smart_nframes,
    vlmevalkit_nframes,
)
from tests.doubles import decord_stand_in  # noqa: E402
from tests.doubles.videos import read_frame_number, write_video  # noqa: E402

TOKEN = 28 * 28
# torch's CPU linspace is a fused multiply-add on x86-64 with AVX2/AVX-512, not in its
# DEFAULT kernel (ATEN_CPU_CAPABILITY=default): see linspace_indices
FUSED = torch.backends.cpu.get_cpu_capability() != "DEFAULT"

# (total frames, average fps, height, width, request keys), request as qwen-vl-utils reads it
GRID = [
    (90, 30000 / 1001, 1080, 1920, {}),  # 3 s at 29.97 fps, defaults: fps 2
    (90, 30000 / 1001, 1080, 1920, {"nframes": 64}),
    (45, 15.0, 1080, 1920, {"nframes": 44}),  # what VLMEvalKit asks of a 3 s clip
    (45, 15.0, 1080, 1920, {"nframes": 64}),  # shorter than asked: qwen-vl-utils refuses
    (1800, 30000 / 1001, 1080, 1920, {"nframes": 64}),  # 1080p, 60 s
    (7200, 60.0, 1080, 1920, {"nframes": 64}),  # 120 s at 60 fps
    (3597, 30000 / 1001, 720, 1280, {"fps": 1.0}),
    (18000, 30000 / 1001, 1080, 1920, {}),  # 10 min: 768 frames at most
    (18000, 30000 / 1001, 1080, 1920, {"fps": 2.0, "max_frames": 256, "min_frames": 7}),
    (300, 24.0, 1080, 1920, {"fps": 0.1, "min_frames": 5}),  # min_frames rounds up to 6
    (301, 25.0, 361, 641, {"nframes": 8}),  # odd sizes
    (301, 25.0, 361, 641, {"nframes": 5}),  # rounds half to even: 4
    (301, 25.0, 361, 641, {"nframes": 7}),  # 8
    (120, 12.5, 98, 162, {}),  # small: raised to min_pixels
    (300, 24.0, 100, 3000, {"nframes": 16}),  # wide 30:1
    (3, 30.0, 1080, 1920, {}),  # 3 frames: 2
    (1, 30.0, 1080, 1920, {}),  # 1 frame: refused
    # VLMEvalKit's Qwen2.5-VL "-ForVideo" entry and the 7B-Instruct one (config.py)
    (
        1800,
        30000 / 1001,
        1080,
        1920,
        {
            "nframes": 64,
            "min_pixels": 128 * TOKEN,
            "max_pixels": 768 * TOKEN,
            "total_pixels": 24576 * TOKEN,
        },
    ),
    (
        1800,
        30000 / 1001,
        1080,
        1920,
        {"nframes": 64, "min_pixels": 1280 * TOKEN, "max_pixels": 16384 * TOKEN},
    ),
    (7200, 60.0, 1080, 1920, {"total_pixels": 20480 * TOKEN, "min_pixels": 16 * TOKEN}),
    (1800, 30.0, 1080, 1920, {"nframes": 32, "image_patch_size": 16}),  # Qwen3-VL
]


def _ours(total, fps, height, width, request, fused=FUSED) -> QwenVideoFrames:
    keys = dict(request)
    return qwen_video_frames(total, fps, height, width, fused=fused, **keys)


@pytest.fixture
def stand_in_decord(monkeypatch):
    decord_stand_in.install(monkeypatch)
    return decord_stand_in.StandInReader


def _theirs(total, fps, height, width, request, stand_in_decord, monkeypatch):
    """(indices, sample_fps, (height, width)) from qwen-vl-utils' own code."""
    keys = dict(request)
    patch = keys.pop("image_patch_size", 14)
    stand_in_decord.total, stand_in_decord.fps = total, fps
    _, meta, sample_fps = qvu._read_video_decord({"video": "x.mp4", **keys})
    assert stand_in_decord.asked == meta["frames_indices"]
    indices = meta["frames_indices"]
    # fetch_video's resize lines, on a frame tensor of the video's shape
    sizes = []

    def record(video, size, **kwargs):
        assert kwargs == {"interpolation": qvu.InterpolationMode.BICUBIC, "antialias": True}
        sizes.append(tuple(size))
        return torch.zeros(1)

    shaped = torch.zeros(1, 1, 1, 1, dtype=torch.uint8).expand(len(indices), 3, height, width)
    reader = lambda ele: (shaped, {}, sample_fps)  # noqa: E731
    monkeypatch.setitem(qvu.VIDEO_READER_BACKENDS, "decord", reader)
    monkeypatch.setattr(qvu, "get_video_reader_backend", lambda: "decord")
    stub = types.SimpleNamespace(functional=types.SimpleNamespace(resize=record))
    monkeypatch.setattr(qvu, "transforms", stub)
    _, reported = qvu.fetch_video(
        {"video": "x.mp4", **keys}, image_patch_size=patch, return_video_sample_fps=True
    )
    assert reported == sample_fps
    return indices, sample_fps, sizes[0]


@pytest.mark.parametrize(("total", "fps", "height", "width", "request_keys"), GRID)
def test_same_frames_size_and_rate_as_qwen_vl_utils(
    total, fps, height, width, request_keys, stand_in_decord, monkeypatch
):
    nframe_keys = {k: v for k, v in request_keys.items() if k in ("nframes", "fps")}
    nframe_keys |= {k: v for k, v in request_keys.items() if k in ("min_frames", "max_frames")}
    try:
        expected = qvu.smart_nframes(dict(nframe_keys), total_frames=total, video_fps=fps)
    except ValueError:
        with pytest.raises(ValueError, match="nframes should in interval"):
            smart_nframes(total, fps, **nframe_keys)
        with pytest.raises(ValueError, match="nframes should in interval"):
            _ours(total, fps, height, width, request_keys)
        return
    assert smart_nframes(total, fps, **nframe_keys) == expected

    indices, sample_fps, size = _theirs(
        total, fps, height, width, request_keys, stand_in_decord, monkeypatch
    )
    ours = _ours(total, fps, height, width, request_keys)
    assert ours.nframes == expected
    assert list(ours.indices) == indices
    assert (ours.height, ours.width) == size
    assert ours.sample_fps == sample_fps


def test_visual_tokens_of_a_1080p_minute_at_64_frames():
    # the package's defaults: the per-frame ceiling is VIDEO_MAX_TOKEN_NUM (768) tokens
    frames = qwen_video_frames(1800, 30000 / 1001, 1080, 1920, nframes=64)
    assert (frames.height, frames.width) == (560, 1008)
    assert frames.visual_tokens == 32 * 20 * 36 == 23_040
    assert frames.indices[0] == 0 and frames.indices[-1] == 1799
    assert frames.sample_fps == pytest.approx(64 / 1800 * 30000 / 1001)
    # VLMEvalKit's Qwen2.5-VL-7B-Instruct entry: min_pixels 1280 tokens lifts the ceiling
    # to int(1.05 * min_pixels)
    seven_b = qwen_video_frames(
        1800,
        30000 / 1001,
        1080,
        1920,
        nframes=64,
        min_pixels=1280 * TOKEN,
        max_pixels=16384 * TOKEN,
    )
    assert (seven_b.height, seven_b.width) == (756, 1344)
    assert seven_b.visual_tokens == 41_472


def test_linspace_is_torchs_on_thousands_of_video_lengths():
    rng = random.Random(21)
    pairs = [(t, n) for t in range(2, 160) for n in range(2, t + 1, 2)]
    pairs += [(rng.randint(2, 400_000), 2 * rng.randint(1, 384)) for _ in range(1500)]
    pairs = [(t, n) for t, n in pairs if n <= t]
    wrong = [
        (t, n)
        for t, n in pairs
        if linspace_indices(0, t - 1, n, fused=FUSED)
        != torch.linspace(0, t - 1, n).round().long().tolist()
    ]
    assert wrong == []


def test_fused_and_unfused_linspace_disagree_on_some_long_videos():
    # why linspace_indices has to know torch's kernel: (268057 frames, 498) differs
    assert linspace_indices(0, 268056, 498) != linspace_indices(0, 268056, 498, fused=False)


def test_vlmevalkit_asks_for_the_frame_count_rounded_down_on_short_videos():
    assert vlmevalkit_nframes(64, 45) == 44
    assert vlmevalkit_nframes(64, 64) == 64
    assert vlmevalkit_nframes(8, 1800) == 8
    frames = qwen_video_frames(45, 15.0, 1080, 1920, nframes=vlmevalkit_nframes(64, 45))
    assert frames.nframes == 44


# -- real videos through the unmodified fetch_video ------------------------------------

REAL = [
    # (name, write_video keywords, request)
    ("ntsc.mp4", {"n_frames": 90, "fps": Fraction(30000, 1001)}, {}),
    ("short.mp4", {"n_frames": 45, "fps": 15}, {"nframes": 44}),
    ("odd.mp4", {"n_frames": 61, "fps": 25, "width": 162, "height": 98}, {"nframes": 9}),
    (
        "budget.mp4",
        {"n_frames": 40, "fps": 20, "width": 320, "height": 180},
        {"fps": 4.0, "min_pixels": 16 * TOKEN, "total_pixels": 200 * TOKEN},
    ),
]


def _fetch(path, request):
    video, sample_fps = qvu.fetch_video(
        {"video": str(path), **request}, return_video_sample_fps=True
    )
    return video, sample_fps


@pytest.mark.parametrize(("name", "video_keys", "request_keys"), REAL)
def test_real_videos_give_qwen_vl_utils_frames_and_pixels(tmp_path, name, video_keys, request_keys):
    path = write_video(tmp_path / name, gop=12, **video_keys)
    theirs, their_fps = _fetch(path, request_keys)
    with PyAVSource(path) as source:
        info = source.info
        first = next(source.read([0]))[2]
        ours = qwen_video_frames(info.n_frames, info.fps, first.height, first.width, **request_keys)
    with PyAVSource(path) as source:
        frames = [image for _, _, image in source.read(sorted(set(ours.indices)))]
    by_index = dict(zip(sorted(set(ours.indices)), frames, strict=True))
    ours_tensor = resize_frames([by_index[i] for i in ours.indices], ours.height, ours.width)

    seen = [read_frame_number(f.permute(1, 2, 0).numpy()) for f in theirs]
    assert seen == list(ours.indices)
    assert theirs.shape == ours_tensor.shape == (ours.nframes, 3, ours.height, ours.width)
    assert their_fps == ours.sample_fps
    assert (theirs - ours_tensor).abs().mean().item() <= 0.1


def test_a_variable_frame_rate_video(tmp_path):
    # 30 frames: 10 at 10 fps, 10 at 30 fps, 10 at 10 fps
    times, t = [], 0.0
    for i in range(30):
        times.append(round(t, 3))
        t += 0.1 if i < 10 or i >= 20 else 1 / 30
    path = write_video(tmp_path / "vfr.mp4", n_frames=30, gop=12, frame_times=times)
    theirs, their_fps = _fetch(path, {"nframes": 8})
    with PyAVSource(path) as source:
        info = source.info
        first = next(source.read([0]))[2]
    ours = qwen_video_frames(info.n_frames, info.fps, first.height, first.width, nframes=8)
    seen = [read_frame_number(f.permute(1, 2, 0).numpy()) for f in theirs]
    assert seen == list(ours.indices)
    assert their_fps == pytest.approx(ours.sample_fps)


# -- what the processor makes of it ---------------------------------------------------


def test_the_processor_gets_the_authors_inputs_and_second_per_grid_ts(tmp_path, monkeypatch):
    """qwen-vl-utils' usage for current processors: process_vision_info with
    return_video_metadata (its line 529: `fps` is only for older Qwen2.5-VL code), the
    processor given the frames and their metadata. Our frames and a metadata dict of ours
    give the same pixel_values_videos, video_grid_thw and second_per_grid_ts (2 / sample
    fps). transformers 5.24 reads the rate from the metadata only: the `fps` keyword of
    the model card's usage leaves second_per_grid_ts at 2 / 24."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from transformers import AutoProcessor

    from evalcore.models.transformers.tiny import build_tiny_checkpoint

    processor = AutoProcessor.from_pretrained(
        build_tiny_checkpoint("qwen2_5_vl", tmp_path / "ckpt"), local_files_only=True
    )
    path = write_video(tmp_path / "clip.mp4", n_frames=90, fps=Fraction(30000, 1001), gop=12)
    request = {"nframes": 8, "min_pixels": 16 * TOKEN, "max_pixels": 32 * TOKEN}
    content = [{"type": "video", "video": str(path), **request}, {"type": "text", "text": "?"}]
    messages = [{"role": "user", "content": content}]
    _, videos, video_kwargs = qvu.process_vision_info(
        messages, return_video_kwargs=True, return_video_metadata=True
    )
    ((video, metadata),) = videos
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    authors = processor(
        text=[text],
        videos=[video],
        video_metadata=[metadata],
        return_tensors="pt",
        **video_kwargs,
    )

    with PyAVSource(path) as source:
        info = source.info
        first = next(source.read([0]))[2]
        ours = qwen_video_frames(info.n_frames, info.fps, first.height, first.width, **request)
        by_index = {i: image for i, _, image in source.read(sorted(set(ours.indices)))}
    tensor = resize_frames([by_index[i] for i in ours.indices], ours.height, ours.width)
    ours_metadata = {
        "fps": info.fps,
        "frames_indices": list(ours.indices),
        "total_num_frames": info.n_frames,
    }
    mine = processor(
        text=[text],
        videos=[tensor],
        video_metadata=[ours_metadata],
        return_tensors="pt",
        do_sample_frames=False,
    )
    assert torch.equal(mine["video_grid_thw"], authors["video_grid_thw"])
    assert mine["second_per_grid_ts"] == authors["second_per_grid_ts"]
    assert mine["second_per_grid_ts"] == pytest.approx([2 / ours.sample_fps])
    assert torch.allclose(mine["pixel_values_videos"], authors["pixel_values_videos"], atol=1e-3)

    with_fps = processor(
        text=[text],
        videos=[tensor],
        return_tensors="pt",
        fps=ours.sample_fps,
        do_sample_frames=False,
    )
    assert with_fps["second_per_grid_ts"] == pytest.approx([2 / 24])
