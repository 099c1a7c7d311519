"""What the state file holds of a run: its record, batches of changes, the snapshot loaded at start.

Runs are stored as rows of the `runs` table (columns in the order of `exporter.poll.state`'s
schema); a run's payload, kept while its trace or outcome waits, is compact JSON.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from exporter.model import Run, Status, ToolStep
from exporter.poll import state_checks as checks


@dataclass(slots=True)
class RunRecord:
    """What the exporter remembers of one run.

    `run` is kept only while the run's trace is still to be exported, or, uncounted, while the
    run waits for the detail that tells its outcome. `detail_read` (not persisted) says `run`
    already has its detail, so tracing it needs no request.
    """

    source: str
    run_id: str
    agent_id: str
    created_at: float
    status: Status
    counted: bool
    trace_pending: bool = False
    attempts: int = 0
    run: Run | None = None
    detail_read: bool = False


@dataclass(slots=True)
class StateBatch:
    """Changes to write in one transaction."""

    runs: list[RunRecord] = field(default_factory=list)
    deleted: list[tuple[str, str]] = field(default_factory=list)
    cursors: dict[tuple[str, str], float] = field(default_factory=dict)
    series: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.runs or self.deleted or self.cursors or self.series)

    def merged(self, newer: StateBatch) -> StateBatch:
        """Return this batch followed by `newer` (later writes of a key win)."""
        latest = {(r.source, r.run_id): r for r in (*self.runs, *newer.runs)}
        return StateBatch(
            runs=list(latest.values()),
            deleted=[*self.deleted, *newer.deleted],
            cursors={**self.cursors, **newer.cursors},
            series={**self.series, **newer.series},
        )


@dataclass(slots=True)
class Snapshot:
    """Everything loaded from the store at start."""

    runs: list[RunRecord]
    cursors: dict[tuple[str, str], float]
    series: dict[str, str]


_RUN_FIELDS = tuple(f.name for f in dataclasses.fields(Run))
_STEP_FIELDS = tuple(f.name for f in dataclasses.fields(ToolStep))


def encode_run(run: Run) -> str:
    """Serialize a run to compact JSON (the fields by name; `dataclasses.asdict` deep-copies)."""
    data = {name: getattr(run, name) for name in _RUN_FIELDS}
    if run.tool_steps is not None:
        data["tool_steps"] = [{n: getattr(s, n) for n in _STEP_FIELDS} for s in run.tool_steps]
    return json.dumps(data, separators=(",", ":"), default=str)


def decode_run(text: str) -> Run:
    """Rebuild a run serialized by `encode_run`."""
    data: dict[str, Any] = json.loads(text)
    data["status"] = Status(data["status"])
    steps = data.get("tool_steps")
    data["tool_steps"] = None if steps is None else tuple(ToolStep(**s) for s in steps)
    data["invalid_fields"] = tuple(data.get("invalid_fields", ()))
    return Run(**data)


def record_of(row: tuple[Any, ...]) -> RunRecord:
    """Return the run record one `runs` row holds, or raise one of ROW_ERRORS."""
    source, run_id, agent, created, status, counted, pending, attempts, payload = row
    return RunRecord(
        source=checks.text(source),
        run_id=checks.text(run_id),
        agent_id=checks.text(agent),
        created_at=checks.finite(created),
        status=Status(status),
        counted=bool(counted),
        trace_pending=bool(pending),
        attempts=int(attempts),
        run=decode_run(payload) if payload else None,
    )


def rows_of(batch: StateBatch) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Return the batch's run rows: those without a payload, and those with one (last column).

    Rows without a payload are written by a statement with a literal NULL: binding None costs
    sqlite3 an adapter lookup per row, and most rows (every counted run) have none.
    """
    bare: list[tuple[Any, ...]] = []
    full: list[tuple[Any, ...]] = []
    for r in batch.runs:
        row = (
            r.source,
            r.run_id,
            r.agent_id,
            r.created_at,
            str(r.status),
            int(r.counted),
            int(r.trace_pending),
            r.attempts,
        )
        if r.run is not None and r.trace_pending:
            full.append((*row, encode_run(r.run)))
        else:
            bare.append(row)
    return bare, full
