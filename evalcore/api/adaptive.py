"""`max_in_flight: auto`: find the concurrency an endpoint sustains, and keep to it.

An AIMD controller, as TCP's congestion control and lmms-eval 0.6's per-process limiter,
but fed by every attempt of every worker (it runs in the client, which sizes every
worker's gate), so the level is cluster-wide:

- slow start: double the level each round (a round: as many attempts as the level)
  while latency stays flat and nothing is throttled;
- 429s or 503s (throttled) cut the level to the share of the round's attempts that got
  through (at most 0.9x, at least 0.5x) and end slow start: the server said how much
  it takes; rising latency (a round's median above 1.5x the best seen) cuts it to 0.9x:
  the server is queueing;
- attempts sent before the level last changed are ignored (each attempt carries the
  `epoch`, the number of changes, its worker's gate had when it was let through);
- after slow start the level grows by 1 per `probe_seconds` at most, while rounds stay
  calm: a rate limit with a burst allowance lets a probe through for a while before it
  refuses, so a slow probe rejects few requests.

Pure: `record` attempts, `level` reads the decision, `changes` is the epoch.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field


@dataclass
class AdaptiveLimit:
    floor: int = 1
    ceiling: int = 1024
    level: int = 8
    probe_seconds: float = 5.0
    slow_start: bool = True
    throttled_at: int | None = None  # level at the last throttle
    best_latency: float | None = None
    peak: int = 0
    changes: int = 0
    _round: list[float] = field(default_factory=list)  # latencies of this round's answers
    _throttles: int = 0
    _last_change: float = 0.0

    def __post_init__(self) -> None:
        self.level = min(max(self.level, self.floor), self.ceiling)
        self.peak = self.level

    def record(
        self, latency: float | None, throttled: bool, epoch: int | None = None, now: float = 0.0
    ) -> bool:
        """One attempt: its latency when answered, or throttled (429/503), the epoch it
        was sent in (None: the current one), and when it was heard of (seconds, any
        clock). Returns True when the level changed."""
        if epoch is not None and epoch < self.changes:
            return False
        if throttled:
            self._throttles += 1
        elif latency is not None:
            self._round.append(latency)
        if self._throttles + len(self._round) < max(4, self.level):
            return False
        return self._close_round(now)

    def _close_round(self, now: float) -> bool:
        throttles, latencies = self._throttles, self._round
        self._throttles, self._round = 0, []
        median = statistics.median(latencies) if latencies else None
        if median is not None and (self.best_latency is None or median < self.best_latency):
            self.best_latency = median
        if throttles:
            self.throttled_at = self.level
            through = len(latencies) / (len(latencies) + throttles)
            return self._set(int(self.level * min(0.9, max(0.5, through))), now, cut=True)
        if median is not None and self.best_latency and median > 1.5 * self.best_latency:
            return self._set(int(self.level * 0.9), now, cut=True)
        if self.slow_start:
            return self._set(self.level * 2, now)
        if now - self._last_change < self.probe_seconds:
            return False
        return self._set(self.level + 1, now)

    def _set(self, level: int, now: float, cut: bool = False) -> bool:
        if cut:
            self.slow_start = False
        level = min(max(level, self.floor), self.ceiling)
        if level == self.level:
            return False
        self.level, self.changes, self._last_change = level, self.changes + 1, now
        self.peak = max(self.peak, level)
        return True

    def describe(self) -> str:
        return f"auto: {self.level} now, peak {self.peak}"
