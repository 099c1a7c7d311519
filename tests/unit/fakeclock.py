"""An injected clock for tests: it moves only when told to; and an event loop that runs on it."""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Mapping
from typing import Any

START = 1_800_000_000.0  # 2027-01-15T08:00:00Z
RESOLUTION_S = 1e-6


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        self.now += seconds


class VirtualSelector(selectors.BaseSelector):
    """A selector that, instead of sleeping until a timer, moves the fake clock to it."""

    def __init__(self, clock: FakeClock) -> None:
        self._inner = selectors.DefaultSelector()
        self._clock = clock

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        """Register `fileobj` with the real selector."""
        return self._inner.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        """Unregister `fileobj` from the real selector."""
        return self._inner.unregister(fileobj)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        """Return what is ready now; with nothing ready, jump the clock by `timeout`."""
        ready = self._inner.select(0)
        if ready:
            return ready
        if timeout is None:  # no timer at all: only another thread can wake the loop
            return self._inner.select(None)
        # Always a step: a timer 1e-7 s ahead is lost in rounding at 1.8e9 s, and a busy loop
        # waiting for a token to refill would wait for ever on a clock that does not move.
        self._clock.advance(max(timeout, RESOLUTION_S))
        return []

    def close(self) -> None:
        """Close the real selector."""
        self._inner.close()

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        """Return the real selector's map."""
        return self._inner.get_map()


class VirtualLoop(asyncio.SelectorEventLoop):
    """An event loop whose time is the fake clock's."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(VirtualSelector(clock))
        self._fake = clock

    def time(self) -> float:
        """Return the fake clock's reading."""
        return self._fake()
