"""The poll loop: read the due agents' new runs, count them once, export traces, commit state.

One task per source, so a slow or failing source never delays the others. A cycle is one round
of the source's schedule (`exporter.poll.schedule`) every poll_interval: the agents due then, all
of them when the request budget allows. Each cycle ends with one state transaction; the run
metrics become visible only after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from exporter.errors import SourceError, StateError
from exporter.poll import discovery
from exporter.poll.agent_poll import AgentPoll
from exporter.poll.capacity import PLANNED_SHARE, ListShare
from exporter.poll.discovery import SourceRuntime
from exporter.poll.outcome_phase import OutcomePhase
from exporter.poll.records import StateBatch
from exporter.poll.schedule import Plan
from exporter.poll.state import StateStore
from exporter.poll.throttle import ThrottleLog
from exporter.poll.trace_phase import MAX_DETAIL_ATTEMPTS, TracePhase, settle
from exporter.poll.tracker import Tracker
from exporter.sinks.metrics.runs import RunMetrics
from exporter.sinks.metrics.selfmetrics import SelfMetrics
from exporter.sinks.traces.sink import TraceSink
from exporter.sources.budget import Priority

log = logging.getLogger(__name__)

AGENT_CONCURRENCY = 4


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
        self._shares: dict[str, ListShare] = {}
        self._waited: dict[str, float] = {}
        self._name_allowance: dict[str, float] = {}  # name lookups earned, within a tight budget
        self._shown: dict[str, set[str]] = {}  # agents with a poll interval series
        self.throttle = ThrottleLog(self_metrics, clock)
        self.agent_poll = AgentPoll(
            tracker=tracker,
            run_metrics=run_metrics,
            self_metrics=self_metrics,
            throttle=self.throttle,
            clock=clock,
            poll_interval_s=poll_interval_s,
        )
        phase_s = max(2 * poll_interval_s, 10.0)  # how long a cycle's detail work may take
        self.outcomes = OutcomePhase(
            tracker=tracker,
            run_metrics=run_metrics,
            self_metrics=self_metrics,
            clock=clock,
            budget_s=phase_s,
            detail_concurrency=detail_concurrency,
        )
        self.tracing = (
            None
            if traces is None
            else TracePhase(
                tracker=tracker,
                self_metrics=self_metrics,
                traces=traces,
                clock=clock,
                budget_s=phase_s,
                detail_concurrency=detail_concurrency,
            )
        )

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
        """Run one cycle for a source: the agents due, pending traces, expiry, commit."""
        started = self.clock()
        counted_before = runtime.counted
        listed = await self._discover(runtime)
        if not runtime.directory.ids and not runtime.directory.others:
            return self._record_health(runtime, False, started)
        limit = asyncio.Semaphore(AGENT_CONCURRENCY)
        schedule = runtime.schedule

        async def one(agent_id: str) -> bool:
            async with limit:
                ok, completed = await self.agent_poll.run(runtime, agent_id)
                in_flight = self.tracker.has_in_flight(runtime.info.name, agent_id)
                schedule.polled(agent_id, started, ok=ok, completed=completed, in_flight=in_flight)
                return ok

        results = await asyncio.gather(*(one(agent) for agent in self._due(runtime, started)))
        await self.outcomes.run(runtime)  # runs whose outcome only their detail tells
        await self.outcomes.recheck_stuck(runtime)  # runs in flight too long: their detail
        self.commit()  # counts are durable and published before the (budget-bound) trace phase
        await self._learn_names(runtime)
        traced = await self._export_traces(runtime, started)
        self.commit()
        self._report(runtime, runtime.counted - counted_before, traced, started)
        self._report_schedule(runtime)
        return self._record_health(runtime, listed and all(results), started)

    def _due(self, runtime: SourceRuntime, now: float) -> list[str]:
        """Follow discovery, give every agent its interval, return the agents to poll now."""
        schedule = runtime.schedule
        directory = runtime.directory
        changed = schedule.sync(directory.ids, now)
        budget = runtime.budget
        budget.follow_agents(len(directory.ids), len(directory.ids) + directory.others, now)
        backlog = self.tracker.trace_backlog(runtime.info.name)
        capacity = self._shares.setdefault(runtime.info.name, ListShare()).capacity(
            budget.rate_per_s, budget.spent[Priority.DETAIL], backlog, now
        )
        plan = schedule.replan(capacity)
        if changed and not plan.fits:
            _warn_behind(runtime.info.name, plan, schedule.poll_interval_s)
        return schedule.due(now, spare=backlog == 0)

    async def _learn_names(self, runtime: SourceRuntime) -> None:
        """Look up unnamed agents' names: all at once when the budget covers every agent, else
        only the share of the budget the plan leaves them (a cycle never waits on a thousand)."""
        name = runtime.info.name
        limit = None
        if not runtime.schedule.plan.fits:
            earned = (1 - PLANNED_SHARE) * runtime.budget.rate_per_s * self.poll_interval_s
            allowance = min(self._name_allowance.get(name, 0.0) + earned, 10.0)
            self._name_allowance[name] = allowance
            limit = int(allowance)
        asked = await discovery.learn_names(runtime.directory, runtime.source, name, limit)
        if limit is not None:
            self._name_allowance[name] -= asked

    def _report_schedule(self, runtime: SourceRuntime) -> None:
        name = runtime.info.name
        intervals = runtime.schedule.intervals()
        gauge = self.metrics.agent_poll_interval
        for agent_id in self._shown.get(name, set()) - intervals.keys():
            gauge.remove(name, agent_id)
        for agent_id, interval in intervals.items():
            gauge.labels(name, agent_id).set(interval)
        self._shown[name] = set(intervals)
        self.metrics.oldest_poll_age.labels(name).set(runtime.schedule.oldest_age(self.clock()))
        waited = runtime.budget.waited_s
        self.metrics.budget_wait.labels(name).inc(max(0.0, waited - self._waited.get(name, 0.0)))
        self._waited[name] = waited

    async def _discover(self, runtime: SourceRuntime) -> bool:
        """Refresh a discovering source's agent list when due; False if that failed."""
        try:
            new = await discovery.refresh(runtime.directory, runtime.source, self.clock())
        except SourceError as exc:
            self.agent_poll.failed(runtime, "(agent listing)", exc)
            return False
        for agent_id in new:
            self.declare(runtime, agent_id)
        for agent_id in runtime.directory.rejected:
            self.agent_poll.reject(runtime, agent_id)
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

    async def _export_traces(self, runtime: SourceRuntime, started: float) -> int:
        """Trace pending runs within the cycle's budget (see `TracePhase`); return how many.

        Within a tight request budget the phase ends with the round, so the agents due next
        round (a run in flight, say) are not kept waiting behind a detail backlog.
        """
        name = runtime.info.name
        budget_s = None
        if not runtime.schedule.plan.fits:
            budget_s = max(1.0, self.poll_interval_s - (self.clock() - started))
        traced = 0
        if self.tracing is not None:
            traced = await self.tracing.run(runtime, self.commit, budget_s)
        self.metrics.trace_backlog.labels(name).set(self.tracker.trace_backlog(name))
        return traced

    def commit(self) -> None:
        """Write every change since the last commit in one transaction, then publish metrics.

        Only committed values are published: a scrape never sees a count a restart takes back.
        """
        now = self.clock()
        if self.traces is not None:  # traces the collector has are done in this transaction
            settle(self.traces, self.tracker, self.run_metrics, MAX_DETAIL_ATTEMPTS)
        for record in self.tracker.expire(now):
            self.metrics.runs_skipped.labels(record.source, "in_flight_expired").inc()
        self.metrics.tracked_runs.set(len(self.tracker))
        batch = StateBatch()
        self.tracker.drain(batch)
        self.run_metrics.drain(batch)
        if batch or self.store.problem:  # a failed commit is retried, even with nothing new
            try:
                self.store.commit(
                    batch,
                    prune_before=self.tracker.prune_before(now),
                    awaiting_from=self.tracker.overdue_kept_from(now),
                )
            except StateError as exc:
                # Publishing now would show counts a restart takes back: hold them until the
                # store has them (the failed batch is retried first by the next commit).
                log.error("%s; going on from memory, run metrics held until a commit works", exc)
                return
        self.run_metrics.publish()


def _warn_behind(source: str, plan: Plan, poll_interval_s: float) -> None:
    log.warning(
        "source %s: polling its %d agents every %gs needs %.0f requests a minute, the budget "
        "leaves %.0f for list polls: agents without a run in flight are polled every %gs to "
        "%.0fs, by their activity (see max_poll_interval and max_requests_per_minute)",
        source,
        plan.agents,
        poll_interval_s,
        plan.needed_per_minute,
        plan.capacity_per_minute,
        poll_interval_s,
        plan.longest_s,
    )
