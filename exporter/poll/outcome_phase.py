"""The outcome phase of a poll: count the ended runs whose outcome only their detail tells.

ElizaOS records a failed run as `completed`, the error in its detail's `RUN_ENDED` event; such a
source says `outcome_in_detail`. The tracker keeps its ended runs waiting, uncounted; this phase
reads their details and counts each run as its detail shows it, traces on or off. When the run's
trace is kept, the trace phase uses that detail: one detail request per run either way.

    list: run ended ──► tracker: waiting ──► detail read ──► counted (failed if RUN_ENDED.error)
                                   │
                                   └── detail failed MAX_DETAIL_ATTEMPTS times (a permanent
                                       failure at once) ──► counted as listed,
                                       runs_skipped_total{reason="detail_failed"}

A detail the request budget defers, or a 429, is no failure: the run waits for a later cycle.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace

from exporter.errors import ExporterError, MalformedPageError, RateLimitedError, SourceError
from exporter.model import Run
from exporter.poll.discovery import SourceRuntime
from exporter.poll.state import RunRecord
from exporter.poll.trace_phase import MAX_DETAIL_ATTEMPTS
from exporter.poll.tracker import Tracker
from exporter.sinks.metrics.runs import RunMetrics
from exporter.sinks.metrics.selfmetrics import SelfMetrics
from exporter.sinks.traces.ids import run_trace_id
from exporter.sources.base import Source

log = logging.getLogger(__name__)


def outcome_in_detail(source: Source) -> bool:
    """Say whether the source's runs are counted only once their detail is read."""
    return bool(getattr(source, "outcome_in_detail", False))


class OutcomePhase:
    """Read the details of a source's waiting runs within a time budget, and count them."""

    def __init__(
        self,
        *,
        tracker: Tracker,
        run_metrics: RunMetrics,
        self_metrics: SelfMetrics,
        clock: Callable[[], float],
        budget_s: float,
        detail_concurrency: int,
    ) -> None:
        self.tracker = tracker
        self.run_metrics = run_metrics
        self.metrics = self_metrics
        self.clock = clock
        self.budget_s = budget_s
        self.detail_concurrency = detail_concurrency

    async def run(self, runtime: SourceRuntime) -> int:
        """Count the source's waiting runs whose detail can be read now; return how many."""
        waiting = self.tracker.awaiting_outcome(runtime.info.name)
        if not waiting:
            return 0
        before = runtime.counted
        deadline = self.clock() + self.budget_s
        limit = asyncio.Semaphore(self.detail_concurrency)

        async def one(record: RunRecord) -> None:
            async with limit:
                if self.clock() <= deadline:  # past the budget it waits for the next cycle
                    run = await self._read(runtime, record)
                    if run is not None:
                        self._count(runtime, record, run)

        await asyncio.gather(*(one(record) for record in waiting))
        return runtime.counted - before

    async def _read(self, runtime: SourceRuntime, record: RunRecord) -> Run | None:
        """Return the run as its detail shows it, as listed once given up, or None to wait."""
        assert record.run is not None
        name = runtime.info.name
        try:
            return await runtime.source.fetch_detail(record.run)
        except ExporterError as exc:
            if isinstance(exc, RateLimitedError) and exc.budget:
                return None  # no request budget left this cycle: nothing failed
            reason = getattr(exc, "reason", "malformed_item")
            self.metrics.poll_errors.labels(name, reason).inc()
            if isinstance(exc, RateLimitedError):
                return None  # throttled: waiting is the cure, not giving up
            retryable = isinstance(exc, MalformedPageError) or (
                isinstance(exc, SourceError) and exc.retryable
            )
            if retryable and self.tracker.trace_failed(record) < MAX_DETAIL_ATTEMPTS:
                return None
            log.warning(
                "run %s of source %s: outcome counted as listed, its detail failed (%s): %s",
                record.run_id,
                name,
                reason,
                exc,
            )
            self.metrics.runs_skipped.labels(name, "detail_failed").inc()
            return replace(record.run, tool_steps=None)

    def _count(self, runtime: SourceRuntime, record: RunRecord, run: Run) -> None:
        info, listed = runtime.info, record.run
        if listed is not None and not run.status.terminal:  # a detail cannot undo a listed end
            run = replace(run, status=listed.status, raw_status=listed.raw_status)
        if self.tracker.count_from_detail(record, run):
            runtime.counted += 1
            self.metrics.count_invalid_fields(info.name, run)
            trace_id = run_trace_id(info.name, run.id, run.trace_id)
            self.run_metrics.record_run(info.name, info.platform, run, trace_id, self.clock())
