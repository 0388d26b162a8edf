"""`max_in_flight: auto`: find the concurrency and rate an endpoint sustains, keep to them.

An AIMD controller, as TCP's congestion control and lmms-eval 0.6's per-process limiter,
but fed by every attempt of every worker (it runs in the client, which sizes every
worker's gate), so the level is cluster-wide:

- slow start: double the level each round (a round: as many attempts as the level)
  while latency stays flat and nothing is throttled;
- 429s or 503s (throttled) end slow start and set a pace: 0.95x the rate at which
  attempts got through over the last second (what the server takes: once a rate
  limit's burst allowance is spent, exactly its rate), again at each throttled round.
  The pace, not the level, is what stops the refusals: a refused attempt returns at
  once, so one slot too many turns into a stream of 429s, whereas paced leases start
  requests no faster than the server admits them. The level is cut to the share of
  the round let through (0.5x-0.9x), but kept above 1.5x what the pace needs at the
  best latency seen;
- a round's median latency above 1.5x the best seen cuts the level to 0.9x: the server
  is queueing;
- attempts sent before the last change are not counted (each attempt carries the
  `epoch`, the number of changes, its worker's gate had when it was let through);
- after slow start, while rounds stay calm, the level grows by 1 and the pace by 2% at
  most once per `probe_seconds` (10 s): a rate limit with a burst allowance lets a small probe
  through for a long while before it refuses.

Pure: `record` attempts, read `level` and `rate`; `changes` is the epoch.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from dataclasses import dataclass, field

RATE_WINDOW_S = 1.0


@dataclass
class AdaptiveLimit:
    floor: int = 1
    ceiling: int = 1024
    level: int = 8
    probe_seconds: float = 10.0
    slow_start: bool = True
    rate: float | None = None  # requests a second the leases are paced to (None: unpaced)
    best_latency: float | None = None
    peak: int = 0
    changes: int = 0
    _round: list[float] = field(default_factory=list)  # latencies of this round's answers
    _throttles: int = 0
    _last_change: float = 0.0
    _answered_at: deque = field(default_factory=deque)  # when answers were heard of
    _first_answer: float | None = None

    def __post_init__(self) -> None:
        self.level = min(max(self.level, self.floor), self.ceiling)
        self.peak = self.level

    def record(
        self, latency: float | None, throttled: bool, epoch: int | None = None, now: float = 0.0
    ) -> bool:
        """One attempt: its latency when answered, or throttled (429/503), the epoch it
        was sent in (None: the current one), and when it was heard of (seconds, any
        clock). Returns True when the level or the pace changed."""
        if latency is not None:
            self._answered_at.append(now)  # the admitted rate counts every answer
            if self._first_answer is None:
                self._first_answer = now
        if epoch is not None and epoch < self.changes:
            return False
        if throttled:
            self._throttles += 1
        elif latency is not None:
            self._round.append(latency)
        if self._throttles + len(self._round) < max(4, self.level):
            return False
        return self._close_round(now)

    def admitted_rate(self, now: float) -> float:
        """Answers a second over the last `RATE_WINDOW_S` (or since the first answer)."""
        while self._answered_at and self._answered_at[0] < now - RATE_WINDOW_S:
            self._answered_at.popleft()
        if self._first_answer is None:
            return 0.0
        return len(self._answered_at) / max(0.25, min(RATE_WINDOW_S, now - self._first_answer))

    def _close_round(self, now: float) -> bool:
        throttles, latencies = self._throttles, self._round
        self._throttles, self._round = 0, []
        median = statistics.median(latencies) if latencies else None
        if median is not None and (self.best_latency is None or median < self.best_latency):
            self.best_latency = median
        if throttles:
            through = len(latencies) / (len(latencies) + throttles)
            admitted = self.admitted_rate(now)
            rate = 0.95 * admitted if admitted > 0 else (self.rate and self.rate * 0.5)
            level = int(self.level * min(0.9, max(0.5, through)))
            if rate and self.best_latency:
                level = max(level, math.ceil(1.5 * rate * self.best_latency))
            return self._set(level, now, rate=rate, cut=True)
        if median is not None and self.best_latency and median > 1.5 * self.best_latency:
            return self._set(int(self.level * 0.9), now, cut=True)
        if self.slow_start:
            return self._set(self.level * 2, now)
        if now - self._last_change < self.probe_seconds:
            return False
        return self._set(self.level + 1, now, rate=self.rate and self.rate * 1.02)

    def _set(self, level: int, now: float, rate: float | None = -1.0, cut: bool = False) -> bool:
        """Move to `level` (and `rate`; -1: the pace unchanged)."""
        if rate == -1.0:
            rate = self.rate
        if cut:
            self.slow_start = False
        level = min(max(level, self.floor), self.ceiling)
        if level == self.level and rate == self.rate:
            return False
        self.level, self.rate = level, rate
        self.changes, self._last_change = self.changes + 1, now
        self.peak = max(self.peak, level)
        return True

    def describe(self) -> str:
        pace = f", paced at {self.rate:.1f} req/s" if self.rate else ""
        return f"auto: {self.level} now, peak {self.peak}{pace}"
