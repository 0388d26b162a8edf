"""Frames stored as lossless PNG (`FramePlan.storage="png"`): the decoded pixels
exactly, in keys only when chosen (every other key as before), uploaded as JPEGs at the
plan's quality, checked and healed like JPEG entries."""

from __future__ import annotations

import json
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from evalcore.frames import (
    FrameCache,
    FrameEntry,
    FramePlan,
    FrameSettings,
    VideoJob,
    extract_videos,
    verify_frame_cache,
)
from evalcore.frames.cache import encode_jpeg, fit_within
from evalcore.frames.decoders import PyAVSource
from tests.doubles.videos import read_frame_number, write_video

PNG = FrameSettings(nframe=4, storage="png", max_side=None, backend="pyav", workers=1)


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("v") / "v.mp4"
    return write_video(path, n_frames=45, width=320, height=180, gop=10, textured=True)


def source_frames(video: Path, indices) -> dict[int, Image.Image]:
    with PyAVSource(video) as source:
        return {index: image for index, _, image in source.read(sorted(set(indices)))}


def extract(video: Path, cache_dir: Path, settings: FrameSettings, *jobs: VideoJob) -> FrameEntry:
    job = jobs[0] if jobs else VideoJob(video)
    entry = extract_videos([job], FrameCache(cache_dir), settings).results[job]
    assert isinstance(entry, FrameEntry), entry
    return entry


def test_png_frames_are_the_decoded_pixels_exactly(video, tmp_path):
    entry = extract(video, tmp_path / "c", PNG)
    assert [p.name for p in entry.paths] == [f"0000{i}.png" for i in range(4)]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in entry.paths)
    decoded = source_frames(video, entry.indices)
    frames = entry.load()
    assert frames.shape == (4, 180, 320, 3) and frames.dtype == np.uint8
    for frame, index in zip(frames, entry.indices, strict=True):
        assert np.array_equal(frame, np.asarray(decoded[index].convert("RGB")))
    assert entry.manifest()["settings"]["storage"] == "png"


def test_png_frames_at_the_plans_size_are_the_resized_pixels_exactly(video, tmp_path):
    settings = PNG.model_copy(update={"max_side": 100})
    clip = VideoJob(video, 1.0, 2.0)
    entry = extract(video, tmp_path / "c", settings, clip)
    decoded = source_frames(video, entry.indices)
    for frame, index in zip(entry.load(), entry.indices, strict=True):
        assert frame.shape == (56, 100, 3)
        assert np.array_equal(frame, np.asarray(fit_within(decoded[index], 100).convert("RGB")))
        assert read_frame_number(frame) == index


def test_a_png_entry_uploads_jpegs_at_the_plans_quality(video, tmp_path):
    entry = extract(video, tmp_path / "c", PNG.model_copy(update={"jpeg_quality": 75}))
    jpegs = entry.jpeg_bytes()
    assert [b[:2] for b in jpegs] == [b"\xff\xd8"] * 4
    frames = entry.load()
    assert jpegs == [encode_jpeg(Image.fromarray(f), None, 75)[0] for f in frames]
    with Image.open(BytesIO(jpegs[0])) as image:
        assert image.size == (320, 180)
    other = extract(video, tmp_path / "c", PNG)  # quality 90: another key, other uploads
    assert other.key != entry.key and other.jpeg_bytes() != jpegs
    assert np.array_equal(other.load(), frames)  # the same pixels


def test_storage_is_in_a_key_only_when_png(video, tmp_path):
    job = VideoJob(video, 1.0, None)
    for sampler in ("midpoint", "vlmevalkit", "qwen_vl", "lmms_eval_qwen", "llava_ov", "mvbench"):
        jpeg, png = FramePlan(sampler=sampler), FramePlan(sampler=sampler, storage="png")
        spec = jpeg.entry_spec("f" * 32, job)
        assert "storage" not in spec and "storage" not in jpeg.identity
        assert ("sampler" in spec["sampling"]) == (sampler != "midpoint")
        assert png.entry_spec("f" * 32, job) == {**spec, "storage": "png"}
        assert png.entry_key("f" * 32, job) != jpeg.entry_key("f" * 32, job)
        assert png.identity == {**jpeg.identity, "storage": "png"}
    # the spec of the default plan, field for field, as before png storage
    assert FramePlan().entry_spec("f" * 32, VideoJob(video)) == {
        "format": 1,
        "video": "f" * 32,
        "clip": [None, None],
        "sampling": {"nframe": 8},
        "max_side": 448,
        "jpeg_quality": 90,
    }


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_a_damaged_png_entry_is_extracted_again_when_read(video, tmp_path):
    cache = FrameCache(tmp_path / "c")
    model_job, api_job = VideoJob(video), VideoJob(video, 0.5, 2.5)
    report = extract_videos([model_job, api_job], cache, PNG)
    model_entry, api_entry = report.results[model_job], report.results[api_job]
    frames, jpegs = model_entry.load(), api_entry.jpeg_bytes()

    truncate(model_entry.paths[1])
    assert model_entry.damage() is not None
    assert np.array_equal(model_entry.load(), frames)  # made again, the same pixels
    api_entry.paths[2].write_bytes(api_entry.paths[0].read_bytes())  # sound PNG, wrong
    assert api_entry.jpeg_bytes() == jpegs
    assert not verify_frame_cache(cache).damaged


def test_a_png_entry_without_checksums_is_checked_by_decoding(video, tmp_path):
    cache = FrameCache(tmp_path / "c")
    entry = extract(video, tmp_path / "c", PNG)
    manifest = json.loads((entry.dir / "manifest.json").read_text())
    del manifest["sha256"]
    (entry.dir / "manifest.json").write_text(json.dumps(manifest, indent=1))
    frames = entry.load()

    truncate(entry.paths[3])
    check = verify_frame_cache(cache)
    assert list(check.damaged) == [entry.key] and check.by_decoding == 1
    assert "00003.png" in check.damaged[entry.key]
    assert np.array_equal(entry.load(), frames)  # decoding found it; extracted again
    assert len(entry.manifest()["sha256"]) == 4
