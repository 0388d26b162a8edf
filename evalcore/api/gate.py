"""In-flight bounds for one endpoint: a request holds a lease while it is on the wire.

`LocalGate` bounds one process. `ClusterGate` bounds a whole Dask cluster through a
`distributed.Semaphore` on the scheduler, but does not pay a scheduler round trip per
request: each worker keeps the leases it has acquired and hands them from one request
to the next while it has requests waiting, returning a lease when it has none waiting or
after holding it `rotate_after` seconds (so other workers and other evaluations sharing
the endpoint get their turn). A plain per-request acquire would wake every waiter on
every release (the scheduler's semaphore uses one event per name), which at hundreds of
requests a second costs more scheduler CPU than the requests themselves.

A rate limit is a minimum hold: a lease starts at most one request per `min_hold`
seconds, so N leases cannot start more than N / min_hold requests a second.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass
class Lease:
    acquired: float  # when this process got it from the scheduler (monotonic)
    started: float = 0.0  # when its current request started


class LocalGate:
    """At most `limit` leases at once within this process and event loop."""

    def __init__(self, limit: int, min_hold: float = 0.0) -> None:
        self._sem = asyncio.Semaphore(limit)
        self.min_hold = min_hold

    async def acquire(self) -> Lease:
        await self._sem.acquire()
        now = time.monotonic()
        return Lease(acquired=now, started=now)

    def release(self, lease: Lease) -> None:
        wait = self.min_hold - (time.monotonic() - lease.started)
        if wait > 0:
            asyncio.get_running_loop().call_later(wait, self._sem.release)
        else:
            self._sem.release()


class ClusterGate:
    """At most `limit` leases at once across every worker of a Dask cluster.

    Must be created and used on a Dask worker's event loop (inside an async task)."""

    def __init__(
        self,
        name: str,
        limit: int,
        min_hold: float = 0.0,
        rotate_after: float = 5.0,
        parallel_acquires: int = 8,
    ) -> None:
        from distributed import Semaphore

        self._sem = Semaphore(max_leases=limit, name=name)
        self.min_hold = min_hold
        self.rotate_after = rotate_after
        self.parallel_acquires = parallel_acquires
        self._waiters: deque[asyncio.Future[Lease]] = deque()  # may hold cancelled ones
        self._waiting = 0  # futures in _waiters still waiting for a lease
        self._acquiring = 0
        self.held = 0  # leases this process holds from the scheduler
        self.scheduler_calls = 0

    async def acquire(self) -> Lease:
        fut: asyncio.Future[Lease] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        self._waiting += 1
        self._top_up()
        try:
            lease = await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self._recycle(fut.result())  # handed a lease just as we were cancelled
            else:
                self._waiting -= 1
            raise
        lease.started = time.monotonic()
        return lease

    def release(self, lease: Lease) -> None:
        wait = self.min_hold - (time.monotonic() - lease.started)
        if wait > 0:
            asyncio.get_running_loop().call_later(wait, self._recycle, lease)
        else:
            self._recycle(lease)

    # -- internals ---------------------------------------------------------------------
    def _top_up(self) -> None:
        """Keep a few acquires outstanding while requests wait (few, so that the
        scheduler's wake-everyone semaphore has few waiters)."""
        want = min(self._waiting, self.parallel_acquires)
        while self._acquiring < want:
            self._acquiring += 1
            asyncio.ensure_future(self._acquire_one())

    async def _acquire_one(self) -> None:
        try:
            self.scheduler_calls += 1
            await self._sem.acquire()
        except Exception as exc:  # scheduler gone: fail the waiters rather than hang
            self._acquiring -= 1
            while self._waiters:
                fut = self._waiters.popleft()
                if not fut.done():
                    self._waiting -= 1
                    fut.set_exception(exc)
            return
        self._acquiring -= 1
        self.held += 1
        self._hand(Lease(acquired=time.monotonic()))
        self._top_up()

    def _hand(self, lease: Lease) -> None:
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                self._waiting -= 1
                fut.set_result(lease)
                return
        self._give_back()

    def _recycle(self, lease: Lease) -> None:
        if self._waiting and time.monotonic() - lease.acquired < self.rotate_after:
            self._hand(lease)
        else:
            self._give_back()
            self._top_up()

    def _give_back(self) -> None:
        self.held -= 1
        self.scheduler_calls += 1
        asyncio.ensure_future(self._release_one())

    async def _release_one(self) -> None:
        try:
            await self._sem.release()
        except Exception:  # the scheduler expires an unrefreshed lease by itself
            log.warning("could not return a semaphore lease; the scheduler will expire it")
