"""In-flight bounds for one endpoint: a request holds a lease while it is on the wire.

A `LocalGate` bounds one event loop: a process answering alone, or one Dask worker. On a
cluster, each worker's gate holds that worker's share of the endpoint's limit, a share
the client computes from the cluster's task slots and sends with every batch (see
`fanout`). No lease lives on the scheduler: when a worker dies, its share dies with it
and the next batches give the survivors more. (A scheduler-side `distributed.Semaphore`
did this before; a killed worker's leases then blocked every request for ~70 s, until
Dask's lease timeout, and fresh leases expired unrefreshed on busy workers.)

A rate limit is a pace: leases start `min_hold / limit` seconds apart, so the gate starts
at most `limit / min_hold` requests a second, evenly rather than `limit` at once (a rate
limiter whose burst allowance is spent refuses a burst).

A 429 or 503 (throttled) speaks for the endpoint, not for one request: the gate starts no
lease for the server's Retry-After, and under `auto` (`pause` > 0) none until the
controller has answered with a cut (or `pause` seconds passed), so a worker stops
sending the moment it hears it is too fast rather than an event round trip later.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Lease:
    epoch: int = 0  # the gate's epoch when it was given (see `adaptive`)


class LocalGate:
    """At most `limit` leases at once within this event loop, started at most
    `limit / min_hold` a second; `resize` changes both for leases given from then on
    (a shrink lets the excess drain).

    `clock` tells the time for the pace, a Retry-After and a pause; the gate waits on its
    event loop's timers, so it must be that loop's clock: `time.monotonic` is the standard
    loops' `loop.time`, and a test on a virtual-time loop passes that loop's `time`."""

    def __init__(
        self,
        limit: int,
        min_hold: float = 0.0,
        pause: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = max(1, limit)
        self.min_hold = min_hold
        self.pause = pause  # `auto`: the longest wait for the controller after a throttle
        self.epoch = 0  # how many times an `auto` level changed, as far as this gate knows
        self.cut_epoch = 0  # the epoch of the controller's last cut
        self.held = 0
        self._clock = clock
        self._resume_at = 0.0  # no lease starts before this (on `clock`): a Retry-After
        self._paused_for: int | None = None  # ... nor until a cut after this epoch
        self._paused_until = 0.0  # ... or until this
        self._next_start = 0.0  # the pace: the earliest start of the next lease
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._wakeup: asyncio.Future[None] | None = None

    def resize(self, limit: int, min_hold: float) -> None:
        self.limit, self.min_hold = max(1, limit), min_hold
        self._wake()

    def adopt(self, limit: int, min_hold: float, epoch: int, cut_epoch: int = 0) -> None:
        """Take a share the client sent, unless it is older than the one held; a cut
        after the throttle that paused the gate ends the pause."""
        if epoch < self.epoch:
            return
        self.epoch, self.cut_epoch = epoch, max(self.cut_epoch, cut_epoch)
        if self._paused_for is not None and self.cut_epoch > self._paused_for:
            self._paused_for = None
            self._ring()
        if (self.limit, self.min_hold) != (max(1, limit), min_hold):
            self.resize(limit, min_hold)

    def throttled(self, lease: Lease, retry_after: float | None) -> None:
        """The request under `lease` was refused as one too many (429, 503)."""
        now = self._clock()
        if retry_after:
            self._resume_at = max(self._resume_at, now + retry_after)
        # news to the controller (sent since its last cut): wait for its answer
        if self.pause and self._paused_for is None and lease.epoch >= self.cut_epoch:
            self._paused_for, self._paused_until = lease.epoch, now + self.pause

    async def acquire(self) -> Lease:
        if self.held < self.limit and not self._waiters:
            self.held += 1
        else:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            try:
                await fut
            except asyncio.CancelledError:
                if fut.done() and not fut.cancelled():
                    self._free()  # handed a lease just as we were cancelled
                raise
        try:
            await self._turn()
        except asyncio.CancelledError:
            self._free()
            raise
        return Lease(epoch=self.epoch)

    async def _turn(self) -> None:
        """Wait for this lease's turn under the pace, a Retry-After and a pause."""
        while True:
            now = self._clock()
            if self._paused_for is not None and now >= self._paused_until:
                self._paused_for = None  # the controller did not answer in time
            paused = self._paused_until if self._paused_for is not None else 0.0
            wait = max(self._resume_at, paused, self._next_start) - now
            if wait <= 0:
                break
            if self._wakeup is None or self._wakeup.done():
                self._wakeup = asyncio.get_running_loop().create_future()
            try:  # a pause's end rings early
                await asyncio.wait_for(asyncio.shield(self._wakeup), wait)
            except TimeoutError:
                pass
        if self.min_hold:
            interval = self.min_hold / self.limit
            # on the schedule, not from the moment this lease woke: the event loop wakes
            # a few ms late, which would otherwise slow the pace by as much each time
            on_time = now - self._next_start < interval
            self._next_start = (self._next_start if on_time else now) + interval

    def _ring(self) -> None:
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    def release(self, lease: Lease) -> None:
        self._free()

    def _free(self) -> None:
        self.held -= 1
        self._wake()

    def _wake(self) -> None:
        while self.held < self.limit and self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                self.held += 1
                fut.set_result(None)


_GATES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, LocalGate]] = (
    weakref.WeakKeyDictionary()
)


def loop_gate(
    name: str,
    limit: int,
    min_hold: float,
    epoch: int = 0,
    cut_epoch: int = 0,
    pause: float = 0.0,
) -> LocalGate:
    """The gate `name` of the running event loop (one per endpoint and worker), set to the
    newest share it was given (by epoch): every batch a worker runs for the endpoint
    shares it."""
    gates = _GATES.setdefault(asyncio.get_running_loop(), {})
    gate = gates.get(name)
    if gate is None:
        gate = gates[name] = LocalGate(limit, min_hold, pause)
        gate.epoch, gate.cut_epoch = epoch, cut_epoch
    else:
        gate.pause = pause
        gate.adopt(limit, min_hold, epoch, cut_epoch)
    return gate
