"""The frame cache: keys, layout, manifest, fingerprint memo, atomic writes under a race."""

import hashlib
import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from evalcore.frames import (
    FrameCache,
    FrameEntry,
    FrameSettings,
    VideoJob,
    extract_videos,
    fingerprint,
)
from evalcore.frames import cache as cache_module
from evalcore.frames.decoders import PyAVSource
from evalcore.models import Frames
from tests.doubles.benchmarks.mvbench import write_frame_folder
from tests.doubles.videos import read_frame_number, write_video

FAST = FrameSettings(nframe=4, workers=1, timeout_s=30)


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("videos")
    for name, n_frames in (("clip.mp4", 30), ("other.mp4", 45)):
        write_video(folder / name, n_frames=n_frames, gop=10)
        _age(folder / name)  # like a dataset on disk: old enough for the fingerprint memo
    return folder


def _age(path: Path) -> Path:
    old = time.time() - 3600
    os.utime(path, (old, old))
    return path


def _aged_copy(source: Path, target: Path) -> Path:
    """A copy whose mtime is old enough for the fingerprint memo to trust it."""
    shutil.copyfile(source, target)
    return _age(target)


def test_key_depends_on_what_changes_pixels_only(videos, tmp_path):
    cache = FrameCache(tmp_path / "cache")
    job = VideoJob(videos / "clip.mp4")
    base = cache.key_for(job, FrameSettings())
    assert base == cache.key_for(job, FrameSettings())
    # how fast frames are made does not change which frames: same key
    for same in ({"backend": "decord"}, {"timeout_s": 5}, {"workers": 1}, {"max_frames": 9}):
        assert cache.key_for(job, FrameSettings(**same)) == base, same
    # what is sampled, its size and its encoding do
    for other in ({"nframe": 16}, {"max_side": None}, {"jpeg_quality": 80}, {"fps": 1.0}):
        assert cache.key_for(job, FrameSettings(**other)) != base, other
    clip = cache.key_for(VideoJob(job.path, 0.0, 1.0), FrameSettings())
    assert clip != base
    assert cache.key_for(VideoJob(str(job.path), 0, 1), FrameSettings()) == clip
    assert cache.key_for(VideoJob(videos / "other.mp4"), FrameSettings()) != base
    # the key is about content, not the path: a copy shares it
    copy = _aged_copy(videos / "clip.mp4", tmp_path / "copy.mp4")
    assert cache.key_for(VideoJob(copy), FrameSettings()) == base


def test_fingerprint_is_memoized_by_file_identity(videos, tmp_path, monkeypatch):
    memo = tmp_path / "memo.sqlite"
    video = _aged_copy(videos / "clip.mp4", tmp_path / "v.mp4")
    first = fingerprint(video, memo=memo)
    assert first == fingerprint(video)  # same hash with or without the memo

    def no_reading(path):
        raise AssertionError("the memo should have answered without reading the file")

    monkeypatch.setattr(cache_module, "_hash_file", no_reading)
    assert fingerprint(video, memo=memo) == first
    monkeypatch.undo()

    # new content: size/mtime change, the memo entry no longer applies
    _aged_copy(videos / "other.mp4", video)
    assert fingerprint(video, memo=memo) != first


def test_layout_and_manifest(videos, tmp_path):
    cache = FrameCache(tmp_path / "cache")
    job = VideoJob(videos / "clip.mp4")
    report = extract_videos([job], cache, FAST)
    entry = report.results[job]
    assert isinstance(entry, FrameEntry)
    assert entry.dir == tmp_path / "cache" / entry.key[:2] / entry.key
    assert entry.key == cache.key_for(job, FAST)
    names = sorted(p.name for p in entry.dir.iterdir())
    assert names == ["00000.jpg", "00001.jpg", "00002.jpg", "00003.jpg", "manifest.json"]
    manifest = json.loads((entry.dir / "manifest.json").read_text())
    assert manifest["key"] == entry.key
    assert manifest["source"] == str(job.path)
    assert manifest["fingerprint"] == fingerprint(job.path)
    assert manifest["indices"] == [3, 11, 18, 26] == list(entry.indices)
    assert manifest["timestamps"] == pytest.approx([i / 15 for i in entry.indices], abs=1e-5)
    assert manifest["n_frames"] == 4
    assert manifest["video_frames"] == 30
    assert manifest["fps"] == pytest.approx(15.0)
    assert manifest["size"] == [160, 120] and manifest["source_size"] == [160, 120]
    assert manifest["backend"] == "pyav"
    assert manifest["settings"]["nframe"] == 4
    assert entry.manifest() == manifest
    assert isinstance(entry, Frames)  # what models receive


def test_entry_loads_frames_and_jpeg_bytes(videos, tmp_path):
    cache = FrameCache(tmp_path / "cache")
    job = VideoJob(videos / "other.mp4")
    entry = extract_videos([job], cache, FAST).results[job]
    frames = entry.load()
    assert frames.shape == (4, 120, 160, 3) and frames.dtype == np.uint8
    assert [read_frame_number(f) for f in frames] == list(entry.indices)
    blobs = entry.jpeg_bytes()
    assert [b[:2] for b in blobs] == [b"\xff\xd8"] * 4
    assert blobs == [p.read_bytes() for p in entry.paths]


@pytest.mark.parametrize(
    ("max_side", "size"), [(80, (80, 60)), (448, (160, 120)), (None, (160, 120))]
)
def test_resize_keeps_aspect_and_never_upscales(videos, tmp_path, max_side, size):
    cache = FrameCache(tmp_path / "cache")
    job = VideoJob(videos / "clip.mp4")
    settings = FrameSettings(nframe=2, max_side=max_side, workers=1)
    entry = extract_videos([job], cache, settings).results[job]
    frames = entry.load()
    assert frames.shape[1:3] == (size[1], size[0])
    assert [read_frame_number(f) for f in frames] == list(entry.indices)


def test_a_hit_opens_no_decoder_and_starts_no_process(videos, tmp_path, monkeypatch):
    cache = FrameCache(tmp_path / "cache")
    job = VideoJob(videos / "clip.mp4")
    first = extract_videos([job], cache, FAST)
    assert (first.hits, first.decoded) == (0, 1)
    monkeypatch.setattr("pebble.ProcessPool", _no_process_allowed)  # imported when used
    again = extract_videos([job], cache, FAST, decoders=[_no_decoder_allowed])
    assert (again.hits, again.decoded, again.failed) == (1, 0, 0)
    assert again.results[job] == first.results[job]
    assert cache.get(job, FAST) == first.results[job]
    assert cache.get(job, FrameSettings(nframe=5)) is None


def _no_decoder_allowed(path):
    raise AssertionError("a cache hit must not open a decoder")


def _no_process_allowed(*args, **kwargs):
    raise AssertionError("a cache hit must not start worker processes")


def test_changed_video_gets_a_new_key_and_is_extracted_again(videos, tmp_path):
    cache = FrameCache(tmp_path / "cache")
    video = _aged_copy(videos / "clip.mp4", tmp_path / "v.mp4")
    job = VideoJob(video)
    before = extract_videos([job], cache, FAST).results[job]
    assert before.indices == (3, 11, 18, 26)
    # same name, new content (45 frames instead of 30)
    _aged_copy(videos / "other.mp4", video)
    report = extract_videos([job], cache, FAST)
    after = report.results[job]
    assert (report.hits, report.decoded) == (0, 1)
    assert after.key != before.key
    assert after.indices == (5, 16, 28, 39)
    assert [read_frame_number(f) for f in after.load()] == [5, 16, 28, 39]


def test_an_entry_without_manifest_does_not_exist_and_is_replaced(videos, tmp_path):
    cache = FrameCache(tmp_path / "cache")
    job = VideoJob(videos / "clip.mp4")
    entry = extract_videos([job], cache, FAST).results[job]
    (entry.dir / "manifest.json").unlink()
    assert cache.open(entry.key) is None
    assert cache.get(job, FAST) is None
    report = extract_videos([job], cache, FAST)
    assert report.decoded == 1
    assert cache.open(entry.key) == report.results[job]


class SlowPyAV(PyAVSource):
    """PyAV that takes a while to open, so two processes surely overlap."""

    name = "slow-pyav"

    def __init__(self, path):
        time.sleep(0.7)
        super().__init__(path)


def _extract_in_another_process(video: str, root: str, barrier, results) -> None:
    barrier.wait()
    job = VideoJob(Path(video))
    report = extract_videos([job], FrameCache(Path(root)), FAST, decoders=[SlowPyAV])
    entry = report.results[job]
    results.put((report.decoded, str(entry.dir), entry.indices))


def test_two_processes_extracting_the_same_video_end_with_one_entry(videos, tmp_path):
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(2), context.Queue()
    root = tmp_path / "cache"
    args = (str(videos / "clip.mp4"), str(root), barrier, results)
    processes = [context.Process(target=_extract_in_another_process, args=args) for _ in "ab"]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=60) for _ in processes]
    for process in processes:
        process.join(timeout=30)
        assert process.exitcode == 0
    # one decoded; the other waited on the entry's lock and found it made (a hit); both
    # got the same, complete entry
    assert sorted(o[0] for o in outcomes) == [0, 1]
    assert outcomes[0][1:] == outcomes[1][1:]
    entry_dirs = [p for p in root.glob("*/*") if p.is_dir()]
    assert [str(p) for p in entry_dirs] == [outcomes[0][1]]
    assert not [p for p in root.iterdir() if p.name.startswith(".tmp-")]
    assert FrameCache(root).open(entry_dirs[0].name) is not None


def test_the_sampler_is_in_the_key_only_when_it_is_not_the_default(videos, tmp_path):
    cache = FrameCache(tmp_path / "cache")
    job = VideoJob(videos / "clip.mp4")
    video = cache.video_fingerprint(job.path)
    # the default sampler leaves the key as it was before samplers existed
    before_samplers = {
        "format": cache_module.FORMAT_VERSION,
        "video": video,
        "clip": [None, None],
        "sampling": {"nframe": 8},
        "max_side": 448,
        "jpeg_quality": 90,
    }
    blob = json.dumps(before_samplers, sort_keys=True).encode()
    old_key = hashlib.blake2b(blob, digest_size=16).hexdigest()
    assert cache.key_for(job, FrameSettings()) == old_key
    assert cache.key_for(job, FrameSettings(sampler="midpoint")) == old_key
    # VLMEvalKit's frames are other frames: another entry, for counts and rates alike
    assert cache.key_for(job, FrameSettings(sampler="vlmevalkit")) != old_key
    rate = FrameSettings(fps=1.0)
    assert cache.key_for(job, rate.model_copy(update={"sampler": "vlmevalkit"})) != (
        cache.key_for(job, rate)
    )


def _aged_tree(folder: Path) -> Path:
    for path in [*folder.iterdir(), folder]:
        _age(path)
    return folder


def test_a_frame_folder_is_fingerprinted_by_its_frames_names_and_bytes(tmp_path):
    folder = _aged_tree(write_frame_folder(tmp_path / "a", n_frames=4))
    first = fingerprint(folder)
    assert len(first) == 32
    copy = _aged_tree(shutil.copytree(folder, tmp_path / "b"))
    assert fingerprint(copy) == first  # content, not place: a copy shares frames
    (copy / "notes.txt").write_text("not a frame")  # other files do not count
    assert fingerprint(copy) == first
    (copy / "00004.jpg").rename(copy / "00005.jpg")  # names count (they give the order)
    assert fingerprint(copy) != first
    shutil.copyfile(folder / "00004.jpg", copy / "00005.jpg")
    (copy / "00005.jpg").rename(copy / "00004.jpg")
    assert fingerprint(copy) == first
    shutil.copyfile(folder / "00001.jpg", copy / "00004.jpg")  # bytes count
    assert fingerprint(copy) != first


def test_a_frame_folder_fingerprint_is_memoized_by_its_files_identity(tmp_path, monkeypatch):
    memo = tmp_path / "memo.sqlite"
    folder = write_frame_folder(tmp_path / "frames", n_frames=4)
    cache = FrameCache(tmp_path / "cache")
    fresh = cache.video_fingerprint(folder)  # just written: hashed, not remembered
    assert cache.known_fingerprints([folder]) == {}
    _aged_tree(folder)
    first = fingerprint(folder, memo=memo)
    assert first == fresh == cache.video_fingerprint(folder)
    assert cache.known_fingerprints([folder]) == {folder: first}

    def no_reading(path):
        raise AssertionError("the memo should have answered without reading the folder")

    monkeypatch.setattr(cache_module, "_hash_folder", no_reading)
    assert fingerprint(folder, memo=memo) == first
    monkeypatch.undo()

    # one frame rewritten (same size, same old mtime): its ctime and the digest change
    frame = folder / "00002.jpg"
    stat = frame.stat()
    frame.write_bytes((folder / "00001.jpg").read_bytes()[: stat.st_size].ljust(stat.st_size))
    os.utime(frame, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert fingerprint(folder, memo=memo) != first


KILLED_WRITER = """
import os, signal, sys, tempfile
from evalcore.frames.cache import temp_prefix
folder = tempfile.mkdtemp(prefix=temp_prefix(sys.argv[2]), dir=sys.argv[1])
with open(os.path.join(folder, "00000.jpg"), "wb") as frame:
    frame.write(b"half a frame")
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_what_a_killed_writer_left_is_swept_at_the_next_extraction(videos, tmp_path):
    cache = FrameCache(tmp_path / "cache")
    label = "0123456789abcdef"
    killed = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(cache.root), label])
    assert killed.returncode == -signal.SIGKILL  # kill -9 while writing an entry
    (litter,) = [p for p in cache.root.iterdir() if p.name.startswith(".tmp-")]
    assert (litter / "00000.jpg").is_file()
    live = Path(tempfile.mkdtemp(prefix=cache_module.temp_prefix(label), dir=cache.root))
    elsewhere = cache.root / f".tmp-1@00000000-{label}-x"  # a writer on another machine
    unowned = cache.root / f".tmp-{label}-y"  # a name without its owner: age alone counts
    unowned_old = cache.root / f".tmp-{label}-z"
    for folder in (elsewhere, unowned, unowned_old):
        folder.mkdir()
    two_days_ago = time.time() - 2 * 86400
    os.utime(unowned_old, (two_days_ago, two_days_ago))

    job = VideoJob(videos / "clip.mp4")
    assert isinstance(extract_videos([job], cache, FAST).results[job], FrameEntry)
    left = {p.name for p in cache.root.iterdir() if p.name.startswith(".tmp-")}
    assert left == {live.name, elsewhere.name, unowned.name}
