"""Count the requests the fake Conduit server answered, for tests to assert on."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from typing import Any

from exporter.simulator.records import iso_ms


class RequestLog:
    """Count answered requests per (endpoint, status code) and per clock minute."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._by_endpoint: Counter[tuple[str, int]] = Counter()
        self._by_minute: Counter[int] = Counter()

    def record(self, endpoint: str, status: int, arrived: float | None = None) -> None:
        """Count one answered request in the minute it `arrived` (default: now)."""
        self._by_endpoint[(endpoint, status)] += 1
        self._by_minute[math.floor((self._clock() if arrived is None else arrived) / 60)] += 1

    def count(self, endpoint: str | None = None, status: int | None = None) -> int:
        """Return how many requests matched the endpoint and status (None matches any)."""
        return sum(
            number
            for (seen_endpoint, seen_status), number in self._by_endpoint.items()
            if endpoint in (None, seen_endpoint) and status in (None, seen_status)
        )

    def per_minute(self) -> dict[str, int]:
        """Return request counts keyed by the ISO start of each clock minute."""
        return {iso_ms(minute * 60_000): n for minute, n in sorted(self._by_minute.items())}

    def snapshot(self) -> dict[str, Any]:
        """Return every count as a JSON-ready dict."""
        by_endpoint = [
            {"endpoint": endpoint, "status": status, "count": number}
            for (endpoint, status), number in sorted(self._by_endpoint.items())
        ]
        return {"total": self.count(), "by_endpoint": by_endpoint, "per_minute": self.per_minute()}
