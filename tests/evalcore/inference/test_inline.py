"""The inline launcher: cells in threads of one process take turns on a device, and a
cell waiting for its frames does not hold it."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from doubles.frames import HeldClip
from doubles.models import COUNTING

from evalcore.benchmarks import load_samples
from evalcore.cell import Cell, extract_dataset_frames
from evalcore.config import DatasetSpec, ModelSpec
from evalcore.frames import FrameEntry, FrameSettings, VideoJob
from evalcore.inference import infer_inline
from evalcore.models import BaseVideoModel
from evalcore.predictions import read_records
from evalcore.workspace import Workspace


def counting_cell(name: str, dataset: DatasetSpec, tmp_path, frames=None) -> Cell:
    params = {"calls_file": str(tmp_path / f"{name}.txt"), "delay_s": 0.05}
    model = ModelSpec(name=name, kind=COUNTING, params=params, batch_size=2)
    return Cell(model, dataset, trial=0, seed=0, frames=frames or FrameSettings())


def span(cell: Cell, ws: Workspace) -> tuple[float, float]:
    times = [r.finished_at for r in read_records(cell.log_dir(ws))]
    return min(times), max(times)


def test_two_cells_on_the_cpu_take_turns(ws, small_bench, tmp_path):
    dataset = DatasetSpec(tsv=small_bench, limit=16)
    cells = [counting_cell(name, dataset, tmp_path) for name in ("a", "b")]
    with ThreadPoolExecutor(2) as pool:  # as the flow's task runner runs two cells
        summaries = list(pool.map(lambda cell: infer_inline(cell, ws), cells))
    assert [s.answered for s in summaries] == [16, 16]
    (first_start, first_end), (second_start, second_end) = sorted(span(c, ws) for c in cells)
    assert first_end < second_start  # one model on the device at a time


def test_a_cell_waiting_for_frames_leaves_the_device_to_others(small_bench, tmp_path):
    ws = Workspace(tmp_path / "work", tmp_path / "out")
    ready = counting_cell("ready", DatasetSpec(tsv=small_bench, limit=8), tmp_path)
    extract_dataset_frames(ready.dataset, ready.frames, ws)
    # Another frame plan of the first video's questions, its decode held back.
    waiting = counting_cell(
        "waiting", DatasetSpec(tsv=small_bench, limit=4), tmp_path, FrameSettings(nframe=4)
    )
    video = load_samples(waiting.dataset)[0].video_path
    held = HeldClip(ws.frame_cache_dir, VideoJob(video), waiting.frames).release_after(60)
    extraction = threading.Thread(
        target=extract_dataset_frames, args=(waiting.dataset, waiting.frames, ws)
    )
    extraction.start()
    while not waiting.frame_index_path(ws).exists():
        extraction.join(timeout=0.02)
    with ThreadPoolExecutor(1) as pool:
        waited = pool.submit(infer_inline, waiting, ws)  # started first, waits for frames
        while not (waiting.log_dir(ws) / ".lock-cell").exists():  # it holds its cell
            assert not waited.done(), waited.result()
            time.sleep(0.02)
        assert infer_inline(ready, ws).answered == 8  # meanwhile, on the same device
        assert not waited.done() and not read_records(waiting.log_dir(ws))
        held.release()
        assert waited.result(timeout=60).answered == 4
    extraction.join(timeout=60)
    assert span(ready, ws)[1] < span(waiting, ws)[0]


class FrameReadingModel(BaseVideoModel):
    """Reads every request's frames, as a vision model does."""

    def generate(self, requests, generation):
        for r in requests:
            np.asarray(r.frames.load())
            time.sleep(0.01)  # some compute: the time the prefetcher reads ahead in
        return ["A"] * len(requests)


def test_the_inline_launcher_reads_the_next_clips_ahead_on_a_thread(ws, small_bench, monkeypatch):
    reads: list[str] = []  # the thread of every frame read from the cache
    real_load = FrameEntry.load
    monkeypatch.setattr(
        FrameEntry, "load", lambda e: reads.append(threading.current_thread().name) or real_load(e)
    )
    model = ModelSpec(name="reader", kind=f"{__name__}:FrameReadingModel", batch_size=1)
    dataset = DatasetSpec(tsv=small_bench, limit=16)
    for prefetch, trial in ((2, 0), (0, 1)):
        cell = Cell(model, dataset, trial=trial, seed=0, frames=FrameSettings())
        reads.clear()  # (`ws` holds the frames of the whole bench)
        assert infer_inline(cell, ws, prefetch=prefetch).answered == 16
        clips = len({r.video_path for r in load_samples(dataset)})
        if prefetch:  # the first clip in the model's thread, the next ones ahead of it:
            # how many ahead depends on the machine's load (a clip the prefetcher has not
            # reached yet is read by the model's thread), but reads go to the prefetch
            # thread and no clip is read twice over
            assert "frame-prefetch" in reads and len(reads) <= clips + 1
        else:  # each question reads its clip itself
            assert reads and "frame-prefetch" not in reads and len(reads) == 16
