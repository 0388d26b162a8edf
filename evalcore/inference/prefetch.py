"""Read cached frames ahead of the model on a background thread.

A rank knows the order in which it will answer its samples, so while the model works
on one batch a thread loads (JPEG-decodes) the frames of the next clips. JPEG decoding
releases the GIL, so this overlaps with the model even in one process. Loading starts
at the first `load()`: a model that reads `paths` itself costs no extra work.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from evalcore.frames import FrameFailure
from evalcore.inference.frame_index import FrameLookup


class PrefetchedFrames:
    """Stands in for a cache entry; `load()` returns what the prefetcher read ahead."""

    def __init__(self, entry: Any, key: Any, owner: FramePrefetcher) -> None:
        self._entry = entry
        self._key = key
        self._owner = owner

    def __getattr__(self, name: str) -> Any:  # paths, timestamps, key, ... of the entry
        return getattr(self._entry, name)

    def load(self) -> Any:
        return self._owner.take(self._key, self._entry)


class FramePrefetcher:
    """Keeps up to `depth` clips loaded ahead, in the order the samples will be answered.

    A clip shared by several samples is read once and dropped after its last sample.
    """

    def __init__(self, lookup: FrameLookup, order: Sequence[str], depth: int) -> None:
        self.depth = depth
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="frame-prefetch")
        self._futures: dict[Any, Future] = {}
        self._entries: dict[Any, Any] = {}
        self._remaining: Counter = Counter()
        self._plan: list[Any] = []
        self._next = 0
        self.lookup: FrameLookup = dict(lookup)
        for sample_id in order:
            entry = lookup.get(sample_id)
            if entry is None or isinstance(entry, FrameFailure):
                continue
            key = getattr(entry, "key", None) or id(entry)
            self._entries.setdefault(key, entry)
            self._remaining[key] += 1
            self.lookup[sample_id] = PrefetchedFrames(entry, key, self)
        self._plan = list(self._entries)

    def take(self, key: Any, entry: Any) -> Any:
        with self._lock:
            future = self._futures.get(key)
            if future is None:
                if self._remaining[key] <= 0:  # loaded twice by the model: read it again
                    return entry.load()
                future = self._schedule(key)
            self._top_up()
        frames = future.result()
        with self._lock:
            self._remaining[key] -= 1
            if self._remaining[key] <= 0:
                self._futures.pop(key, None)
            self._top_up()
        return frames

    def _schedule(self, key: Any) -> Future:
        future = self._pool.submit(self._entries[key].load)
        self._futures[key] = future
        return future

    def _top_up(self) -> None:
        while len(self._futures) < self.depth + 1 and self._next < len(self._plan):
            key = self._plan[self._next]
            self._next += 1
            if key not in self._futures and self._remaining[key] > 0:
                self._schedule(key)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> FramePrefetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
