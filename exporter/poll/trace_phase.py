"""The trace phase of a poll: fetch the details of a source's pending runs, submit their spans.

Runs are taken failures first, within a time budget per cycle and while the span queue has room;
the rest waits for a later cycle (`agent_runs_exporter_trace_backlog`). A detail fetch that fails
is retried in later cycles up to `MAX_DETAIL_ATTEMPTS` times, then the run is traced without its
tool steps and counted in `runs_skipped_total{reason="detail_failed"}`. One the request budget
defers is not a failure.

Then `settle` marks done the runs whose spans the span queue is done with:

    poller ──submit(spans, Sent)──► span queue ──► collector
       ▲                                │
       └── settle(): exported → trace done, tool metrics recorded (one transaction with them)
                     dropped  → back in the backlog, up to `max_attempts` times

A run is marked done only once the collector accepted its spans, so a crash before that leaves it
pending in the state file, and its spans are sent again, with identical ids.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

from exporter.errors import ExporterError, MalformedPageError, RateLimitedError, SourceError
from exporter.model import Run, SourceInfo
from exporter.poll.discovery import SourceRuntime
from exporter.poll.records import RunRecord
from exporter.poll.tracker import Tracker
from exporter.sinks.metrics.runs import RunMetrics
from exporter.sinks.metrics.selfmetrics import SelfMetrics
from exporter.sinks.traces.sink import TraceSink
from exporter.sources.base import Source

log = logging.getLogger(__name__)

MAX_DETAIL_ATTEMPTS = 3
TRACE_CHUNK = 200


class TracePhase:
    """Trace pending runs of a source within a budget of time, requests and queue room."""

    def __init__(
        self,
        *,
        tracker: Tracker,
        self_metrics: SelfMetrics,
        traces: TraceSink,
        clock: Callable[[], float],
        budget_s: float,
        detail_concurrency: int,
    ) -> None:
        self.tracker = tracker
        self.metrics = self_metrics
        self.traces = traces
        self.clock = clock
        self.budget_s = budget_s
        self.detail_concurrency = detail_concurrency

    async def run(
        self, runtime: SourceRuntime, commit: Callable[[], None], budget_s: float | None = None
    ) -> int:
        """Fetch details and submit spans of the source's pending runs; return how many.

        Runs are taken failures first, in chunks, each followed by `commit`. Past the time
        budget (`budget_s`, default the phase's own) the rest waits for the next cycle, so a
        backlog never delays polling. A run whose detail is not complete yet (`detail_ready`)
        waits too.
        """
        name = runtime.info.name
        before, now = self.tracker.trace_backlog(name), self.clock()
        pending = [
            record
            for record in self.tracker.pending_traces(name)
            if record.detail_read
            or record.run is None
            or detail_ready(record.run, now, runtime.source)
        ]
        if pending:
            deadline = self.clock() + (self.budget_s if budget_s is None else budget_s)
            for start in range(0, len(pending), TRACE_CHUNK):
                if start and self.clock() > deadline:
                    break
                await self._trace_chunk(runtime, pending[start : start + TRACE_CHUNK], deadline)
                commit()
        return before - self.tracker.trace_backlog(name)

    async def _trace_chunk(
        self, runtime: SourceRuntime, records: list[RunRecord], deadline: float
    ) -> None:
        limit = asyncio.Semaphore(self.detail_concurrency)
        traces = self.traces

        async def one(record: RunRecord) -> None:
            async with limit:
                # Past the budget, or with the span queue full, the trace waits for a later cycle.
                if self.clock() <= deadline and traces.has_room():
                    await self._trace_run(runtime, record)

        await asyncio.gather(*(one(record) for record in records))
        runtime.health.last_progress = self.clock()

    async def _trace_run(self, runtime: SourceRuntime, record: RunRecord) -> None:
        assert record.run is not None
        info = runtime.info
        try:
            run = await _detail(runtime, record)
        except ExporterError as exc:
            if isinstance(exc, RateLimitedError) and exc.budget:
                return  # no request budget left before the deadline: nothing failed, it waits
            reason = getattr(exc, "reason", "malformed_item")
            self.metrics.poll_errors.labels(info.name, reason).inc()
            # A truncated or garbled detail body is worth another try in a later cycle.
            retryable = isinstance(exc, MalformedPageError) or (
                isinstance(exc, SourceError) and exc.retryable
            )
            if retryable and self.tracker.trace_failed(record) < MAX_DETAIL_ATTEMPTS:
                return
            log.warning(
                "run %s of source %s: no tool trace (%s): %s", record.run_id, info.name, reason, exc
            )
            self.metrics.runs_skipped.labels(info.name, "detail_failed").inc()
            run = replace(record.run, tool_steps=None)
        name = runtime.directory.name(run.agent_id)
        self._export(info, replace(run, agent_name=run.agent_name or name), record)

    def _export(self, info: SourceInfo, run: Run, record: RunRecord) -> None:
        assert record.run is not None
        self.traces.submit(info, run, Sent(info, record, run, record.run))
        self.tracker.trace_sent(record)


def detail_ready(run: Run, now: float, source: Source) -> bool:
    """Say whether the run ended long enough ago for its detail to hold every event.

    ElizaOS files model calls up to seconds after `RUN_ENDED` (the source's `detail_delay_s`).
    """
    delay = float(getattr(source, "detail_delay_s", 0.0) or 0.0)
    end = run.end_time
    return delay <= 0 or end is None or end <= now - delay


async def _detail(runtime: SourceRuntime, record: RunRecord) -> Run:
    """Return the run with its detail, read now unless the outcome phase already read it."""
    assert record.run is not None
    if record.detail_read:
        return record.run
    return await runtime.source.fetch_detail(record.run)


@dataclass(frozen=True, slots=True)
class Sent:
    """A run whose spans are in the span queue, waiting to be settled."""

    info: SourceInfo
    record: RunRecord
    run: Run  # with its detail
    listed: Run  # as the list showed it


def settle(traces: TraceSink, tracker: Tracker, run_metrics: RunMetrics, max_attempts: int) -> None:
    """Mark done the runs whose spans were exported; put dropped ones back in the backlog."""
    for settled in traces.settled():
        sent = settled.key
        if not isinstance(sent, Sent):
            continue
        if not settled.exported and tracker.trace_failed(sent.record) < max_attempts:
            tracker.trace_retry(sent.record)  # dropped from a full queue: try again later
            continue
        run_metrics.record_detail(sent.info.name, sent.info.platform, sent.run, sent.listed)
        tracker.trace_done(sent.record)
