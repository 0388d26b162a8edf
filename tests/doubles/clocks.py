"""Clocks a test moves by hand, so timing logic is checked in exact, load-proof time.

`FakeClock` stands in for `time.monotonic` (and `time.sleep`, which only moves it).
`virtual_time` runs a coroutine on an event loop whose clock jumps to the next timer
whenever every task waits: `asyncio.sleep(5)` returns at once, 5 s later on
`loop.time()`, and code under test that is given `loop.time` as its clock sees the same.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class FakeClock:
    """Seconds since the test began; only `sleep` and `advance` move it."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)


class _NoWaitSelector(selectors.DefaultSelector):
    """Polls the loop's file descriptors without blocking; a wait for a timer moves the
    virtual clock to it instead."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self._clock = clock

    def select(self, timeout: float | None = None):
        if timeout is not None and timeout > 0:
            self._clock.advance(timeout)
            timeout = 0
        return super().select(timeout)


class _VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        self.clock = FakeClock()
        super().__init__(_NoWaitSelector(self.clock))

    def time(self) -> float:
        return self.clock()


def virtual_time(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)` on a loop whose clock starts at 0 and moves only to timers."""
    with asyncio.Runner(loop_factory=_VirtualTimeLoop) as runner:
        return runner.run(main)
