"""Per-source health, read by /healthz (is the loop alive?) and /readyz (is the data fresh?)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class SourceHealth:
    """What the poll loop last reported for one source."""

    name: str
    started_at: float
    last_cycle: float | None = None
    last_progress: float | None = None
    last_success: float | None = None
    last_error: str | None = None
    last_error_message: str | None = None

    @property
    def last_alive(self) -> float:
        """Return when the loop last showed life: a finished cycle, a page read, traces sent."""
        return max(self.started_at, self.last_cycle or 0.0, self.last_progress or 0.0)

    def readiness(self, now: float, stale_after_s: float) -> tuple[bool, str]:
        """Say whether the source's data is fresh, and why not."""
        if self.last_success is None:
            return False, self.last_error or "no successful poll yet"
        if now - self.last_success > stale_after_s:
            return False, f"stale: last successful poll {now - self.last_success:.0f}s ago" + (
                f" ({self.last_error})" if self.last_error else ""
            )
        return True, "ok"


class Health:
    """Liveness and readiness of the exporter as a whole."""

    def __init__(
        self, poll_interval_s: float, state_problem: Callable[[], str | None] = lambda: None
    ) -> None:
        self.sources: dict[str, SourceHealth] = {}
        self.state_problem = state_problem
        self.stall_after_s = max(10 * poll_interval_s, 120.0)
        self.stale_after_s = max(3 * poll_interval_s, 30.0)

    def add(self, name: str, now: float) -> SourceHealth:
        """Start tracking a source."""
        self.sources[name] = SourceHealth(name=name, started_at=now)
        return self.sources[name]

    def alive(self, now: float) -> tuple[bool, list[str]]:
        """Say whether every poll loop completed a cycle recently; name the stalled ones."""
        stalled = [h.name for h in self.sources.values() if now - h.last_alive > self.stall_after_s]
        return not stalled, stalled

    def ready(self, now: float) -> tuple[bool, dict[str, Any]]:
        """Say whether every source has fresh data, with a report per source."""
        report: dict[str, Any] = {}
        for h in self.sources.values():
            ok, reason = h.readiness(now, self.stale_after_s)
            report[h.name] = {"ready": ok, "reason": reason, "last_success": h.last_success}
        # With the state file unwritable, polling goes on from memory, but a restart would
        # recount runs: not ready, so a rollout stops and someone looks at the disk.
        ready = all(r["ready"] for r in report.values()) and self.state_problem() is None
        return ready, report

    def state(self) -> dict[str, Any]:
        """Report whether the state file takes commits, and why not."""
        problem = self.state_problem()
        return {"ok": problem is None, "reason": problem or "ok"}
