"""The run ledger: every run the tracker remembers, indexed by what it still waits for.

Runs are kept by (source, run id), with indexes of those in flight per agent, those ended but
waiting for their detail, those kept past the window (overdue), those whose trace is pending,
and every change since the last drain, which the poller's commit writes to the state file.
The rules that move runs between these indexes are the tracker's (`exporter.poll.tracker`).
"""

from __future__ import annotations

import heapq

from exporter.model import Status
from exporter.poll.records import RunRecord, Snapshot, StateBatch

RunKey = tuple[str, str]


class RunLedger:
    """Remembers runs by (source, run id), with the changes a commit must write."""

    def __init__(self) -> None:
        self._records: dict[RunKey, RunRecord] = {}
        self._in_flight: dict[tuple[str, str], dict[str, float]] = {}
        self._pending: dict[str, dict[str, RunRecord]] = {}
        self._awaiting: dict[str, dict[str, RunRecord]] = {}
        self._overdue: dict[str, dict[str, RunRecord]] = {}  # past the window, oldest first
        self._rechecks: dict[RunKey, tuple[float, float]] = {}  # next check, interval
        self._high_water: dict[tuple[str, str], float] = {}
        self._by_age: list[tuple[float, str, str]] = []
        self._dirty: dict[RunKey, RunRecord] = {}
        self._deleted: set[RunKey] = set()
        self._dirty_cursors: dict[tuple[str, str], float] = {}

    def restore(self, snapshot: Snapshot) -> None:
        """Load what an earlier process remembered."""
        for record in snapshot.runs:
            self._remember(record)
        self._high_water.update(snapshot.cursors)

    def high_water(self, source: str, agent_id: str) -> float | None:
        """Return the newest creation time a complete poll of the agent has read, or None."""
        return self._high_water.get((source, agent_id))

    def _is_awaiting(self, record: RunRecord) -> bool:
        return record.run_id in self._awaiting.get(record.source, {})

    def awaits_detail(self, source: str, run_id: str) -> bool:
        """Say whether the run ended and waits for its detail to be counted."""
        return run_id in self._awaiting.get(source, {})

    def awaiting_outcome(self, source: str) -> list[RunRecord]:
        """Return the source's ended runs that wait for their detail to be counted, oldest first."""
        records = list(self._awaiting.get(source, {}).values())
        return sorted(records, key=lambda r: r.created_at)

    def _leave_in_flight(self, record: RunRecord) -> None:
        in_flight = self._in_flight.get((record.source, record.agent_id))
        if in_flight:
            in_flight.pop(record.run_id, None)

    def finish_agent(
        self, source: str, agent_id: str, newest_created_at: float | None, now: float | None = None
    ) -> None:
        """Advance the agent's high-water mark after a poll that read every page it needed.

        A run stamped in the future (upstream clock skew) moves the mark no further than `now`:
        a mark in the future would stop every later poll after its first page.
        """
        if newest_created_at is None:
            return
        if now is not None:
            newest_created_at = min(newest_created_at, now)
        key = (source, agent_id)
        if newest_created_at > self._high_water.get(key, float("-inf")):
            self._high_water[key] = newest_created_at
            self._dirty_cursors[key] = newest_created_at

    def pending_traces(self, source: str) -> list[RunRecord]:
        """Return the source's runs whose trace is still to be exported, failures first."""
        records = list(self._pending.get(source, {}).values())
        return sorted(records, key=lambda r: (r.status is Status.COMPLETED, -r.created_at))

    def trace_backlog(self, source: str) -> int:
        """Return how many of the source's runs still wait for their trace."""
        return len(self._pending.get(source, {}))

    def trace_sent(self, record: RunRecord) -> None:
        """Take a run out of the backlog while its spans are queued (persisted by `trace_done`)."""
        self._pending.get(record.source, {}).pop(record.run_id, None)

    def trace_retry(self, record: RunRecord) -> None:
        """Put a sent run back in the backlog (its spans were dropped)."""
        if self._records.get((record.source, record.run_id)) is record:
            self._pending.setdefault(record.source, {})[record.run_id] = record

    def trace_done(self, record: RunRecord) -> None:
        """Mark a run's trace exported (or abandoned) so it is not fetched again."""
        if self._records.get((record.source, record.run_id)) is not record:
            return  # forgotten meanwhile (out of the window): nothing left to persist
        record.trace_pending = False
        record.run = None
        self._pending.get(record.source, {}).pop(record.run_id, None)
        self._touch(record)

    def trace_failed(self, record: RunRecord) -> int:
        """Note a failed attempt at a run's detail and return how many attempts failed."""
        record.attempts += 1
        self._touch(record)
        return record.attempts

    def has_in_flight(self, source: str, agent_id: str) -> bool:
        """Say whether the agent has a run seen queued or running and not yet counted."""
        return bool(self._in_flight.get((source, agent_id)))

    def in_flight_counts(self) -> dict[tuple[str, str, Status], int]:
        """Return how many runs are in flight per (source, agent, status)."""
        counts: dict[tuple[str, str, Status], int] = {}
        for (source, agent), runs in self._in_flight.items():
            for run_id in runs:
                key = (source, agent, self._records[(source, run_id)].status)
                counts[key] = counts.get(key, 0) + 1
        return counts

    def drain(self, batch: StateBatch) -> None:
        """Move every change since the last drain into `batch`."""
        # The records themselves, not copies: a batch retried after a failed commit then
        # writes their latest values, which is what the state file should end with.
        batch.runs.extend(self._dirty.values())
        batch.deleted.extend(self._deleted)
        batch.cursors.update(self._dirty_cursors)
        self._dirty.clear()
        self._deleted.clear()
        self._dirty_cursors.clear()

    def __len__(self) -> int:
        return len(self._records)

    def _remember(self, record: RunRecord) -> None:
        key = (record.source, record.run_id)
        self._records[key] = record
        heapq.heappush(self._by_age, (record.created_at, record.source, record.run_id))
        if not record.counted and record.trace_pending and record.run is not None:
            self._awaiting.setdefault(record.source, {})[record.run_id] = record
        elif not record.counted:
            self._in_flight.setdefault((record.source, record.agent_id), {})[record.run_id] = (
                record.created_at
            )
        if record.trace_pending:
            self._pending.setdefault(record.source, {})[record.run_id] = record

    def _touch(self, record: RunRecord) -> None:
        key = (record.source, record.run_id)
        self._dirty[key] = record
        self._deleted.discard(key)

    def _forget(self, key: RunKey, *, persist: bool) -> None:
        record = self._records.pop(key, None)
        if record is None:
            return
        self._in_flight.get((record.source, record.agent_id), {}).pop(record.run_id, None)
        self._pending.get(record.source, {}).pop(record.run_id, None)
        self._awaiting.get(record.source, {}).pop(record.run_id, None)
        self._overdue.get(record.source, {}).pop(record.run_id, None)
        self._rechecks.pop(key, None)
        self._dirty.pop(key, None)
        if persist:
            self._deleted.add(key)
