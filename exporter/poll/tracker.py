"""The run tracker: counts each run exactly once, when it is first seen in a terminal state.

For each (source, run id) it remembers whether the run was counted, whether it is still in flight
and whether its trace is still to be exported. A run whose outcome only its detail tells (ElizaOS
records failures as `completed`) waits, seen ended but not counted, until `count_from_detail`;
it is persisted as uncounted with its listed run, and no longer holds paging back. For each
(source, agent) it remembers the newest run seen by a complete poll (the high-water mark), so
paging can stop as soon as everything older is known. Memory and state are bounded by
`lookback`: a run created before `now - lookback` is outside the window; one still in flight by
then is given up.

A run still waiting for its detail when the window moves past it (the request budget or a 429
deferred the detail) is not forgotten uncounted: it is kept, `overdue`, for at most another
`lookback` and at most `max_overdue` per source; `overdue_due` hands the ones past either bound to
the outcome phase, which counts them as listed (`runs_skipped_total{reason="detail_overdue"}`).

A run in flight for longer than its platform's `stuck_after_s` is stuck: paging no longer reaches
back to it (`window`), and `stuck` offers it for a re-check through its detail on a backoff
(`RECHECK_FIRST_S`, doubling up to `RECHECK_MAX_S`); one the detail shows ended is counted by
`count_checked`.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from enum import Enum

from exporter.model import Run
from exporter.poll.ledger import RunLedger
from exporter.poll.records import RunRecord
from exporter.sinks.traces.ids import keep_trace

RECHECK_FIRST_S = 60.0
RECHECK_MAX_S = 900.0
MAX_OVERDUE = 10_000  # runs per source kept past the window while waiting for their detail


class Outcome(Enum):
    """What observing a run meant."""

    NEW_TERMINAL = "new_terminal"  # count it now
    IN_FLIGHT = "in_flight"  # remembered, counted when it ends
    AWAITING_DETAIL = "awaiting_detail"  # ended; counted once its detail is read
    KNOWN = "known"  # counted before
    OUTSIDE = "outside"  # created before the lookback window


class Tracker(RunLedger):
    """Deduplicates runs by (source, run id) within the lookback window."""

    def __init__(
        self,
        *,
        lookback_s: float,
        traces_enabled: bool,
        prune_margin_s: float = 300.0,
        on_given_up: Callable[[RunRecord], None] | None = None,
        sample_successful: float = 1.0,
        max_overdue: int = MAX_OVERDUE,
    ) -> None:
        self.lookback_s = lookback_s
        self.traces_enabled = traces_enabled
        self.sample_successful = sample_successful
        self._margin = prune_margin_s
        self.max_overdue = max_overdue
        self._on_given_up = on_given_up or (lambda _record: None)
        super().__init__()

    def floor(self, now: float) -> float:
        """Return the oldest creation time inside the lookback window."""
        return now - self.lookback_s

    def window(
        self, source: str, agent_id: str, now: float, *, stuck_after_s: float | None = None
    ) -> float:
        """Return the creation time below which paging this agent can stop.

        Runs in flight for longer than `stuck_after_s` do not hold paging back: they are
        re-checked through their detail instead (`stuck`).
        """
        floor = self.floor(now)
        high_water = self._high_water.get((source, agent_id))
        if high_water is None:
            return floor
        starts: Iterable[float] = self._in_flight.get((source, agent_id), {}).values()
        if stuck_after_s is not None:
            starts = [created for created in starts if created >= now - stuck_after_s]
        oldest_in_flight = min(starts, default=None)
        reach = high_water if oldest_in_flight is None else min(high_water, oldest_in_flight)
        return max(floor, reach)

    def observe(
        self, source: str, run: Run, now: float, *, outcome_in_detail: bool = False
    ) -> Outcome:
        """Record a sighting of `run` and say whether it must be counted now.

        With `outcome_in_detail`, an ended run is not counted yet: it waits for its detail.
        """
        created = run.created_at
        if created < now - self.lookback_s:
            return Outcome.OUTSIDE
        status = run.status
        record = self._records.get((source, run.id))
        if record is None:
            record = RunRecord(source, run.id, run.agent_id, created, status, False)
            self._records[(source, run.id)] = record
            heapq.heappush(self._by_age, (created, source, run.id))
        elif record.counted:
            return Outcome.KNOWN
        elif self._is_awaiting(record):
            return Outcome.AWAITING_DETAIL
        else:
            record.status = status
        if not status.terminal:
            # The first sighting's time: a stand-in (Run.created_estimated) may differ later.
            self._in_flight.setdefault((source, run.agent_id), {})[run.id] = record.created_at
            record.run = run  # kept in memory only (not persisted): what a re-check asks about
            self._touch(record)
            return Outcome.IN_FLIGHT
        if outcome_in_detail:
            self._await_detail(record, run)
            return Outcome.AWAITING_DETAIL
        self._count(record, run)
        return Outcome.NEW_TERMINAL

    def _await_detail(self, record: RunRecord, run: Run) -> None:
        # Persisted as uncounted with a pending payload: `_remember` reads that back as waiting.
        self._leave_in_flight(record)
        record.trace_pending = True
        record.run = run
        self._awaiting.setdefault(record.source, {})[record.run_id] = record
        self._touch(record)

    def count_from_detail(self, record: RunRecord, run: Run, *, complete: bool = True) -> bool:
        """Count a waiting run as its detail (or, given up, its list item) shows it.

        Return False when the run is no longer waiting (forgotten or counted meanwhile). Its
        trace, when kept, is exported from `run` without reading the detail again if `complete`.
        """
        waiting = self._awaiting.get(record.source, {})
        if waiting.get(record.run_id) is not record:
            return False
        del waiting[record.run_id]
        record.status, record.trace_pending, record.run = run.status, False, None
        record.attempts, record.detail_read = 0, complete
        self._count(record, run)
        return True

    def _count(self, record: RunRecord, run: Run) -> None:
        record.counted = True
        record.run = None
        self._leave_in_flight(record)
        self._rechecks.pop((record.source, record.run_id), None)
        if self.traces_enabled and keep_trace(record.source, run, self.sample_successful):
            record.trace_pending = True
            record.run = run
            self._pending.setdefault(record.source, {})[record.run_id] = record
        self._touch(record)

    def stuck(self, source: str, now: float, after_s: float) -> list[RunRecord]:
        """Return the source's runs in flight for longer than `after_s` whose re-check is due."""
        due = []
        for (src, _agent), runs in self._in_flight.items():
            if src != source:
                continue
            for run_id, created in runs.items():
                key = (source, run_id)
                if created < now - after_s and self._rechecks.get(key, (0.0, 0.0))[0] <= now:
                    due.append(self._records[key])
        return sorted(due, key=lambda r: r.created_at)

    def recheck_later(self, record: RunRecord, now: float) -> None:
        """Put a stuck run's next re-check off, twice as long as the last time."""
        key = (record.source, record.run_id)
        _next, interval = self._rechecks.get(key, (0.0, RECHECK_FIRST_S / 2))
        interval = min(interval * 2, RECHECK_MAX_S)
        self._rechecks[key] = (now + interval, interval)

    def count_checked(self, record: RunRecord, run: Run, *, complete: bool = True) -> bool:
        """Count a stuck run its detail shows ended (its trace reuses a `complete` detail)."""
        if self._records.get((record.source, record.run_id)) is not record or record.counted:
            return False
        record.status, record.attempts, record.detail_read = run.status, 0, complete
        self._count(record, run)
        return True

    def expire(self, now: float) -> list[RunRecord]:
        """Give up runs in flight since before the window, forget old ones; return the given up."""
        floor = self.floor(now)
        given_up = [
            self._records[(source, run_id)]
            for (source, _agent), runs in self._in_flight.items()
            for run_id, created in runs.items()
            if created < floor
        ]
        for record in given_up:
            self._forget((record.source, record.run_id), persist=True)
            self._on_given_up(record)
        self._prune(self.prune_before(now))
        self._settle_overdue(self.overdue_kept_from(now))
        return given_up

    def _prune(self, before: float) -> None:
        """Forget the runs created before `before`, keeping those that wait for their detail."""
        while self._by_age and self._by_age[0][0] < before:
            _created, source, run_id = heapq.heappop(self._by_age)
            waiting = self._awaiting.get(source, {}).get(run_id)
            if waiting is not None:
                self._overdue.setdefault(source, {})[run_id] = waiting  # its count still waits
            else:
                self._forget((source, run_id), persist=False)

    def overdue_floor(self, now: float) -> float:
        """Return the creation time before which a run may wait for its detail no longer."""
        return self.prune_before(now) - self.lookback_s

    def overdue_kept_from(self, now: float) -> float:
        """Return the creation time before which a waiting run is forgotten even uncounted: its
        source went away, as a live source counts it by `overdue_floor` (a prune margin before)."""
        return self.overdue_floor(now) - self._margin

    def overdue_due(self, source: str, now: float) -> list[RunRecord]:
        """Return the source's overdue runs to count as listed now: those older than
        `overdue_floor`, and the oldest beyond `max_overdue`."""
        waiting = [r for r in self._overdue.get(source, {}).values() if self._is_awaiting(r)]
        floor = self.overdue_floor(now)
        excess = len(waiting) - self.max_overdue
        return [r for i, r in enumerate(waiting) if i < excess or r.created_at < floor]

    def _settle_overdue(self, hard_floor: float) -> None:
        """Forget overdue runs once counted and traced, or created before `hard_floor`."""
        for runs in self._overdue.values():
            for run_id, record in list(runs.items()):
                done = record.counted and not record.trace_pending
                if done or record.created_at < hard_floor:
                    self._forget((record.source, run_id), persist=False)

    def scrolled_off(
        self, source: str, agent_id: str, oldest_visible: float, visible: set[str]
    ) -> list[RunRecord]:
        """Give up the agent's runs in flight created before `oldest_visible` and no longer in
        `visible` (the ids on the page); return them.

        For a platform that shows only its newest runs: one older than every visible run has
        left the view, and its end will never be seen. (A run on a stand-in time may be listed
        at a later time than the tracker's: the ids decide.)
        """
        runs = self._in_flight.get((source, agent_id), {})
        gone = [
            self._records[(source, run_id)]
            for run_id, t in runs.items()
            if t < oldest_visible and run_id not in visible
        ]
        for record in gone:
            self._forget((source, record.run_id), persist=True)
            self._on_given_up(record)
        return gone

    def prune_before(self, now: float) -> float:
        """Return the creation time before which stored runs can be dropped."""
        return self.floor(now) - self._margin
