"""A slow video without a slow file: hold the clip's per-key decode lock."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from evalcore.frames import FrameCache, FrameSettings, VideoJob
from evalcore.frames.extract import _lock_entry


class HeldClip:
    """Holds `job`'s per-key decode lock under `settings`, as a process decoding that
    clip would: an extraction of it waits until `release()` (a slow video), every other
    clip goes on. `release_after(s)` releases it in any case after `s` seconds, so a test
    that fails cannot hang."""

    def __init__(self, cache_dir: Path, job: VideoJob, settings: FrameSettings) -> None:
        cache = FrameCache(cache_dir)
        self.key = cache.key_for(job, settings)
        self._lock = _lock_entry(cache, self.key)
        self.released_at: float | None = None
        self._guard: threading.Timer | None = None

    def release(self) -> None:
        if self.released_at is None:
            self.released_at = time.time()
            self._lock.close()
        if self._guard is not None:
            self._guard.cancel()

    def release_when(self, ready: Callable[[], bool]) -> HeldClip:
        """Release the clip, from a watcher thread, once `ready()` (polled) is true."""

        def watch() -> None:
            while self.released_at is None:
                if ready():
                    self.release()
                time.sleep(0.05)

        threading.Thread(target=watch, daemon=True).start()
        return self

    def release_after(self, seconds: float) -> HeldClip:
        self._guard = threading.Timer(seconds, self.release)
        self._guard.daemon = True
        self._guard.start()
        return self
