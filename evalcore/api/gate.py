"""In-flight bounds for one endpoint: a request holds a lease while it is on the wire.

A `LocalGate` bounds one event loop: a process answering alone, or one Dask worker. On a
cluster, each worker's gate holds that worker's share of the endpoint's limit, a share
the client computes from the cluster's task slots and sends with every batch (see
`fanout`). No lease lives on the scheduler: when a worker dies, its share dies with it
and the next batches give the survivors more. (A scheduler-side `distributed.Semaphore`
did this before; a killed worker's leases then blocked every request for ~70 s, until
Dask's lease timeout, and fresh leases expired unrefreshed on busy workers.)

A rate limit is a minimum hold: a lease starts at most one request per `min_hold`
seconds, so N leases cannot start more than N / min_hold requests a second.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections import deque
from dataclasses import dataclass


@dataclass
class Lease:
    started: float  # when its request started (monotonic)
    epoch: int = 0  # the gate's epoch when it was given (see `adaptive`)


class LocalGate:
    """At most `limit` leases at once within this event loop; `resize` changes the limit
    and the minimum hold of leases given from then on (a shrink lets the excess drain)."""

    def __init__(self, limit: int, min_hold: float = 0.0) -> None:
        self.limit = max(1, limit)
        self.min_hold = min_hold
        self.epoch = 0  # how many times an `auto` level changed, as far as this gate knows
        self.held = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    def resize(self, limit: int, min_hold: float) -> None:
        self.limit, self.min_hold = max(1, limit), min_hold
        self._wake()

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
        return Lease(started=time.monotonic(), epoch=self.epoch)

    def release(self, lease: Lease) -> None:
        wait = self.min_hold - (time.monotonic() - lease.started)
        if wait > 0:
            asyncio.get_running_loop().call_later(wait, self._free)
        else:
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


def loop_gate(name: str, limit: int, min_hold: float, epoch: int = 0) -> LocalGate:
    """The gate `name` of the running event loop (one per endpoint and worker), set to the
    newest share it was given (by epoch): every batch a worker runs for the endpoint
    shares it."""
    gates = _GATES.setdefault(asyncio.get_running_loop(), {})
    gate = gates.get(name)
    if gate is None:
        gate = gates[name] = LocalGate(limit, min_hold)
        gate.epoch = epoch
    elif epoch >= gate.epoch and (gate.limit, gate.min_hold) != (max(1, limit), min_hold):
        gate.resize(limit, min_hold)
        gate.epoch = epoch
    return gate
