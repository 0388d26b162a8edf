"""extract_videos end to end: right frames from both backends, bad inputs, timeouts, crashes."""

import os
import random
import time
from pathlib import Path

import pytest

from evalcore.frames import (
    FrameCache,
    FrameEntry,
    FrameFailure,
    FrameSettings,
    VideoJob,
    extract_videos,
    fingerprint,
)
from evalcore.frames.decoders import DecordSource, FrameError, PyAVSource
from evalcore.frames.extract import extract_one
from evalcore.processes import alive
from tests.doubles.benchmarks.mvbench import (
    webm_codec,
    write_frame_folder,
    write_gif,
    write_webm,
)
from tests.doubles.videos import read_frame_number, write_video

# 15 frames 50 ms apart, then 15 frames 200 ms apart
VFR_TIMES = [i * 0.05 for i in range(15)] + [0.75 + i * 0.2 for i in range(15)]


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    """45 frames (3 s at 15 fps), keyframe every 12 frames, B-frames: seeks must be right."""
    folder = tmp_path_factory.mktemp("videos")
    write_video(folder / "good.mp4", n_frames=45, gop=12)
    write_video(folder / "good2.mp4", n_frames=30, gop=12)
    write_video(folder / "good.ts", n_frames=45, gop=12)
    write_video(folder / "vfr.mp4", n_frames=30, gop=12, frame_times=VFR_TIMES)
    write_video(folder / "hang.mp4", n_frames=20)
    (folder / "empty.mp4").write_bytes(b"")
    (folder / "notes.mp4").write_text("this is a text file, not a video\n")
    data = (folder / "good.mp4").read_bytes()
    (folder / "truncated.mp4").write_bytes(data[: len(data) * 2 // 3])  # index (moov) is lost
    return folder


def _numbers(entry: FrameEntry) -> list[int]:
    return [read_frame_number(frame) for frame in entry.load()]


@pytest.mark.parametrize("backend", ["pyav", "decord"])
def test_backends_return_the_right_frames(videos, tmp_path, backend):
    cache = FrameCache(tmp_path / "cache")
    whole, clip = VideoJob(videos / "good.mp4"), VideoJob(videos / "good.mp4", 1.0, 2.0)
    report = extract_videos([whole, clip], cache, FrameSettings(nframe=8, backend=backend))
    assert (report.hits, report.decoded, report.failed) == (0, 2, 0)
    entry = report.results[whole]
    assert entry.indices == (2, 8, 14, 19, 25, 30, 36, 42)
    assert _numbers(entry) == list(entry.indices)
    assert entry.timestamps == pytest.approx([i / 15 for i in entry.indices], abs=1e-4)
    assert entry.manifest()["backend"] == backend
    # clip [1, 2) s holds frames 15..29
    assert report.results[clip].indices == (15, 17, 19, 21, 23, 25, 27, 29)
    assert _numbers(report.results[clip]) == list(report.results[clip].indices)


@pytest.mark.parametrize("backend", ["pyav", "decord"])
def test_fps_sampling_on_variable_frame_rate_uses_real_times(videos, tmp_path, backend):
    job = VideoJob(videos / "vfr.mp4")
    settings = FrameSettings(fps=2.0, backend=backend, workers=1)
    entry = extract_videos([job], FrameCache(tmp_path / "c"), settings).results[job]
    assert entry.indices == (5, 15, 17, 20, 22, 25, 27)
    assert _numbers(entry) == list(entry.indices)
    assert entry.timestamps == pytest.approx([VFR_TIMES[i] for i in entry.indices], abs=2e-3)


def test_mpegts_is_decoded_sequentially_and_decord_refuses_it(videos, tmp_path):
    job = VideoJob(videos / "good.ts")
    auto = extract_videos([job], FrameCache(tmp_path / "a"), FrameSettings(workers=1))
    assert _numbers(auto.results[job]) == [2, 8, 14, 19, 25, 30, 36, 42]
    decord_only = FrameSettings(backend="decord", workers=1)
    failure = extract_videos([job], FrameCache(tmp_path / "d"), decord_only).results[job]
    assert failure.error_type == "DecodeError"
    assert "good.ts" in failure.message and "no seek index" in failure.message


def test_bad_inputs_fail_alone_with_clear_reasons(videos, tmp_path):
    names = ["missing.mp4", "empty.mp4", "notes.mp4", "truncated.mp4", "good.mp4"]
    jobs = [VideoJob(videos / name) for name in names]
    jobs.append(VideoJob(videos / "good.mp4", 2.0, 1.0))
    jobs.append(VideoJob(videos / "good.mp4", 10.0, 20.0))
    done = []
    report = extract_videos(
        jobs, FrameCache(tmp_path / "cache"), FrameSettings(), lambda *pair: done.append(pair)
    )
    kinds = {
        job.path.name + ("" if job.start is None else f"@{job.start:g}"): (
            result.error_type if isinstance(result, FrameFailure) else "ok"
        )
        for job, result in report.results.items()
    }
    assert kinds == {
        "missing.mp4": "VideoNotFound",
        "empty.mp4": "EmptyVideo",
        "notes.mp4": "DecodeError",
        "truncated.mp4": "DecodeError",
        "good.mp4": "ok",
        "good.mp4@2": "InvalidClip",
        "good.mp4@10": "EmptyClip",
    }
    for job, result in report.failures.items():
        assert job.path.name in result.message
    # a file no decoder can read names both decoders' reasons
    notes = report.results[jobs[2]].message
    assert "pyav:" in notes and "decord:" in notes
    assert (report.hits, report.decoded, report.failed) == (0, 1, 6)
    assert sorted(done, key=str) == sorted(report.results.items(), key=str)


def hang_on_hang_mp4(path: Path):
    """A decoder that never returns for hang.mp4 (leaving its pid behind), PyAV otherwise."""
    if path.name == "hang.mp4":
        (path.parent / "hung.pid").write_text(str(os.getpid()))
        while True:  # busy, like decord stuck in a demuxer loop
            pass
    return PyAVSource(path)


def crash_on_hang_mp4(path: Path):
    if path.name == "hang.mp4":
        os._exit(3)  # like a segfault in a decoder: the process is gone without a word
    return PyAVSource(path)


def test_a_hung_decode_is_killed_and_the_rest_go_on(videos, tmp_path):
    cache = FrameCache(tmp_path / "cache")
    jobs = [VideoJob(videos / n) for n in ("hang.mp4", "good.mp4", "good2.mp4")]
    settings = FrameSettings(nframe=4, timeout_s=1.0, workers=1)  # one worker: it must be freed
    started = time.perf_counter()
    report = extract_videos(jobs, cache, settings, decoders=[hang_on_hang_mp4])
    assert time.perf_counter() - started < 20
    hung = report.results[jobs[0]]
    assert hung.error_type == "DecodeTimeout"
    assert "hang.mp4" in hung.message and "killed" in hung.message
    assert [isinstance(report.results[j], FrameEntry) for j in jobs[1:]] == [True, True]
    pid = int((videos / "hung.pid").read_text())
    deadline = time.time() + 5
    while alive(pid) and time.time() < deadline:  # killed, maybe not reaped: dead
        time.sleep(0.05)
    assert not alive(pid), f"worker {pid} still running"


def test_a_crashed_worker_is_a_failure_not_an_exception(videos, tmp_path):
    jobs = [VideoJob(videos / "hang.mp4"), VideoJob(videos / "good.mp4")]
    settings = FrameSettings(nframe=4, workers=2)
    cache = FrameCache(tmp_path / "c")
    report = extract_videos(jobs, cache, settings, decoders=[crash_on_hang_mp4])
    assert report.results[jobs[0]].error_type == "WorkerCrashed"
    assert isinstance(report.results[jobs[1]], FrameEntry)


def unreadable(path: Path):
    raise FrameError(f"{path.name}: this decoder reads nothing")


def test_the_next_decoder_takes_over_when_one_cannot_read(videos, tmp_path):
    job = VideoJob(videos / "good.mp4")
    settings = FrameSettings(nframe=4, workers=1)
    chain = [unreadable, DecordSource]
    entry = extract_videos([job], FrameCache(tmp_path / "c"), settings, decoders=chain)
    entry = entry.results[job]
    assert entry.manifest()["backend"] == "decord"
    assert _numbers(entry) == list(entry.indices)


def test_each_distinct_video_is_decoded_once(videos, tmp_path):
    copy = tmp_path / "same-content.mp4"
    copy.write_bytes((videos / "good.mp4").read_bytes())
    a, b = VideoJob(videos / "good.mp4"), VideoJob(copy)
    done = []
    same_as_a = VideoJob(str(a.path))  # a str path is the same job
    report = extract_videos(
        [a, a, b, same_as_a],
        FrameCache(tmp_path / "cache"),
        FrameSettings(),
        lambda *p: done.append(p),
    )
    assert list(report.results) == [a, b]
    assert report.results[a] == report.results[b]  # one entry serves both paths
    assert len([p for p in (tmp_path / "cache").glob("*/*") if p.is_dir()]) == 1
    assert (report.hits, report.decoded, report.failed) == (0, 2, 0)
    assert sorted(job.path.name for job, _ in done) == ["good.mp4", "same-content.mp4"]


EXTRACT_AT_GO = """
import json, sys, time
from pathlib import Path
from evalcore.frames import FrameCache, FrameEntry, FrameSettings, VideoJob, extract_videos

if __name__ == "__main__":
    videos, cache, go, out = map(Path, sys.argv[1:5])
    jobs = [VideoJob(path) for path in sorted(videos.glob("*.mp4"))]
    settings = FrameSettings(nframe=120, max_side=None, workers=2)
    print("ready", flush=True)  # imports done: both start from the same line
    while not go.exists():
        time.sleep(0.002)
    started = time.time()
    report = extract_videos(jobs, FrameCache(cache), settings)
    span = [started, time.time()]
    entries = {
        job.path.name: [entry.key, str(entry.dir), [str(p) for p in entry.paths]]
        for job, entry in report.results.items()
        if isinstance(entry, FrameEntry)
    }
    result = {"decoded": report.decoded, "hits": report.hits, "failed": report.failed}
    result["span"] = span
    out.write_text(json.dumps({**result, "entries": entries}))
"""


@pytest.fixture(scope="module")
def slow_videos(tmp_path_factory) -> Path:
    """6 distinct videos whose 120 frames are each decoded and stored as full-size JPEGs (about
    0.2 s per video here): long enough for two processes to race on every one."""
    folder = tmp_path_factory.mktemp("slow")
    for i in range(6):
        write_video(
            folder / f"v{i}.mp4",
            n_frames=120 + i,
            width=640,
            height=360,
            textured=True,
            preset="ultrafast",
        )
    return folder


def test_two_processes_extracting_the_same_videos_decode_each_once(slow_videos, tmp_path):
    import json
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[3]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    cache, go = tmp_path / "cache", tmp_path / "go"
    outs = [tmp_path / "a.json", tmp_path / "b.json"]
    children = [
        subprocess.Popen(
            [sys.executable, "-c", EXTRACT_AT_GO, str(slow_videos), str(cache), str(go), str(o)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=repo,
            env=env,
        )
        for o in outs
    ]
    try:
        assert [c.stdout.readline().strip() for c in children] == ["ready", "ready"]
        go.touch()
        assert [c.wait(timeout=120) for c in children] == [0, 0]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
            child.stdout.close()
    a, b = (json.loads(o.read_text()) for o in outs)
    assert (a["failed"], b["failed"]) == (0, 0)
    assert a["decoded"] + b["decoded"] == 6  # each clip decoded once, by one of the two
    assert a["hits"] + b["hits"] == 6  # the other one found it made: a hit, not a decode
    # both ran at the same time, from an empty cache (without the per-key lock each of
    # them decodes all 6: measured 6 + 6 here)
    assert max(a["span"][0], b["span"][0]) < min(a["span"][1], b["span"][1])
    assert a["entries"] == b["entries"] and len(a["entries"]) == 6
    assert len([p for p in cache.glob("??/*") if p.is_dir()]) == 6
    for name, (key, _, _) in a["entries"].items():
        entry = FrameCache(cache).open(key)
        assert entry is not None and entry.manifest()["source"].endswith(name)
        assert _numbers(entry)[:3] == [0, 1, 2]


def test_a_decode_killed_on_timeout_leaves_no_lock_behind(videos, tmp_path):
    cache = FrameCache(tmp_path / "cache")
    job = VideoJob(videos / "hang.mp4")
    settings = FrameSettings(nframe=4, timeout_s=2.0, workers=1)
    hung = extract_videos([job], cache, settings, decoders=[hang_on_hang_mp4])
    assert hung.results[job].error_type == "DecodeTimeout"
    assert len(list((cache.root / ".locks").glob("*.lock"))) == 1  # the killed worker held it
    started = time.perf_counter()
    report = extract_videos([job], cache, settings)  # a stale lock would time this out too
    assert (report.decoded, report.failed) == (1, 0)
    assert time.perf_counter() - started < 2.0


# --- GIF, WebM and folders of frames (MVBench ships all three) ------------------------


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("media")
    write_gif(folder / "g.gif", n_frames=20)  # 100 ms per frame: 10 fps, 2 s
    write_frame_folder(folder / "frames", n_frames=12)  # 00001.jpg..00012.jpg: 4 s at 3 fps
    write_frame_folder(folder / "pngs", n_frames=6, suffix=".png")
    (folder / "pngs" / "notes.txt").write_text("not a frame")  # other files are ignored
    (folder / "pngs" / "._00001.png").write_bytes(b"macOS metadata, not an image")
    (folder / "empty").mkdir()
    (folder / "texts").mkdir()
    (folder / "texts" / "readme.txt").write_text("no frames here")
    write_frame_folder(folder / "broken", n_frames=4)
    (folder / "broken" / "00003.jpg").write_bytes(b"not a JPEG")
    return folder


def test_a_gif_is_decoded_by_pyav_with_its_frame_times(media, tmp_path):
    job, clip = VideoJob(media / "g.gif"), VideoJob(media / "g.gif", 0.5, 1.5)
    report = extract_videos([job, clip], FrameCache(tmp_path / "c"), FrameSettings(nframe=4))
    entry = report.results[job]
    # midpoints of 20 frames in 4 segments: floor((2i + 1) * 20 / 8)
    assert entry.indices == (2, 7, 12, 17)
    assert _numbers(entry) == [2, 7, 12, 17]
    assert entry.timestamps == pytest.approx([0.2, 0.7, 1.2, 1.7], abs=1e-6)
    assert entry.manifest()["backend"] == "pyav"
    # [0.5, 1.5) s = frames 5..14: 5 + floor((2i + 1) * 10 / 8)
    assert _numbers(report.results[clip]) == [6, 8, 11, 13]


def test_a_webm_is_decoded_by_pyav(tmp_path):
    if webm_codec() is None:
        pytest.skip("this PyAV build has no VP8/VP9 encoder to make a WebM with")
    video = write_webm(tmp_path / "w.webm", n_frames=30)  # 15 fps, keyframe every 10
    job = VideoJob(video)
    settings = FrameSettings(nframe=4, workers=1)
    entry = extract_videos([job], FrameCache(tmp_path / "c"), settings).results[job]
    # floor((2i + 1) * 30 / 8)
    assert entry.indices == (3, 11, 18, 26)
    assert _numbers(entry) == [3, 11, 18, 26]
    assert entry.timestamps == pytest.approx([i / 15 for i in (3, 11, 18, 26)], abs=1e-3)


@pytest.mark.parametrize("backend", ["auto", "pyav", "decord"])
def test_a_folder_of_frames_is_read_file_by_file_at_3_fps(media, tmp_path, backend):
    folder = media / "frames"
    whole, clip = VideoJob(folder), VideoJob(folder, 1.0, 3.0)
    settings = FrameSettings(nframe=4, backend=backend, workers=1)
    report = extract_videos([whole, clip], FrameCache(tmp_path / "c"), settings)
    assert report.failed == 0
    entry = report.results[whole]
    # 12 frames: floor((2i + 1) * 12 / 8) = 1, 4, 7, 10 -> files 00002, 00005, 00008, 00011
    assert entry.indices == (1, 4, 7, 10)
    assert _numbers(entry) == [1, 4, 7, 10]
    assert entry.timestamps == pytest.approx([1 / 3, 4 / 3, 7 / 3, 10 / 3], abs=1e-6)
    manifest = entry.manifest()
    assert (manifest["backend"], manifest["video_frames"], manifest["fps"]) == ("folder", 12, 3.0)
    # [1, 3) s at 3 fps = frames 3..8: 3 + floor((2i + 1) * 6 / 8) = 3, 5, 6, 8
    assert _numbers(report.results[clip]) == [3, 5, 6, 8]


def test_a_folder_with_vlmevalkit_sampling(media, tmp_path):
    folder = media / "frames"
    jobs = [VideoJob(folder), VideoJob(media / "g.gif")]
    nframe = FrameSettings(nframe=3, sampler="vlmevalkit", workers=1)
    report = extract_videos(jobs, FrameCache(tmp_path / "c"), nframe)
    assert _numbers(report.results[jobs[0]]) == [3, 6, 9]  # step 12 / 4 = 3.0
    assert _numbers(report.results[jobs[1]]) == [5, 10, 15]  # step 20 / 4 = 5.0
    rate = FrameSettings(fps=1.0, sampler="vlmevalkit", workers=1)
    entry = extract_videos(jobs[:1], FrameCache(tmp_path / "r"), rate).results[jobs[0]]
    # 12 frames at 3 fps = 4 s -> 4 frames, step 3 / 1 = 3
    assert _numbers(entry) == [0, 3, 6, 9]


def test_png_frames_count_other_files_do_not(media, tmp_path):
    job = VideoJob(media / "pngs")
    entry = extract_videos([job], FrameCache(tmp_path / "c"), FrameSettings(nframe=6)).results[job]
    assert entry.manifest()["video_frames"] == 6
    assert _numbers(entry) == [0, 1, 2, 3, 4, 5]


def test_folders_without_readable_frames_fail_with_a_reason(media, tmp_path):
    names = ["empty", "texts", "broken", "missing-folder"]
    jobs = [VideoJob(media / name) for name in names]
    report = extract_videos(jobs, FrameCache(tmp_path / "c"), FrameSettings(nframe=4))
    kinds = {job.path.name: report.results[job].error_type for job in jobs}
    assert kinds == {
        "empty": "EmptyVideo",
        "texts": "EmptyVideo",
        "broken": "DecodeError",
        "missing-folder": "VideoNotFound",
    }
    assert "without frame images" in report.results[jobs[1]].message
    assert "00003.jpg" in report.results[jobs[2]].message  # names the bad frame
    assert (report.hits, report.decoded, report.failed) == (0, 0, 4)


@pytest.mark.parametrize("name", ["garbage.mp4", "truncated.mp4"])
def test_what_a_decoder_prints_goes_into_the_failure_not_onto_stderr(videos, tmp_path, capfd, name):
    """decord prints its C++ errors to fd 2; they belong in the video's failure."""
    path = videos / name
    if name == "garbage.mp4":
        path = tmp_path / name
        path.write_bytes(random.Random(3).randbytes(20000))
    job = VideoJob(path)
    settings = FrameSettings(nframe=4, workers=1, backend="decord")
    failure = extract_videos([job], FrameCache(tmp_path / "c"), settings).results[job]
    assert failure.error_type == "DecodeError"
    assert "decord printed:" in failure.message and "ERROR opening" in failure.message

    # the worker's function itself, in this process, where capfd watches fd 2
    cache = FrameCache(tmp_path / "here")
    key = cache.key_for(job, settings)
    result, _ = extract_one(job, key, fingerprint(path), cache, settings, [DecordSource])
    assert "ERROR opening" in result.message
    assert "ERROR opening" not in capfd.readouterr().err
