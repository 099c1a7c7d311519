"""The throttle log: a source that waits out a `Retry-After` (or its own request budget) is quiet.

A 429 is a request that failed: it counts in `agent_runs_exporter_poll_errors_total` and logs one
warning, saying how long the source waits. The polls that come during the wait send nothing (the
budget refuses them before any request); they are not errors but deferrals, counted in
`agent_runs_exporter_polls_deferred_total{source,reason}` and logged at debug level:

    reason="retry_after"  inside the wait a 429's Retry-After asked for
    reason="budget"       the source's own request budget has no token before the deadline;
                          one warning per wait, at most one every BUDGET_WARNING_S (a fleet
                          larger than its budget defers polls all day: the plan's warning at
                          start already said why)
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from exporter.errors import RateLimitedError, SourceError
from exporter.sinks.metrics.selfmetrics import SelfMetrics

log = logging.getLogger(__name__)

BUDGET_WARNING_S = 600.0


class ThrottleLog:
    """Tell deferred polls from failed ones, and say each wait once."""

    def __init__(self, metrics: SelfMetrics, clock: Callable[[], float]) -> None:
        self.metrics = metrics
        self.clock = clock
        self._waits: dict[str, tuple[str, float]] = {}  # source: (reason, until)
        self._warned: dict[str, float] = {}  # source: when the budget was last said to be short

    def deferred(self, source: str, exc: SourceError) -> bool:
        """Count `exc` as a deferral and say so; False when it is a real failure (a request)."""
        if not isinstance(exc, RateLimitedError):
            return False
        now = self.clock()
        wait = exc.retry_after or 0.0
        if not exc.budget:  # a 429 answered: the caller counts and logs the failure
            self._waits[source] = ("retry_after", now + wait)
            return False
        reason, until = self._waits.get(source, ("budget", float("-inf")))
        if now >= until:
            reason = "budget"
            self._waits[source] = (reason, now + wait)
            self._say_budget(source, wait, now)
        else:
            log.debug("source %s: poll deferred (%s), %.0fs left", source, reason, until - now)
        self.metrics.polls_deferred.labels(source, reason).inc()
        return True

    def _say_budget(self, source: str, wait: float, now: float) -> None:
        """Warn that the budget defers polls, once per wait and at most every BUDGET_WARNING_S."""
        if now - self._warned.get(source, float("-inf")) < BUDGET_WARNING_S:
            log.debug("source %s: request budget exhausted, polls deferred %.0fs", source, wait)
            return
        self._warned[source] = now
        log.warning(
            "source %s: request budget exhausted, polls deferred for %.0fs "
            "(max_requests_per_minute; said at most every %.0fs, "
            "agent_runs_exporter_polls_deferred_total counts them all)",
            source,
            wait,
            BUDGET_WARNING_S,
        )
