"""`max_in_flight: auto`: find the concurrency and rate an endpoint sustains, keep to them.

An AIMD controller, as TCP's congestion control and lmms-eval 0.6's per-process limiter,
but fed by every attempt of every worker (it runs in the client, which sizes every
worker's gate), so the level is cluster-wide:

- slow start: double the level each round (a round: as many answers as the level, all
  sent at the current level) while latency stays flat and nothing is throttled;
- a 429 or 503 (throttled) is answered at once, not at the end of a round: a rate limit
  refuses whatever is sent above its rate, so every moment of delay costs refusals. Only
  a throttle of an attempt sent since the last cut counts (`epoch`): the others were on
  the wire when the cut was made, and are its echo;
- the first throttle ends slow start with a pace of half the rate at which answers came
  over the last second. Not that rate itself: a rate limit's burst allowance hides the
  limit at first, so more got through than the limit allows (with a one-second burst,
  about twice as much). Then, while nothing is throttled, the pace grows 5% a round
  until the next throttle: it finds the rate from below, where nothing is refused;
- every later throttle sets the pace to 0.95x the lower of the pace and the admitted
  rate (a limiter refuses only above its rate, and once its burst is spent what it lets
  through is its rate). The pace, not the level, is what stops the refusals: paced leases
  start requests no faster than the server admits them;
- at each throttle the level becomes what the pace needs at the best latency seen, with
  room (1.5x); without a pace yet, half the level (slow start) or 0.9x;
- a round's median latency above 1.5x the best seen cuts the level to 0.9x: the server
  is queueing. Unless two such cuts in a row did not bring it down (each round's median
  at least 0.9x the one before): then the requests themselves got slower (a later cell
  sends more frames, a longer prompt), not the queue longer, and that median becomes
  the best latency. Without this, a slower workload on a known endpoint would be cut
  round after round down to level 1;
- after that, while rounds stay calm, the level grows by 1 and the pace by 2% at most
  once per `probe_seconds` (10 s): a rate limit with a burst allowance lets a small probe
  through for a long while before it refuses.

The workers' gates do their part at once: a throttle stops a worker's leases until the
controller's cut reaches it (see `gate`). A controller outlives a run: the next cell on
the endpoint starts at the level and pace learnt, without slow start.

Pure: `record` attempts, read `level` and `rate`; `changes` is the epoch and `cut_epoch`
the epoch of the last cut.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from dataclasses import dataclass, field

RATE_WINDOW_S = 1.0  # the admitted rate: answers heard over this long
FIRST_PACE = 0.5  # x the admitted rate, when the first throttle ends slow start
SEARCH_STEP = 1.05  # the pace's growth per calm round after slow start, until a throttle
BACKOFF = 0.95  # a later throttle: the pace to this x min(pace, admitted rate)


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
    cut_epoch: int = 0  # `changes` at the last cut: throttles sent before it are its echo
    _round: list[float] = field(default_factory=list)  # latencies of this round's answers
    _slow_rounds: list[float] = field(default_factory=list)  # medians of latency cuts in a row
    _searching: bool = False  # after slow start: the pace grows each calm round
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
        if throttled:
            if epoch is not None and epoch < self.cut_epoch:
                return False
            return self._throttled(now)
        if latency is None or (epoch is not None and epoch < self.changes):
            return False
        self._round.append(latency)
        if len(self._round) < max(4, self.level):
            return False
        return self._close_round(now)

    def admitted_rate(self, now: float) -> float:
        """Answers a second over the last `RATE_WINDOW_S` (or since the first answer)."""
        while self._answered_at and self._answered_at[0] < now - RATE_WINDOW_S:
            self._answered_at.popleft()
        if self._first_answer is None:
            return 0.0
        return len(self._answered_at) / max(0.25, min(RATE_WINDOW_S, now - self._first_answer))

    def _throttled(self, now: float) -> bool:
        admitted = self.admitted_rate(now) or None
        if self.slow_start:
            rate = admitted and FIRST_PACE * admitted
            level, self._searching = self.level // 2, True
        else:
            known = [r for r in (self.rate, admitted) if r]
            rate = BACKOFF * min(known) if known else None
            level, self._searching = int(self.level * 0.9), False
        self._round = []
        return self._set(self._needed(rate) or level, now, rate=rate, cut=True)

    def _needed(self, rate: float | None) -> int | None:
        """The level a pace needs at the best latency seen, with room (1.5x)."""
        if rate and self.best_latency:
            return math.ceil(1.5 * rate * self.best_latency)
        return None

    def _close_round(self, now: float) -> bool:
        latencies, self._round = self._round, []
        median = statistics.median(latencies)
        if self.best_latency is None or median < self.best_latency:
            self.best_latency = median
        if median > 1.5 * self.best_latency:
            slow = self._slow_rounds
            if len(slow) >= 2 and slow[-1] >= 0.9 * slow[-2] and median >= 0.9 * slow[-1]:
                self.best_latency, self._slow_rounds = median, []  # slower requests, not a queue
                return False
            slow.append(median)
            self._searching = False
            return self._set(int(self.level * 0.9), now, cut=True)
        self._slow_rounds = []
        if self.slow_start:
            return self._set(self.level * 2, now)
        if self._searching and self.rate:
            rate = self.rate * SEARCH_STEP
            return self._set(max(self.level, self._needed(rate) or 0), now, rate=rate)
        if now - self._last_change < self.probe_seconds:
            return False
        return self._set(self.level + 1, now, rate=self.rate and self.rate * 1.02)

    def _set(self, level: int, now: float, rate: float | None = -1.0, cut: bool = False) -> bool:
        """Move to `level` (and `rate`; -1: the pace unchanged). A cut is always a new
        epoch, even if nothing moved (at the floor): the gates paused for it."""
        if rate == -1.0:
            rate = self.rate
        if cut:
            self.slow_start = False
        level = min(max(level, self.floor), self.ceiling)
        if level == self.level and rate == self.rate and not cut:
            return False
        self.level, self.rate = level, rate
        self.changes, self._last_change = self.changes + 1, now
        if cut:
            self.cut_epoch = self.changes
        self.peak = max(self.peak, level)
        return True

    def describe(self) -> str:
        pace = f", paced at {self.rate:.1f} req/s" if self.rate else ""
        return f"auto: {self.level} now, peak {self.peak}{pace}"
