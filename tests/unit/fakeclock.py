"""An injected clock for tests: it moves only when told to."""

from __future__ import annotations

START = 1_800_000_000.0  # 2027-01-15T08:00:00Z


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        self.now += seconds
