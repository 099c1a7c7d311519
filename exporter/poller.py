"""The poll loop: read every agent's new runs, count them once, export traces, commit state.

One task per source, so a slow or failing source never delays the others. Each cycle ends with one
state transaction; the run metrics become visible only after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial

from exporter import discovery
from exporter.discovery import AgentDirectory
from exporter.errors import (
    ExporterError,
    MalformedPageError,
    PermanentError,
    RateLimitedError,
    SourceError,
    StateError,
)
from exporter.health import SourceHealth
from exporter.ids import run_trace_id
from exporter.model import Run
from exporter.selfmetrics import SelfMetrics
from exporter.settling import Sent, settle
from exporter.sharding import ShardingSettings
from exporter.sinks.metrics import RunMetrics
from exporter.sinks.spans import SourceInfo
from exporter.sinks.traces import TraceSink
from exporter.skips import SkipLedger
from exporter.sources.base import Page, Source
from exporter.state import RunRecord, StateBatch, StateStore
from exporter.tracker import Outcome, Tracker

log = logging.getLogger(__name__)

MAX_DETAIL_ATTEMPTS = 3
AGENT_CONCURRENCY = 4
TRACE_CHUNK = 200


@dataclass(slots=True)
class SourceRuntime:
    """A configured source with its agents, span identity and health.

    `agents` are the configured agent ids; None means they are discovered from the platform.
    """

    source: Source
    agents: list[str] | None
    info: SourceInfo
    health: SourceHealth
    max_pages: int = 1000
    discovery_interval_s: float = 600.0
    sharding: ShardingSettings = field(default_factory=ShardingSettings)
    counted: int = 0
    directory: AgentDirectory = field(init=False)

    def __post_init__(self) -> None:
        keep = partial(self.sharding.owns, self.info.name)
        self.directory = AgentDirectory(self.agents, self.discovery_interval_s, keep=keep)


class Poller:
    """Drives every source on a schedule and moves runs into the tracker and sinks."""

    def __init__(
        self,
        *,
        tracker: Tracker,
        store: StateStore,
        run_metrics: RunMetrics,
        self_metrics: SelfMetrics,
        traces: TraceSink | None,
        clock: Callable[[], float],
        poll_interval_s: float,
        detail_concurrency: int = 4,
    ) -> None:
        self.tracker = tracker
        self.store = store
        self.run_metrics = run_metrics
        self.metrics = self_metrics
        self.traces = traces
        self.clock = clock
        self.poll_interval_s = poll_interval_s
        self.detail_concurrency = detail_concurrency
        self.trace_budget_s = max(2 * poll_interval_s, 10.0)
        self.skips = SkipLedger()

    async def run(self, sources: list[SourceRuntime], stop: asyncio.Event) -> None:
        """Poll every source until `stop` is set."""
        async with asyncio.TaskGroup() as group:
            for runtime in sources:
                group.create_task(self._loop(runtime, stop), name=f"poll-{runtime.info.name}")

    async def _loop(self, runtime: SourceRuntime, stop: asyncio.Event) -> None:
        while not stop.is_set():
            started = self.clock()
            try:
                await self.poll_once(runtime)
            except Exception:  # the loop edge: log, count, go on
                log.exception("poll of source %s failed unexpectedly", runtime.info.name)
                self.metrics.poll_errors.labels(runtime.info.name, "internal").inc()
            wait = max(0.0, self.poll_interval_s - (self.clock() - started))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=wait)

    async def poll_once(self, runtime: SourceRuntime) -> bool:
        """Run one cycle for a source: every agent, pending traces, expiry, commit."""
        started = self.clock()
        counted_before = runtime.counted
        listed = await self._discover(runtime)
        if not runtime.directory.ids and not runtime.directory.others:
            return self._record_health(runtime, False, started)
        limit = asyncio.Semaphore(AGENT_CONCURRENCY)

        async def one(agent_id: str) -> bool:
            async with limit:
                return await self._poll_agent(runtime, agent_id)

        results = await asyncio.gather(*(one(agent) for agent in runtime.directory.ids))
        self.commit()  # counts are durable and published before the (budget-bound) trace phase
        await discovery.learn_names(runtime.directory, runtime.source, runtime.info.name)
        traced = await self._export_traces(runtime)
        self.commit()
        self._report(runtime, runtime.counted - counted_before, traced, started)
        return self._record_health(runtime, listed and all(results), started)

    async def _discover(self, runtime: SourceRuntime) -> bool:
        """Refresh a discovering source's agent list when due; False if that failed."""
        try:
            new = await discovery.refresh(runtime.directory, runtime.source, self.clock())
        except SourceError as exc:
            self._poll_failed(runtime, "(agent listing)", exc)
            return False
        for agent_id in new:
            self.declare(runtime, agent_id)
        return True

    def declare(self, runtime: SourceRuntime, agent_id: str) -> None:
        """Start an agent's run metrics at zero for the label sets its platform reports."""
        source = runtime.source
        self.run_metrics.declare_agent(
            runtime.info.name,
            runtime.info.platform,
            agent_id,
            statuses=source.terminal_statuses,
            dispositions=source.dispositions,
            token_types=source.token_types,
            has_cost=source.has_cost,
        )

    def _report(self, runtime: SourceRuntime, counted: int, traced: int, started: float) -> None:
        # The first cycle may read a whole lookback window: say what it did at info level.
        level = logging.INFO if runtime.health.last_cycle is None else logging.DEBUG
        log.log(
            level,
            "poll of source %s: %d runs counted, %d traces exported, %d pending, %.1fs",
            runtime.info.name,
            counted,
            traced,
            self.tracker.trace_backlog(runtime.info.name),
            self.clock() - started,
        )

    def _record_health(self, runtime: SourceRuntime, ok: bool, started: float) -> bool:
        name = runtime.info.name
        now = self.clock()
        runtime.health.last_cycle = now
        self.metrics.poll_duration.labels(name).observe(max(0.0, now - started))
        self.metrics.up.labels(name).set(1 if ok else 0)
        if ok:
            runtime.health.last_success = now
            runtime.health.last_error = None
            self.metrics.last_success.labels(name).set(now)
        return ok

    async def _poll_agent(self, runtime: SourceRuntime, agent_id: str) -> bool:
        name = runtime.info.name
        now = self.clock()
        stop_below = self.tracker.window(name, agent_id, now)
        newest: float | None = None
        try:
            pages = 0
            async with contextlib.aclosing(runtime.source.pages(agent_id)) as stream:
                async for page in stream:
                    pages += 1
                    newest = self._ingest(runtime, page, now, newest)
                    if not page.has_more or _reaches(page, stop_below):
                        break
                    if pages >= runtime.max_pages:
                        self._page_cap(runtime, agent_id, pages)
                        return False
        except SourceError as exc:
            self._poll_failed(runtime, agent_id, exc)
            return False
        if page.history_cut:
            self._check_gap(runtime, agent_id, page)
        self.tracker.finish_agent(name, agent_id, newest, now)
        return True

    def _check_gap(self, runtime: SourceRuntime, agent_id: str, page: Page) -> None:
        """Count a possible gap when the only visible page stops short of runs read before."""
        high_water = self.tracker.high_water(runtime.info.name, agent_id)
        if high_water is None or not page.runs:
            return
        if min(run.created_at for run in page.runs) <= high_water:  # it overlaps what was read
            return
        self.metrics.page_gaps.labels(runtime.info.name).inc()
        log.warning(
            "source %s agent %s: all %d visible runs are newer than the last poll, and the "
            "platform shows no older page: runs in between may be missed. Poll faster "
            "(poll_interval is %gs) or raise page_size.",
            runtime.info.name,
            agent_id,
            len(page.runs),
            self.poll_interval_s,
        )

    def _ingest(
        self, runtime: SourceRuntime, page: Page, now: float, newest: float | None
    ) -> float | None:
        info = runtime.info
        runtime.health.last_progress = self.clock()
        for skip in page.skips:
            if self.skips.first(info.name, skip):
                self.metrics.runs_skipped.labels(info.name, skip.reason).inc()
                log.warning(
                    "source %s: skipping a run (%s%s): %s",
                    info.name,
                    skip.reason,
                    f" {skip.item_id}" if skip.item_id else "",
                    skip.message,
                )
        for run in page.runs:
            if newest is None or run.created_at > newest:
                newest = run.created_at
            if self.tracker.observe(info.name, run, now) is Outcome.NEW_TERMINAL:
                runtime.counted += 1
                trace_id = run_trace_id(info.name, run.id, run.trace_id)
                self.run_metrics.record_run(info.name, info.platform, run, trace_id, now)
        return newest

    def _poll_failed(self, runtime: SourceRuntime, agent_id: str, exc: SourceError) -> None:
        name = runtime.info.name
        self.metrics.poll_errors.labels(name, exc.reason).inc()
        runtime.health.last_error = exc.reason
        runtime.health.last_error_message = str(exc)
        level = logging.ERROR if isinstance(exc, PermanentError) else logging.WARNING
        log.log(level, "source %s agent %s: poll failed (%s): %s", name, agent_id, exc.reason, exc)

    def _page_cap(self, runtime: SourceRuntime, agent_id: str, pages: int) -> None:
        name = runtime.info.name
        self.metrics.poll_errors.labels(name, "page_cap").inc()
        runtime.health.last_error = "page_cap"
        log.warning(
            "source %s agent %s: stopped after %d pages (max_pages_per_poll); older runs were "
            "not read this poll. Raise max_pages_per_poll or shorten lookback if this repeats.",
            name,
            agent_id,
            pages,
        )

    async def _export_traces(self, runtime: SourceRuntime) -> int:
        """Fetch details and export spans of pending runs; return how many were traced.

        Runs are taken failures first, in chunks, each followed by a commit. Past the cycle's
        time budget the rest waits for the next cycle, so a backlog never delays polling.
        """
        name = runtime.info.name
        pending = self.tracker.pending_traces(name)
        if self.traces is not None and pending:
            deadline = self.clock() + self.trace_budget_s
            for start in range(0, len(pending), TRACE_CHUNK):
                if start and self.clock() > deadline:
                    break
                await self._trace_chunk(runtime, pending[start : start + TRACE_CHUNK], deadline)
                self.commit()
        backlog = self.tracker.trace_backlog(name)
        self.metrics.trace_backlog.labels(name).set(backlog)
        return len(pending) - backlog

    async def _trace_chunk(
        self, runtime: SourceRuntime, records: list[RunRecord], deadline: float
    ) -> None:
        limit = asyncio.Semaphore(self.detail_concurrency)
        assert self.traces is not None
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
            run = await runtime.source.fetch_detail(record.run)
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
        assert self.traces is not None
        assert record.run is not None
        self.traces.submit(info, run, Sent(info, record, run, record.run))
        self.tracker.trace_sent(record)

    def commit(self) -> None:
        """Write every change since the last commit in one transaction, then publish metrics."""
        now = self.clock()
        if self.traces is not None:  # traces the collector has are done in this transaction
            settle(self.traces, self.tracker, self.run_metrics, MAX_DETAIL_ATTEMPTS)
        for record in self.tracker.expire(now):
            self.metrics.runs_skipped.labels(record.source, "in_flight_expired").inc()
        batch = StateBatch()
        self.tracker.drain(batch)
        self.run_metrics.drain(batch)
        if batch or self.store.problem:  # a failed commit is retried, even with nothing new
            try:
                self.store.commit(batch, prune_before=self.tracker.prune_before(now))
            except StateError as exc:
                log.error("%s; going on from memory", exc)
        self.run_metrics.publish()
        self.metrics.tracked_runs.set(len(self.tracker))


def _reaches(page: Page, stop_below: float) -> bool:
    """Say whether a page reached runs older than everything still to be read."""
    return bool(page.runs) and min(run.created_at for run in page.runs) < stop_below
