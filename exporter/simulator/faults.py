"""Decide which requests the fake server refuses or spoils: Conduit's quota and injected faults.

Checked in this order, one roll of the fault RNG per request:

    workspace quota (rate_limit per clock minute) -> 429, Retry-After = seconds to the next minute
    injected throttle (throttle_ratio)            -> 429, Retry-After = retry_after
    injected error (error_ratio)                  -> 500 | 502 | 503
    injected slowness (slow_ratio)                -> answered after slow_seconds (past a timeout)
    injected malformed body (malformed_ratio)     -> 200 with the body cut in half

The injection RNG is seeded separately from the world's, so faults never change the runs.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from exporter.simulator.settings import SimulatorSettings

_SERVER_ERRORS = (
    (500, "Internal server error"),
    (502, "Bad gateway"),
    (503, "Service unavailable"),
)
_FAULT_SEED_SALT = 0x5EED


@dataclass(frozen=True, slots=True)
class Refusal:
    """An error answer chosen instead of serving the request."""

    status: int
    error: str
    retry_after: int | None = None


@dataclass(frozen=True, slots=True)
class Spoil:
    """A request served, but late or with a malformed body."""

    delay: float = 0.0
    malformed: bool = False


@dataclass(frozen=True, slots=True)
class FaultKnobs:
    """Fault settings that can change while the server runs."""

    latency: float = 0.0
    error_ratio: float = 0.0
    throttle_ratio: float = 0.0
    retry_after: int = 1
    rate_limit: int | None = None
    slow_ratio: float = 0.0
    slow_seconds: float = 5.0
    malformed_ratio: float = 0.0

    @classmethod
    def from_settings(cls, settings: SimulatorSettings) -> FaultKnobs:
        """Take the fault knobs out of the simulator settings."""
        return cls(
            latency=settings.latency,
            error_ratio=settings.error_ratio,
            throttle_ratio=settings.throttle_ratio,
            retry_after=settings.retry_after,
            rate_limit=settings.rate_limit,
            slow_ratio=settings.slow_ratio,
            slow_seconds=settings.slow_seconds,
            malformed_ratio=settings.malformed_ratio,
        )

    def updated(self, changes: Mapping[str, Any]) -> FaultKnobs:
        """Return a copy with `changes` applied, or raise ValueError naming every bad key."""
        problems = [_problem(name, value) for name, value in changes.items()]
        errors = [problem for problem in problems if problem]
        if errors:
            raise ValueError("; ".join(errors))
        return replace(self, **dict(changes))

    def as_dict(self) -> dict[str, Any]:
        """Return the knobs as a JSON-ready dict."""
        return asdict(self)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _problem(name: str, value: Any) -> str | None:
    if name in ("error_ratio", "throttle_ratio", "slow_ratio", "malformed_ratio"):
        ok = _is_number(value) and 0 <= value <= 1
        return None if ok else f"{name} must be a number in [0, 1]"
    if name in ("latency", "slow_seconds"):
        return None if _is_number(value) and value >= 0 else f"{name} must be a number >= 0"
    if name == "retry_after":
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        return None if ok else "retry_after must be an integer >= 0"
    if name == "rate_limit":
        ok = value is None or (isinstance(value, int) and not isinstance(value, bool) and value > 0)
        return None if ok else "rate_limit must be an integer >= 1 or null"
    return f"unknown fault knob {name!r}"


class Faults:
    """Choose refusals from the current knobs, a seeded RNG and a per-minute request quota."""

    def __init__(self, knobs: FaultKnobs, seed: int, clock: Callable[[], float]) -> None:
        self.knobs = knobs
        self._clock = clock
        self._rng = random.Random(seed ^ _FAULT_SEED_SALT)
        self._window = -1
        self._used = 0

    def refusal(self) -> Refusal | None:
        """Return the refusal for the next request, or None to serve it."""
        choice = self.choose()
        return choice if isinstance(choice, Refusal) else None

    def choose(self) -> Refusal | Spoil | None:
        """Return what happens to the next request: refused, spoiled, or None to serve it."""
        quota = self._quota()
        if quota is not None:
            return quota
        knobs, roll = self.knobs, self._rng.random()
        if roll < knobs.throttle_ratio:
            return Refusal(429, "Rate limit exceeded", knobs.retry_after)
        if (roll := roll - knobs.throttle_ratio) < knobs.error_ratio:
            status, message = self._rng.choice(_SERVER_ERRORS)
            return Refusal(status, message)
        if (roll := roll - knobs.error_ratio) < knobs.slow_ratio:
            return Spoil(delay=knobs.slow_seconds)
        if roll - knobs.slow_ratio < knobs.malformed_ratio:
            return Spoil(malformed=True)
        return None

    def _quota(self) -> Refusal | None:
        limit = self.knobs.rate_limit
        if limit is None:
            return None
        now = self._clock()
        window = math.floor(now / 60)
        if window != self._window:
            self._window, self._used = window, 0
        if self._used >= limit:
            wait = max(1, math.ceil((window + 1) * 60 - now))
            return Refusal(429, "Rate limit exceeded", wait)
        self._used += 1
        return None
