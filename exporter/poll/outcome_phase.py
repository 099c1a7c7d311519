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

A detail the request budget defers, or a 429, is no failure: the run waits for a later cycle,
past the lookback window if need be (kept by the tracker, bounded: see `Tracker.overdue_due`); one
that waited as long as it may is counted as listed, `runs_skipped_total{reason="detail_overdue"}`.
The outcome is read at once (`RUN_ENDED` is there when the run ends), but ElizaOS files some model
calls seconds later: a detail read within the source's `detail_delay_s` of the end counts the run
and is not reused for its trace, which the trace phase reads again once complete.

Stuck runs (in flight for longer than the source's `stuck_after_s`) are re-checked here too,
through their detail on the tracker's backoff, never more than `MAX_RECHECKS` a cycle; paging no
longer reaches back to them. A detail that shows the run ended counts it (ElizaOS lists runs that
ended `muted`, `self`, `off`, `replaced` or `noMessageId` as `started`: only the detail says).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace

from exporter.errors import (
    ExporterError,
    MalformedPageError,
    NotFoundError,
    RateLimitedError,
    SourceError,
)
from exporter.model import Run
from exporter.poll.discovery import SourceRuntime
from exporter.poll.records import RunRecord
from exporter.poll.trace_phase import MAX_DETAIL_ATTEMPTS, detail_ready
from exporter.poll.tracker import Tracker
from exporter.sinks.metrics.runs import RunMetrics
from exporter.sinks.metrics.selfmetrics import SelfMetrics
from exporter.sinks.traces.ids import trace_of
from exporter.sources.base import Source

log = logging.getLogger(__name__)

MAX_RECHECKS = 20


def outcome_in_detail(source: Source) -> bool:
    """Say whether the source's runs are counted only once their detail is read."""
    return bool(getattr(source, "outcome_in_detail", False))


def stuck_after(source: Source) -> float | None:
    """Return how long a run of the source may stay in flight before it is re-checked."""
    value = getattr(source, "stuck_after_s", None)
    return float(value) if value is not None else None


def _bare_run(record: RunRecord) -> Run:
    """Return what the tracker knows of a run it keeps no copy of (after a restart)."""
    status = record.status
    return Run(record.run_id, record.agent_id, status, status.value, record.created_at)


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
        before = runtime.counted
        self._give_up_overdue(runtime)
        waiting = self.tracker.awaiting_outcome(runtime.info.name)
        if not waiting:
            return runtime.counted - before
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

    def _give_up_overdue(self, runtime: SourceRuntime) -> None:
        """Count as listed the runs that waited for their detail as long as they may."""
        name = runtime.info.name
        overdue = self.tracker.overdue_due(name, self.clock())
        for record in overdue:
            assert record.run is not None
            self._count(runtime, record, replace(record.run, tool_steps=None))
        if overdue:
            self.metrics.runs_skipped.labels(name, "detail_overdue").inc(len(overdue))
            log.warning(
                "source %s: %d runs waited for their detail past the lookback window (the request "
                "budget or a 429 kept deferring it); counted as listed, so a failure among them "
                "counts as its listed status",
                name,
                len(overdue),
            )

    async def recheck_stuck(self, runtime: SourceRuntime) -> int:
        """Re-check the source's stuck runs that are due through their detail; return counted."""
        after = stuck_after(runtime.source)
        if after is None:
            return 0
        before = runtime.counted
        due = self.tracker.stuck(runtime.info.name, self.clock(), after)[:MAX_RECHECKS]
        limit = asyncio.Semaphore(self.detail_concurrency)

        async def one(record: RunRecord) -> None:
            async with limit:
                await self._recheck(runtime, record)

        await asyncio.gather(*(one(record) for record in due))
        return runtime.counted - before

    async def _recheck(self, runtime: SourceRuntime, record: RunRecord) -> None:
        info = runtime.info
        try:
            run = await runtime.source.fetch_detail(record.run or _bare_run(record))
        except ExporterError as exc:
            if isinstance(exc, RateLimitedError) and exc.budget:
                return  # nothing was sent: due again next cycle
            if not isinstance(exc, NotFoundError):  # no events yet is an answer, not an error
                self.metrics.poll_errors.labels(info.name, getattr(exc, "reason", "error")).inc()
            self.tracker.recheck_later(record, self.clock())
            return
        if not run.status.terminal:
            self.tracker.recheck_later(record, self.clock())
        elif self.tracker.count_checked(record, run, complete=self._complete(runtime, run)):
            self._record(runtime, run)

    def _count(self, runtime: SourceRuntime, record: RunRecord, run: Run) -> None:
        listed = record.run
        if listed is not None and not run.status.terminal:  # a detail cannot undo a listed end
            run = replace(run, status=listed.status, raw_status=listed.raw_status)
        if self.tracker.count_from_detail(record, run, complete=self._complete(runtime, run)):
            self._record(runtime, run)

    def _complete(self, runtime: SourceRuntime, run: Run) -> bool:
        """Say whether a detail read now holds every event (so its trace may reuse it)."""
        return run.tool_steps is not None and detail_ready(run, self.clock(), runtime.source)

    def _record(self, runtime: SourceRuntime, run: Run) -> None:
        """Publish a run just counted: the run metrics and its dropped fields."""
        info = runtime.info
        runtime.counted += 1
        self.metrics.count_invalid_fields(info.name, run)
        trace_id = trace_of(info.name, run)
        self.run_metrics.record_run(info.name, info.platform, run, trace_id, self.clock())
