"""Read cached frames ahead of the model on a background thread.

A rank knows the order in which it will answer its samples, so while the model works
on one batch a thread loads (JPEG-decodes) the frames of the next clips. JPEG decoding
releases the GIL, so this overlaps with the model even in one process. Loading starts
at the first `load()`: a model that reads `paths` itself costs no extra work.

Frames arrive while extraction goes on: `PrefetchedIndex` appends each group of samples
that arrives to the order (`extend`). `read_ahead` sets both up for a unit; every
launcher (inline, a torchrun rank) uses it.

A clip is let go when the records of its samples are written (`release`), not when
its frames are read: a model that answers some samples from a cache of its own never
calls `load()` for them, and counting loads would keep every such clip in memory.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from typing import Any

from evalcore.frames import FrameEntry, FrameFailure
from evalcore.frames.index import FrameIndex


class PrefetchedFrames:
    """Stands in for a cache entry; `load()` returns what the prefetcher read ahead."""

    def __init__(self, entry: Any, sample_id: str, owner: FramePrefetcher) -> None:
        self._entry = entry
        self._sample_id = sample_id
        self._owner = owner

    def __getattr__(self, name: str) -> Any:  # paths, timestamps, key, ... of the entry
        return getattr(self._entry, name)

    def load(self) -> Any:
        return self._owner.load(self._sample_id)


class FramePrefetcher:
    """Keeps the frames of the next clips loaded, in the order the samples are answered.

    `order`: sample ids in answering order (several may share a clip); ids without
    frames (a `FrameFailure`, or absent from `lookup`) are passed over. The model reads
    frames through `.lookup[sample_id].load()`; the caller calls `release(sample_id)`
    once that sample's record is written, whether or not `load()` was called.

    Memory bound: the prefetcher holds the arrays of the *window*, the first `depth + 1`
    distinct clips among the samples not yet released, in answering order (the clip of
    the earliest unfinished sample and `depth` clips ahead of it), plus the clip of any
    sample whose `load()` was called and that is not released yet (in flight) but lies
    outside the window: at most `depth + 1` plus one batch. A clip is dropped as soon as
    it is in neither; its next sample (a question asked again later in the order) loads
    it again. `loaded_clips` counts the arrays held.

    `load()` of a clip not read ahead yet reads it in the caller's thread; a second
    `load()` of the same sample returns the same array while the clip is held, and reads
    it again otherwise. A failed read-ahead is retried in the caller's thread, so the
    error surfaces in `load()` of the sample it belongs to.
    """

    def __init__(self, lookup: Mapping[str, Any], order: Sequence[str], depth: int) -> None:
        if depth < 0:
            raise ValueError(f"depth must be >= 0, got {depth}")
        self.depth = depth
        self.lookup: dict[str, Any] = dict(lookup)
        self._entries: dict[Hashable, Any] = {}  # clip key -> cache entry
        self._clip_of: dict[str, Hashable] = {}
        self._order: list[str] = []
        self._position: dict[str, int] = {}
        # _skip[i]: a step towards the first unreleased position at or after i (i itself
        # while unreleased); compressed on the way, so the window is found in O(window)
        self._skip = [0]
        self._released: set[str] = set()
        self._in_flight: set[str] = set()
        self._flying: Counter[Hashable] = Counter()  # clip -> samples in flight
        self._held: dict[Hashable, Future] = {}  # clip -> its array (or its read, going on)
        self._failed: set[Hashable] = set()  # read-ahead failed: read only on demand
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.extend(lookup, order)

    def extend(self, lookup: Mapping[str, Any], order: Sequence[str]) -> None:
        """Append `order` to the answering order (samples whose frames have arrived
        since); ids already in the order, or without frames, are passed over."""
        with self._cond:
            for sample_id in dict.fromkeys(order):
                entry = lookup.get(sample_id)
                if sample_id in self._position or entry is None:
                    continue
                if isinstance(entry, FrameFailure):
                    self.lookup[sample_id] = entry
                    continue
                key = getattr(entry, "key", None) or id(entry)
                self._entries.setdefault(key, entry)
                self._clip_of[sample_id] = key
                # the end marker (the position past the last) becomes this sample's
                self._position[sample_id] = len(self._order)
                self._order.append(sample_id)
                self._skip.append(len(self._order))
                self.lookup[sample_id] = PrefetchedFrames(entry, sample_id, self)
            self._cond.notify_all()

    @property
    def loaded_clips(self) -> int:
        """How many clips' arrays the prefetcher holds now (reads going on not counted)."""
        with self._cond:
            return sum(f.done() and f.exception() is None for f in self._held.values())

    def load(self, sample_id: str) -> Any:
        """The frames of `sample_id`: read ahead, being read (waited for), or read now."""
        key = self._clip_of[sample_id]
        entry = self._entries[key]
        mine = False
        with self._cond:
            if self._closed:
                return entry.load()
            self._start()
            if sample_id not in self._released and sample_id not in self._in_flight:
                self._in_flight.add(sample_id)
                self._flying[key] += 1
            future = self._held.get(key)
            if future is None and self._wanted(key):
                future = self._held[key] = Future()
                mine = True
            self._cond.notify_all()
        if future is None:  # loaded again after its release, outside the window
            return entry.load()
        if mine:
            self._fill(key, future, entry)
        try:
            return future.result()
        except Exception:
            if mine:
                raise
            return entry.load()  # the read-ahead failed: try here, raise here if it fails

    def release(self, sample_id: str) -> None:
        """`sample_id`'s record is written: its clip goes once all its samples are."""
        with self._cond:
            position = self._position.get(sample_id)
            if position is None or sample_id in self._released:
                return
            self._released.add(sample_id)
            self._skip[position] = position + 1
            key = self._clip_of[sample_id]
            if sample_id in self._in_flight:
                self._in_flight.discard(sample_id)
                self._flying[key] -= 1
                if self._flying[key] <= 0:
                    del self._flying[key]
            keep = set(self._window())
            for held in [k for k in self._held if k not in keep and k not in self._flying]:
                del self._held[held]
            self._cond.notify_all()

    def close(self) -> None:
        """Stop reading ahead and drop every array; `load()` afterwards reads directly."""
        with self._cond:
            self._closed = True
            self._held.clear()
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5.0)  # a read going on finishes; its array is dropped

    def __enter__(self) -> FramePrefetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- under self._cond ------------------------------------------------------------

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._read_ahead, name="frame-prefetch", daemon=True
            )
            self._thread.start()

    def _first_unreleased(self, position: int) -> int:
        root = position
        while self._skip[root] != root:
            root = self._skip[root]
        while self._skip[position] != root:
            self._skip[position], position = root, self._skip[position]
        return root

    def _window(self) -> list[Hashable]:
        """The first depth + 1 distinct clips of the unreleased samples, in order."""
        keys: list[Hashable] = []
        position = self._first_unreleased(0)
        while position < len(self._order) and len(keys) <= self.depth:
            key = self._clip_of[self._order[position]]
            if key not in keys:
                keys.append(key)
            position = self._first_unreleased(position + 1)
        return keys

    def _wanted(self, key: Hashable) -> bool:
        return key in self._flying or key in self._window()

    def _next_to_read(self) -> Hashable | None:
        for key in self._window():
            if key not in self._held and key not in self._failed:
                return key
        return None

    # -- the read-ahead thread -------------------------------------------------------

    def _read_ahead(self) -> None:
        while True:
            with self._cond:
                key = self._next_to_read()
                while key is None and not self._closed:
                    self._cond.wait()
                    key = self._next_to_read()
                if self._closed:
                    return
                future = self._held[key] = Future()
                entry = self._entries[key]
            if not self._fill(key, future, entry):
                with self._cond:
                    self._failed.add(key)
            del future, entry  # hold no array between reads

    def _fill(self, key: Hashable, future: Future, entry: Any) -> bool:
        """Read `entry` into `future`; forget it unless still wanted. False on an error."""
        try:
            future.set_result(entry.load())
            ok = True
        except BaseException as error:
            future.set_exception(error)
            ok = False
        with self._cond:
            if self._held.get(key) is future and not (ok and self._wanted(key)):
                del self._held[key]
            self._cond.notify_all()
        return ok


class PrefetchedIndex(FrameIndex):
    """A frame index whose frames a `FramePrefetcher` reads ahead: each group of samples
    that arrives joins the read-ahead order as `order` arranges it (the order the runner
    will answer them in)."""

    def __init__(
        self,
        index: FrameIndex,
        prefetcher: FramePrefetcher,
        order: Callable[[list[str]], list[str]],
    ) -> None:
        super().__init__(prefetcher.lookup, index.videos)
        self.index = index
        self.prefetcher = prefetcher
        self._order = order

    def outcome(self, sample_id: str) -> Any:
        return self.prefetcher.lookup.get(sample_id) or self.index.outcome(sample_id)

    def arrivals(
        self, sample_ids: Iterable[str], on_wait: Callable[[], None] | None = None
    ) -> Iterator[list[str]]:
        for arrived in self.index.arrivals(sample_ids, on_wait):
            with_frames = [i for i in arrived if isinstance(self.index.outcome(i), FrameEntry)]
            self.prefetcher.extend(self.index.lookup, self._order(with_frames))
            yield arrived


def read_ahead(
    index: FrameIndex, samples: Mapping[str, Any], depth: int
) -> tuple[FramePrefetcher, FrameIndex]:
    """A unit's prefetcher and the index to answer it from (`index` itself when `depth`
    is 0). `samples`: the unit's samples by id; each group that arrives is read ahead in
    the order the runner answers it (`answer_order`)."""
    from evalcore.inference.runner import answer_order  # the runner imports frames only

    prefetcher = FramePrefetcher({}, [], depth)
    if depth == 0:
        return prefetcher, index

    def order(ids: list[str]) -> list[str]:
        return [s.sample_id for s in answer_order([samples[i] for i in ids], index)]

    return prefetcher, PrefetchedIndex(index, prefetcher, order)
