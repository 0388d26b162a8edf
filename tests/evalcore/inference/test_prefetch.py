"""The frame prefetcher: read-ahead order, the right clip per sample, and memory held
only for the window of unreleased samples (not for clips the model never loads)."""

from __future__ import annotations

import gc
import threading
import time
import tracemalloc
import weakref
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from evalcore.frames import FrameCache, FrameFailure
from evalcore.frames.cache import encode_jpeg
from evalcore.inference.prefetch import FramePrefetcher
from tests.doubles.videos import frame_pattern, read_frame_number

SHAPE = (8, 480, 640, 3)  # one clip: 8 frames of 640x480 RGB
CLIP_BYTES = int(np.prod(SHAPE))  # 7.4 MB


class Clip:
    """A cache entry whose `load()` makes a real array filled with its number, and
    notes which thread read it; `live` tracks every array it made (weakly)."""

    def __init__(self, number: int, reads: list, live: list, fail_times: int = 0) -> None:
        self.key = f"clip{number}"
        self.number = number
        self.paths = (Path(f"{self.key}/00000.jpg"),)
        self.timestamps = (0.0,)
        self._reads, self._live, self._fail_times = reads, live, fail_times

    def load(self) -> np.ndarray:
        self._reads.append((self.number, threading.current_thread().name))
        if self._fail_times > 0:
            self._fail_times -= 1
            raise OSError(f"{self.key}: disk hiccup")
        array = np.full(SHAPE, self.number, np.uint8)
        self._live.append(weakref.ref(array))
        return array


def _alive(live: list, collect: bool = True) -> int:
    """Arrays still referenced; without `collect`, those only a garbage cycle holds
    count too (stricter, and no full collection: under tracemalloc each one costs
    ~0.4 s in a full test session)."""
    if collect:
        gc.collect()
    return sum(ref() is not None for ref in live)


def _wait_for(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def _bench(n_clips: int, per_clip: int, reads: list, live: list) -> dict[str, Clip]:
    clips = [Clip(c, reads, live) for c in range(n_clips)]
    return {f"c{c}q{q}": clips[c] for c in range(n_clips) for q in range(per_clip)}


def test_clips_the_model_answers_from_its_own_cache_are_let_go_on_release():
    """50 clips x 4 questions; the model loads frames for the first question of a clip
    only (it answers the other three from a cache of its own) and never loads again."""
    depth = 4
    reads: list = []
    live: list = []
    lookup = _bench(50, 4, reads, live)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        most_held = most_alive = 0
        with FramePrefetcher(lookup, list(lookup), depth) as prefetcher:
            for sample_id, clip in lookup.items():
                if sample_id.endswith("q0"):
                    frames = prefetcher.lookup[sample_id].load()
                    assert frames.shape == SHAPE and frames[0, 0, 0, 0] == clip.number
                    del frames
                    # the read-ahead of the window is done before the model moves on
                    _wait_for(lambda c=clip: len(reads) >= min(c.number + depth + 1, 50), 60.0)
                prefetcher.release(sample_id)  # the runner, right after writing the record
                held = prefetcher.loaded_clips
                assert held <= depth + 1, sample_id
                most_held = max(most_held, held)
                most_alive = max(most_alive, _alive(live, collect=False))
            assert prefetcher.loaded_clips == 0  # every sample released: nothing held
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    print(f"peak {peak / 1e6:.1f} MB = {peak / CLIP_BYTES:.2f} clips; held at most {most_held}")
    assert most_held == depth + 1  # it did read ahead
    assert most_alive <= depth + 1
    # the window, plus one clip whose read finishes as the window moves; the old
    # prefetcher held all 50 (370 MB)
    assert peak < (depth + 2) * CLIP_BYTES
    assert _alive(live) == 0
    assert sorted(number for number, _ in reads) == list(range(50))  # each read once


def test_reads_ahead_in_answering_order_and_each_sample_gets_its_clip():
    reads: list = []
    live: list = []
    a, b, c, d = (Clip(n, reads, live) for n in range(4))
    lookup = {"s1": c, "s2": a, "s3": c, "s4": b, "s5": d, "bad": FrameFailure("X", "y")}
    order = ["s1", "s2", "s3", "s4", "bad", "s5"]
    with FramePrefetcher(lookup, order, depth=3) as prefetcher:
        frames = prefetcher.lookup
        assert frames["bad"] is lookup["bad"]
        assert frames["s4"].paths == b.paths and frames["s4"].key == "clip1"
        time.sleep(0.1)
        assert not reads  # nothing read before the model asks
        first = frames["s1"].load()
        _wait_for(lambda: prefetcher.loaded_clips == 4)
        ahead = [n for n, thread in reads if thread == "frame-prefetch"]
        assert ahead == [0, 1, 3]  # a, b, d: the clips after c, in answering order
        assert len(reads) == 4
        assert frames["s3"].load() is first  # same clip, held: the same array
        assert frames["s1"].load() is first  # loading twice is fine
        for sample_id, clip in [("s2", a), ("s4", b), ("s5", d)]:
            assert frames[sample_id].load()[0, 0, 0, 0] == clip.number
        assert len(reads) == 4


def test_real_cache_entries_come_back_as_their_own_frames(tmp_path):
    cache = FrameCache(tmp_path / "cache")
    lookup = {}
    for clip in range(5):
        numbers = [100 * clip + i for i in range(3)]
        frames = [
            (i, i / 10, *encode_jpeg(Image.fromarray(frame_pattern(n, 160, 120)), None, 95))
            for i, n in enumerate(numbers)
        ]
        entry = cache.write(f"{clip:02d}" * 16, frames, {i: [i] for i in range(3)}, {})
        lookup.update({f"v{clip}-q{q}": entry for q in range(2)})
    with FramePrefetcher(lookup, list(lookup), depth=2) as prefetcher:
        for sample_id in lookup:
            clip = int(sample_id[1])
            got = [read_frame_number(f) for f in prefetcher.lookup[sample_id].load()]
            assert got == [100 * clip + i for i in range(3)], sample_id
            prefetcher.release(sample_id)


def test_the_window_moves_only_when_a_clips_last_sample_is_released():
    reads: list = []
    live: list = []
    lookup = _bench(4, 2, reads, live)
    with FramePrefetcher(lookup, list(lookup), depth=1) as prefetcher:
        prefetcher.lookup["c0q0"].load()
        _wait_for(lambda: prefetcher.loaded_clips == 2)
        time.sleep(0.1)
        assert sorted(n for n, _ in reads) == [0, 1]  # depth 1: one clip ahead, no more
        prefetcher.release("c0q0")
        time.sleep(0.1)
        assert sorted(n for n, _ in reads) == [0, 1] and _alive(live) == 2  # c0 still due
        prefetcher.release("c0q1")
        _wait_for(lambda: len(reads) == 3)
        _wait_for(lambda: prefetcher.loaded_clips == 2)
        assert _alive(live) == 2  # clip 0 dropped, clip 2 read ahead
        # released out of order: clip 3's samples first, then clip 1's
        for sample_id in ("c3q0", "c3q1", "c1q0", "c1q1"):
            prefetcher.release(sample_id)
        assert prefetcher.loaded_clips <= 1 and sorted(n for n, _ in reads) == [0, 1, 2]
    assert _alive(live) == 0


def test_a_sample_in_flight_keeps_its_clip_until_released_even_beyond_the_window():
    reads: list = []
    live: list = []
    lookup = _bench(3, 1, reads, live)  # c0q0, c1q0, c2q0
    with FramePrefetcher(lookup, list(lookup), depth=0) as prefetcher:
        batch = [prefetcher.lookup[s].load() for s in lookup]  # a batch of three
        assert prefetcher.loaded_clips == 3  # the window (clip 0) and two in flight
        again = prefetcher.lookup["c2q0"].load()  # a retried batch half loads again
        assert again is batch[2] and len(reads) == 3
        del batch, again
        prefetcher.release("c0q0")
        assert prefetcher.loaded_clips == 2
        prefetcher.release("c1q0")
        prefetcher.release("c2q0")
        assert prefetcher.loaded_clips == 0 and _alive(live) == 0
        # loaded after its release (and outside any window): read again, not held
        assert prefetcher.lookup["c1q0"].load()[0, 0, 0, 0] == 1
        assert prefetcher.loaded_clips == 0 and len(reads) == 4


def test_a_model_that_reads_paths_itself_costs_no_reads():
    reads: list = []
    live: list = []
    lookup = _bench(5, 2, reads, live)
    with FramePrefetcher(lookup, list(lookup), depth=3) as prefetcher:
        for sample_id in lookup:
            assert prefetcher.lookup[sample_id].paths  # the model opens the JPEGs itself
            prefetcher.release(sample_id)
        time.sleep(0.1)
        assert not reads and prefetcher.loaded_clips == 0


def test_a_failed_read_ahead_is_retried_by_the_sample_and_raises_there():
    reads: list = []
    live: list = []
    good = Clip(0, reads, live)
    hiccup = Clip(1, reads, live, fail_times=1)
    broken = Clip(2, reads, live, fail_times=99)
    lookup = {"a": good, "b": hiccup, "c": broken}
    with FramePrefetcher(lookup, ["a", "b", "c"], depth=2) as prefetcher:
        prefetcher.lookup["a"].load()
        _wait_for(lambda: len(reads) >= 3)
        assert prefetcher.lookup["b"].load()[0, 0, 0, 0] == 1  # read again, here
        with pytest.raises(OSError, match="clip2: disk hiccup"):
            prefetcher.lookup["c"].load()
        for sample_id in "abc":
            prefetcher.release(sample_id)
        assert prefetcher.loaded_clips == 0


def test_close_drops_every_array_and_later_loads_read_directly():
    reads: list = []
    live: list = []
    lookup = _bench(6, 1, reads, live)
    prefetcher = FramePrefetcher(lookup, list(lookup), depth=3)
    with prefetcher:
        prefetcher.lookup["c0q0"].load()
        _wait_for(lambda: prefetcher.loaded_clips == 4)
    assert prefetcher.loaded_clips == 0 and _alive(live) == 0
    assert prefetcher.lookup["c5q0"].load()[0, 0, 0, 0] == 5
    assert _alive(live) == 0
