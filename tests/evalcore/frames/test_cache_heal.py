"""The frame cache heals itself: a damaged entry (a truncated or changed JPEG) is
extracted again when a model or the API path reads it, in the same run; one that cannot
be is a typed sample failure retried by the next run; `evalcore cache verify` finds
damaged entries and `--repair` removes them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from evalcore.benchmarks import load_samples
from evalcore.cell import Cell, extract_dataset_frames
from evalcore.config import DatasetSpec, ModelSpec
from evalcore.frames import (
    CorruptFramesError,
    FrameCache,
    FrameError,
    FrameSettings,
    VideoJob,
    extract_videos,
    verify_frame_cache,
)
from evalcore.frames import decoders as decoders_module
from evalcore.inference import infer_inline
from evalcore.predictions import PredictionRecord, read_records
from evalcore.workspace import Workspace
from tests.doubles.records import cell_records
from tests.doubles.videos import write_video

FAST = FrameSettings(nframe=4, workers=1)
REFERENCE = ModelSpec(name="reference", kind="reference", batch_size=4)


@pytest.fixture(scope="module")
def pristine(small_bench, tmp_path_factory) -> Path:
    """A work dir whose frame cache and frame index cover `small_bench`."""
    work = tmp_path_factory.mktemp("pristine")
    dataset = DatasetSpec(tsv=small_bench)
    assert extract_dataset_frames(dataset, FrameSettings(), Workspace(work, work)).failed == 0
    return work


@pytest.fixture
def ws(pristine, tmp_path) -> Workspace:
    """A copy of `pristine`, this test's to damage."""
    work = tmp_path / "work"
    shutil.copytree(pristine, work)
    return Workspace(work, tmp_path / "out")


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("videos")
    for name, n_frames in (("a.mp4", 30), ("b.mp4", 45)):
        write_video(folder / name, n_frames=n_frames, gop=10)
    return folder


def truncate(path: Path) -> None:
    """Cut a file to half its size, as a full disk or a killed copy leaves it."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def truncate_first_frames(ws: Workspace, n: int) -> list[str]:
    """Truncate the first JPEG of `n` entries; returns their keys."""
    cache = FrameCache(ws.frame_cache_dir)
    keys = sorted(cache.keys())[:n]
    for key in keys:
        truncate(cache.entry_dir(key) / "00000.jpg")
    return keys


def drop_checksums(entry_dir: Path) -> None:
    """Make an entry look as if written before manifests kept checksums."""
    manifest = json.loads((entry_dir / "manifest.json").read_text())
    del manifest["sha256"]
    (entry_dir / "manifest.json").write_text(json.dumps(manifest, indent=1))


def reference_cell(dataset: DatasetSpec, trial: int = 0) -> Cell:
    return Cell(REFERENCE, dataset, trial=trial, seed=0, frames=FrameSettings())


def run(cell: Cell, ws: Workspace) -> dict[str, PredictionRecord]:
    """What a run does for one cell: extraction (the index written anew; hits here),
    then inference. Returns the record of each sample."""
    extract_dataset_frames(cell.dataset, cell.frames, ws)
    infer_inline(cell, ws)
    return {r.sample_id: r for r in read_records(cell.log_dir(ws))}


def accuracy(records: dict[str, PredictionRecord], dataset: DatasetSpec) -> float:
    answers = {s.sample_id: s.answer for s in load_samples(dataset)}
    return sum(r.ok and r.prediction == answers[i] for i, r in records.items()) / len(answers)


def test_a_run_over_truncated_frames_extracts_them_again_and_answers_every_sample(ws, small_bench):
    dataset = DatasetSpec(tsv=small_bench)
    clean = run(reference_cell(dataset, trial=0), ws)
    assert all(r.ok for r in clean.values())

    damaged = truncate_first_frames(ws, 3)
    assert sorted(verify_frame_cache(FrameCache(ws.frame_cache_dir)).damaged) == damaged

    again = run(reference_cell(dataset, trial=1), ws)  # the next run: one run heals it
    assert len(again) == len(clean) and all(r.ok for r in again.values())
    assert {i: r.prediction for i, r in again.items()} == {
        i: r.prediction for i, r in clean.items()
    }
    assert accuracy(again, dataset) == accuracy(clean, dataset) == 1.0
    assert not verify_frame_cache(FrameCache(ws.frame_cache_dir)).damaged  # healed in place


def refuse(path: Path, threads: int = 1):
    """A decoder that cannot read anything (a codec gone from the machine, say)."""
    raise FrameError(f"{Path(path).name}: this decoder cannot read it now")


def test_a_clip_that_cannot_be_extracted_again_is_a_typed_failure_retried_next_run(
    ws, small_bench, monkeypatch
):
    dataset = DatasetSpec(tsv=small_bench)
    cell = reference_cell(dataset)
    (key,) = truncate_first_frames(ws, 1)
    source = FrameCache(ws.frame_cache_dir).open(key).manifest()["source"]
    affected = {s.sample_id for s in load_samples(dataset) if str(s.video_path) == source}
    assert affected

    extract_dataset_frames(dataset, cell.frames, ws)  # all hits: the damaged entry is listed
    for name in list(decoders_module.BACKENDS):
        monkeypatch.setitem(decoders_module.BACKENDS, name, refuse)
    summary = infer_inline(cell, ws)
    records = {r.sample_id: r for r in read_records(cell.log_dir(ws))}
    failed = {i: r for i, r in records.items() if not r.ok}
    assert set(failed) == affected
    assert summary.answered == len(records) - len(affected)
    for record in failed.values():
        assert record.error_type == "CorruptFrames"
        assert "00000.jpg" in record.error and "checksum" in record.error
        assert "extracting it again failed" in record.error
        assert "this decoder cannot read it now" in record.error
        assert "Traceback" not in record.error
    monkeypatch.undo()

    # the damaged entry was removed: the next run's extraction decodes that clip again,
    # and the failures (not permanent) are asked again
    assert extract_dataset_frames(dataset, cell.frames, ws).decoded == 1
    assert infer_inline(cell, ws).answered == len(affected)
    assert all(r.ok for r in cell_records(cell, ws).values())


def test_reading_a_damaged_entry_extracts_it_again_once(videos, tmp_path):
    cache = FrameCache(tmp_path / "cache")
    jobs = [VideoJob(videos / "a.mp4"), VideoJob(videos / "b.mp4")]
    report = extract_videos(jobs, cache, FAST)
    model_entry, api_entry = (report.results[job] for job in jobs)
    frames, jpegs = model_entry.load(), api_entry.jpeg_bytes()

    truncate(model_entry.paths[1])  # what a model reads
    assert np.array_equal(model_entry.load(), frames)
    api_entry.paths[2].write_bytes(api_entry.paths[0].read_bytes())  # a sound JPEG, wrong
    assert api_entry.jpeg_bytes() == jpegs  # what the API path uploads
    assert not verify_frame_cache(cache).damaged

    truncate(model_entry.paths[1])  # damaged again: no second extraction in this process
    with pytest.raises(CorruptFramesError, match="damaged again"):
        model_entry.load()
    assert cache.open(model_entry.key) is None  # removed: the next extraction makes it
    again = extract_videos(jobs, cache, FAST)
    assert (again.hits, again.decoded) == (1, 1)
    assert np.array_equal(again.results[jobs[0]].load(), frames)


def test_an_entry_from_before_checksums_stays_valid_and_is_checked_by_decoding(videos, tmp_path):
    cache = FrameCache(tmp_path / "cache")
    job = VideoJob(videos / "a.mp4")
    entry = extract_videos([job], cache, FAST).results[job]
    jpegs = entry.jpeg_bytes()
    drop_checksums(entry.dir)

    assert cache.get(job, FAST) == entry  # still an entry, under the same key
    assert extract_videos([job], cache, FAST).hits == 1
    assert entry.jpeg_bytes() == jpegs
    check = verify_frame_cache(cache)
    assert (check.checked, check.by_decoding, check.damaged) == (1, 1, {})

    truncate(entry.paths[3])
    check = verify_frame_cache(cache)
    assert list(check.damaged) == [entry.key]
    assert "00003.jpg" in check.damaged[entry.key] and "decoded" in check.damaged[entry.key]
    assert entry.jpeg_bytes() == jpegs  # no checksum to compare: decoding found it
    assert len(entry.manifest()["sha256"]) == 4  # made again, with checksums


def verify(ws: Workspace, *options: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "flows.cli.main", "cache", "verify", *options]
    return subprocess.run(
        [*command, "--work-dir", str(ws.work_dir)], capture_output=True, text=True, timeout=300
    )


def test_cache_verify_finds_the_damaged_entries_and_repair_removes_them(ws, small_bench):
    cache = FrameCache(ws.frame_cache_dir)
    damaged = truncate_first_frames(ws, 3)
    legacy = sorted(cache.keys())[-1]
    drop_checksums(cache.entry_dir(legacy))  # sound, from before checksums: kept

    found = verify(ws)
    assert found.returncode == 1, found.stderr
    assert "12 entries checked (11 against their checksums, 1 decoded in full" in found.stdout
    assert "3 damaged:" in found.stdout and "--repair" in found.stdout
    assert all(key in found.stdout for key in damaged)
    assert ".jsonl" in found.stdout  # which frame index uses them
    assert all(key not in found.stdout for key in sorted(cache.keys())[3:])

    repaired = verify(ws, "--repair")
    assert repaired.returncode == 0, repaired.stderr
    assert "removed 3 damaged entries" in repaired.stdout
    assert all(f"removed {key}" in repaired.stdout for key in damaged)
    assert not set(damaged) & set(cache.keys())
    assert cache.open(legacy) is not None

    clean = verify(ws)
    assert clean.returncode == 0 and "no damaged entries" in clean.stdout

    # the next run extracts the removed clips again
    summary = extract_dataset_frames(DatasetSpec(tsv=small_bench), FrameSettings(), ws)
    assert (summary.decoded, summary.failed) == (3, 0)
    assert not verify_frame_cache(cache).damaged
