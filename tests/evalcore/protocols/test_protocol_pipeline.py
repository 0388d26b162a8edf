"""`protocol:` through the real pipeline, against the reference's own call on the same
file: a config names the protocol; extraction caches the frames its plan picks (PNG,
native size), the runner builds the request from the cache, the adapter prepares the
processor inputs. They must equal what the reference's code makes of the video file:
token ids, grids, time input identical; pixels equal up to the two decoders. And the
frame-based path's cached JPEGs are VLMEvalKit's saved frame files, byte for byte."""

from __future__ import annotations

from fractions import Fraction

import pandas as pd
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("qwen_vl_utils")
pytest.importorskip("decord")

from evalcore.benchmarks import adapter_of, load_samples  # noqa: E402
from evalcore.cell import cells_of, extract_dataset_frames  # noqa: E402
from evalcore.config import parse_config  # noqa: E402
from evalcore.frames import FrameCache  # noqa: E402
from evalcore.frames.index import read_frame_index  # noqa: E402
from evalcore.frames.qwen_vl import vlmevalkit_nframes  # noqa: E402
from evalcore.inference.runner import build_request  # noqa: E402
from evalcore.models import Runtime, parse_params  # noqa: E402
from evalcore.models.transformers import TransformersModel, build_tiny_checkpoint  # noqa: E402
from evalcore.workspace import Workspace  # noqa: E402
from tests.doubles.peer_calls import (  # noqa: E402
    assert_same_inputs,
    lmms_eval_qwen25,
    native_qwen,
    vlmevalkit_llava_ov,
    vlmevalkit_qwen,
    vlmevalkit_videomme_frames,
)
from tests.doubles.videos import write_video  # noqa: E402

TOKEN = 28 * 28
QWEN = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")
# the 361 x 641 clip at VLMEvalKit's 1280-token floor is ~1 M pixels a frame: 8 frames
# keep it quick; the 45-frame clip asked for 64 takes VLMEvalKit's short-clip rule, at
# small pixel bounds of the model's own (`params.video_input` keys win over the
# protocol's), which the reference call is given too
NFRAME = {"odd.mp4": 8, "short.mp4": 64}
OWN_PIXELS = {"odd.mp4": {}, "short.mp4": {"min_pixels": 16 * TOKEN, "max_pixels": 32 * TOKEN}}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("protocol")
    # odd size, 29.97 fps; and a clip shorter than the 64 frames VLMEvalKit's names ask
    write_video(root / "odd.mp4", n_frames=90, fps=Fraction(30000, 1001), width=641,
                height=361, pix_fmt="yuv444p", gop=12)  # fmt: skip
    write_video(root / "short.mp4", n_frames=45, fps=15, gop=12)
    checkpoints = {
        arch: build_tiny_checkpoint(arch, root / arch) for arch in (*QWEN, "llava_onevision")
    }
    return root, checkpoints


def run_to_inputs(root, video, model, protocol, benchmark, frames=None, name="run"):
    """The processor inputs our pipeline makes for the one sample of `video`."""
    tsv = root / f"{name}.tsv"
    row = {"index": 0, "video": video, "question": "What moves?", "answer": "A",
           "candidates": "['a ball', 'a bar']"}  # fmt: skip
    pd.DataFrame([row]).to_csv(tsv, sep="\t", index=False)
    raw = {
        "datasets": [{"tsv": str(tsv), "benchmark": benchmark, "name": name}],
        "models": [model],
        "protocol": protocol,
        "work_dir": str(root / f"work-{name}"),
        "output_dir": str(root / f"out-{name}"),
    }
    if frames:
        raw["datasets"][0]["frames"] = frames
    (cell,) = cells_of(parse_config(raw))
    ws = Workspace(root / f"work-{name}", root / f"out-{name}")
    extract_dataset_frames(cell.dataset, cell.frames, ws)
    index = read_frame_index(cell.frame_index_path(ws), FrameCache(ws.frame_cache_dir))
    (sample,) = load_samples(cell.dataset)
    request = build_request(sample, index.frames_for(sample.sample_id), adapter_of(cell.dataset))
    return cell, request


def adapter_inputs(cell, request):
    model = TransformersModel(parse_params(cell.model.kind, cell.model.params))
    model.load(Runtime())
    prepared = model._prepare(0, request)
    assert not isinstance(prepared, Exception), prepared
    return model, model._process([prepared])


@pytest.mark.parametrize("video", ["odd.mp4", "short.mp4"])
@pytest.mark.parametrize("arch", QWEN)
def test_qwen_under_protocol_vlmevalkit(arch, video, world):
    root, checkpoints = world
    params = {"model": str(checkpoints[arch])}
    if OWN_PIXELS[video]:
        params["video_input"] = {"resize": "qwen_vl", **OWN_PIXELS[video]}
    model = {"name": arch, "kind": "transformers", "params": params}
    # the dataset's nframe, as VLMEvalKit's `_8frame` / `_64frame` names set it
    nframe = NFRAME[video]
    name = f"vk-{arch}-{video[:-4]}"
    cell, request = run_to_inputs(
        root, video, model, "vlmevalkit", "generic", frames={"nframe": nframe}, name=name
    )
    assert cell.frames.storage == "png" and cell.rule_set == "vlmevalkit"
    loaded, ours = adapter_inputs(cell, request)
    processor = loaded.processor
    nframes = vlmevalkit_nframes(nframe, request.source_frames)
    pixels = {} if arch == "qwen3_vl" else {"min_pixels": 1280 * TOKEN, "max_pixels": 16384 * TOKEN}
    pixels = {**pixels, **OWN_PIXELS[video]}
    theirs = vlmevalkit_qwen(arch, processor, root / video, nframes, pixels, request.prompt)
    assert_same_inputs(f"protocol vlmevalkit {arch} {video}", ours, theirs, processor)


@pytest.mark.parametrize("arch", QWEN)
def test_qwen_under_protocol_native(arch, world):
    """The model card's usage: qwen-vl-utils' defaults (2 fps), the metadata."""
    root, checkpoints = world
    model = {"name": arch, "kind": "transformers", "params": {"model": str(checkpoints[arch])}}
    cell, request = run_to_inputs(root, "odd.mp4", model, "native", "generic", name=f"nat-{arch}")
    assert (cell.frames.sampler, cell.frames.fps) == ("qwen_vl", 2.0)
    loaded, ours = adapter_inputs(cell, request)
    theirs = native_qwen(arch, loaded.processor, root / "odd.mp4", {}, request.prompt)
    assert_same_inputs(f"protocol native {arch}", ours, theirs, loaded.processor)


def test_qwen25_under_protocol_lmms_eval(world):
    """lmms-eval's Qwen2.5-VL: qwen-vl-utils at 2 fps, then up to 32 of those frames,
    sized for all it read; its processor loaded with the same pixel bounds (here the
    tiny checkpoint's bounds contain them, as a real checkpoint's do)."""
    root, checkpoints = world
    ckpt = checkpoints["qwen2_5_vl"]
    model = {"name": "q", "kind": "transformers", "params": {"model": str(ckpt)}}
    cell, request = run_to_inputs(root, "odd.mp4", model, "lmms-eval", "generic", name="lmms")
    assert (cell.frames.sampler, cell.frames.nframe, cell.rule_set) == (
        "lmms_eval_qwen",
        32,
        "lmms-eval",
    )
    loaded, ours = adapter_inputs(cell, request)
    pixels = {"min_pixels": 256 * TOKEN, "max_pixels": 1605632}
    theirs = lmms_eval_qwen25(ckpt, root / "odd.mp4", pixels, 32, request.prompt)
    assert_same_inputs("protocol lmms-eval qwen2_5_vl", ours, theirs, loaded.processor)


def test_llava_onevision_under_protocol_vlmevalkit(world):
    root, checkpoints = world
    ckpt = checkpoints["llava_onevision"]
    model = {"name": "l", "kind": "transformers", "params": {"model": str(ckpt)}}
    cell, request = run_to_inputs(root, "odd.mp4", model, "vlmevalkit", "generic",
                                  frames={"nframe": 8}, name="llava")  # fmt: skip
    assert cell.frames.sampler == "llava_ov"
    loaded, ours = adapter_inputs(cell, request)
    theirs, indices = vlmevalkit_llava_ov(loaded.processor, root / "odd.mp4", 8, request.prompt)
    assert list(request.frame_indices) == indices
    assert_same_inputs("protocol vlmevalkit llava_onevision", ours, theirs, loaded.processor, 2)


def test_frame_based_videomme_frames_are_vlmevalkits_files_byte_for_byte(tmp_path):
    """`benchmark: Video-MME_8frame`, `protocol: vlmevalkit`, an API-like model: the
    cached JPEGs are the files VLMEvalKit's `save_video_frames` writes."""
    video = tmp_path / "video" / "vmX.mp4"
    video.parent.mkdir()
    write_video(video, n_frames=90, fps=Fraction(30000, 1001), width=640, height=360, gop=12)
    options = "['A. a ball.', 'B. a bar.', 'C. a cat.', 'D. a dog.']"
    row = {"index": 0, "video": "vmX", "video_path": "./video/vmX.mp4", "duration": "short",
           "domain": "Knowledge", "candidates": options, "sub_category": "Humanity",
           "task_type": "Counting Problem", "subtitle_path": "./subtitle/vmX.srt",
           "question": "What moves?", "answer": "A"}  # fmt: skip
    tsv = tmp_path / "Video-MME.tsv"
    pd.DataFrame([row]).to_csv(tsv, sep="\t", index=False)
    raw = {
        "datasets": [{"tsv": str(tsv), "benchmark": "Video-MME_8frame"}],
        "models": [{"name": "api-like", "kind": "random"}],
        "protocol": "vlmevalkit",
        "work_dir": str(tmp_path / "work"),
        "output_dir": str(tmp_path / "out"),
    }
    (cell,) = cells_of(parse_config(raw))
    ws = Workspace(tmp_path / "work", tmp_path / "out")
    extract_dataset_frames(cell.dataset, cell.frames, ws)
    index = read_frame_index(cell.frame_index_path(ws), FrameCache(ws.frame_cache_dir))
    ours = index.frames_for("0").jpeg_bytes()
    theirs = vlmevalkit_videomme_frames(video, 8)
    assert len(ours) == len(theirs) == 8
    assert [a == b for a, b in zip(ours, theirs, strict=True)] == [True] * 8
