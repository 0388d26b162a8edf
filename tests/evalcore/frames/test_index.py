"""The frame index as a journal: read while extraction writes it, per sample, and never
waited on for ever when its writer is gone."""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from doubles.frames import HeldClip

from evalcore.benchmarks import load_samples
from evalcore.cell import extract_dataset_frames
from evalcore.config import DatasetSpec
from evalcore.frames import FrameCache, FrameEntry, FrameFailure, FrameSettings, VideoJob
from evalcore.frames.cache import temp_prefix
from evalcore.frames.index import (
    FrameIndexWriter,
    index_frame_keys,
    index_run,
    prepare_frames,
    read_frame_index,
    read_index_videos,
)
from evalcore.predictions import FailureKind
from evalcore.workspace import Workspace


def wait_until(condition, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_samples_arrive_as_their_clips_finish_and_a_slow_clip_holds_back_only_its_own(
    small_bench, tmp_path
):
    dataset, settings = DatasetSpec(tsv=small_bench), FrameSettings()
    ws = Workspace(tmp_path / "work", tmp_path / "out")
    samples = load_samples(dataset)
    slow_video = samples[-1].video_path
    slow = {s.sample_id for s in samples if s.video_path == slow_video}
    held = HeldClip(ws.frame_cache_dir, VideoJob(slow_video), settings).release_after(60)
    extraction = threading.Thread(
        target=extract_dataset_frames, args=(dataset, settings, ws), kwargs={"run": "run-1"}
    )
    extraction.start()
    path = settings.index_path(dataset, ws)
    wait_until(lambda: index_run(path) == "run-1")

    index = read_frame_index(path, FrameCache(ws.frame_cache_dir))
    assert set(index.videos) == {s.sample_id for s in samples}  # every answer key at once
    assert read_index_videos(path) == index.videos
    arrivals = index.arrivals(s.sample_id for s in samples)
    got: list[str] = []
    while len(got) < len(samples) - len(slow):
        got += next(arrivals)
    assert not set(got) & slow and extraction.is_alive()  # the slow clip is still held
    assert index_frame_keys(path) is None  # being written: gc keeps every frame
    held.release()
    rest = [i for group in arrivals for i in group]
    assert set(rest) == slow
    assert all(isinstance(index.frames_for(s.sample_id), FrameEntry) for s in samples)
    extraction.join(timeout=60)
    assert len(index_frame_keys(path)) == 12  # complete: every clip's entry


WRITER = """
import sys, time
from evalcore.frames import FrameFailure
from evalcore.frames.index import FrameIndexWriter

writer = FrameIndexWriter(sys.argv[1], {"a": "x", "b": "y", "c": "z"}, run="doomed")
writer.add(["a"], FrameFailure("DecodeError", "a: cannot read frames"))
print("ready", flush=True)
time.sleep(600)
"""


def test_a_dead_writer_stops_the_wait_with_a_retryable_failure(tmp_path):
    path = tmp_path / "index.jsonl"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert writer.stdout.readline().strip() == "ready"
        index = read_frame_index(path, FrameCache(tmp_path / "frames"))
        waits = []

        def on_wait() -> None:  # a live writer: the reader waits; then kill -9 it
            waits.append(time.monotonic())
            if len(waits) == 3:
                writer.kill()

        arrivals = index.arrivals(["a", "b", "c"], on_wait)
        assert next(arrivals) == ["a"]
        assert index.frames_for("a").error_type == "DecodeError"
        assert next(arrivals) == ["b", "c"]
        assert time.monotonic() - waits[2] < 5  # noticed at once, not waited on for ever
        assert len(waits) >= 3
    finally:
        writer.kill()
        writer.wait()
    failure = index.frames_for("b")
    assert failure.error_type == FailureKind.ExtractionStopped
    assert "process ended" in failure.message
    assert index_frame_keys(path) == set()  # a dead writer's index: what it listed


def test_an_aborted_or_finished_index_ends_the_wait(tmp_path):
    cache = FrameCache(tmp_path / "frames")
    path = tmp_path / "index.jsonl"
    with pytest.raises(OSError), FrameIndexWriter(path, {"a": "x", "b": "y"}) as writer:
        writer.add(["a"], FrameFailure("EmptyVideo", "a: empty"))
        raise OSError("disk full")
    index = read_frame_index(path, cache)
    assert [i for group in index.arrivals(["a", "b"]) for i in group] == ["a", "b"]
    assert index.frames_for("b").error_type == FailureKind.ExtractionStopped
    assert "OSError: disk full" in index.frames_for("b").message

    with FrameIndexWriter(path, {"a": "x", "b": "y"}) as writer:  # replaces the journal
        writer.add(["a"], FrameFailure("EmptyVideo", "a: empty"))
    index.refresh()
    assert index.ended["end"] == "aborted"  # a reader keeps the journal it opened
    index = read_frame_index(path, cache)
    assert list(index.arrivals(["b"])) == [["b"]]
    assert index.frames_for("b").error_type == "FramesMissing"  # complete, without b


KILLED_INDEX_WRITER = """
import os, signal, sys, tempfile
from evalcore.frames.cache import temp_prefix
tempfile.mkstemp(dir=sys.argv[1], prefix=sys.argv[2] + temp_prefix())
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_killed_writers_temporary_journal_is_swept_at_the_next_extraction(tmp_path):
    index_dir = tmp_path / "frame-index"
    index_dir.mkdir()
    path = index_dir / "Tiny-abc.jsonl"
    killed = subprocess.run([sys.executable, "-c", KILLED_INDEX_WRITER, str(index_dir), path.name])
    assert killed.returncode == -signal.SIGKILL  # kill -9 before its journal was in place
    (litter,) = index_dir.glob("*.tmp-*")
    _, live = tempfile.mkstemp(dir=index_dir, prefix=path.name + temp_prefix())  # this process

    prepare_frames([], FrameSettings(), FrameCache(tmp_path / "frames"), path)
    assert {p.name for p in index_dir.iterdir()} == {path.name, Path(live).name}
    assert read_index_videos(path) == {}
