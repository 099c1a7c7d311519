"""Value types of the simulated Conduit world: agents, runs and the ground truth of a run.

Also the formats every part of the simulator shares: ids (Conduit's, hex, UUIDs) and millisecond
ISO timestamps.
"""

from __future__ import annotations

import datetime as dt
import random
import string
import uuid
from dataclasses import dataclass

_ALNUM = string.digits + string.ascii_lowercase


@dataclass(frozen=True, slots=True)
class Agent:
    """One simulated V2 chat agent."""

    id: str
    name: str
    description: str
    workspace_id: str
    trigger_id: str
    internal: bool  # billed in credits: its runs have no total_cost
    created_ms: int


@dataclass(frozen=True, slots=True)
class SimRun:
    """One generated run: fixed facts; status and in-flight nulls are derived at read time."""

    id: str
    run_id: str
    agent_id: str
    workspace_id: str
    created_ms: int
    started_ms: int
    completed_ms: int
    failed: bool
    disposition: str | None
    error: str | None
    contact_id: str | None
    conversation_id: str | None
    trigger_id: str | None
    trigger_event_id: str | None
    session_id: str | None
    input_tokens: int | None
    output_tokens: int | None
    total_cost: float | None
    trace_id: str | None
    tool_steps: int | None  # length of tool_trace; None when the list itself is null
    tool_nulls: int  # how many of those items are null
    detail_seed: int
    drift: str | None = None  # the optional field its payloads spoil (`conduit_runs.DRIFTS`)

    @property
    def key(self) -> tuple[int, str]:
        """Return the (created_ms, id) sort key used for ordering and cursors."""
        return (self.created_ms, self.id)

    def status(self, now_ms: int) -> str:
        """Return the Conduit lifecycle status of the run at `now_ms`."""
        if now_ms < self.started_ms:
            return "accepted"
        if now_ms < self.completed_ms:
            return "running"
        return "failed" if self.failed else "completed"

    def terminal(self, now_ms: int) -> bool:
        """Say whether the run has finished at `now_ms`."""
        return now_ms >= self.completed_ms


@dataclass(frozen=True, slots=True)
class TruthRun:
    """Ground truth of one run at a given instant, for tests; in-flight values are None."""

    id: str
    run_id: str
    agent_id: str
    status: str
    created_at: str
    completed_at: str | None
    duration_ms: int | None
    disposition: str | None
    trace_id: str | None
    tool_steps: int  # non-null tool_trace items the run has once terminal
    input_tokens: int | None
    output_tokens: int | None
    total_cost: float | None
    terminal: bool
    documented: bool = True  # the status is one Conduit documents (it has no other)
    invalid_fields: tuple[str, ...] = ()  # malformed optional fields the exporter should drop


def iso_ms(ms: int) -> str:
    """Format epoch milliseconds as Conduit does: `2026-04-03T03:14:15.000Z`."""
    stamp = dt.datetime.fromtimestamp(ms // 1000, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{ms % 1000:03d}Z"


def conduit_id(rng: random.Random, prefix: str, length: int = 30) -> str:
    """Draw a Conduit-looking id: a prefix and lowercase alphanumerics (`ag77c0dy...`)."""
    return prefix + "".join(rng.choices(_ALNUM, k=length))


def truth_of(run: SimRun, now_ms: int) -> TruthRun:
    """Return the ground truth of `run` at `now_ms`."""
    done = run.terminal(now_ms)
    return TruthRun(
        id=run.id,
        run_id=run.run_id,
        agent_id=run.agent_id,
        status=run.status(now_ms),
        created_at=iso_ms(run.created_ms),
        completed_at=iso_ms(run.completed_ms) if done else None,
        duration_ms=run.completed_ms - run.created_ms if done else None,
        disposition=run.disposition if done else None,
        trace_id=run.trace_id,
        tool_steps=(run.tool_steps or 0) - run.tool_nulls,
        input_tokens=run.input_tokens if done else None,
        output_tokens=run.output_tokens if done else None,
        total_cost=run.total_cost if done else None,
        terminal=done,
        invalid_fields=(run.drift,) if done and run.drift else (),
    )


def hex_id(rng: random.Random, prefix: str, digits: int = 16) -> str:
    """Draw a prefixed lowercase-hex id (`exec_9f8b7c6d5a4e3f21`)."""
    return f"{prefix}{rng.getrandbits(4 * digits):0{digits}x}"


def alnum_id(rng: random.Random, prefix: str, length: int = 24) -> str:
    """Draw a prefixed lowercase-alphanumeric id (`srv_k2j4...`)."""
    return prefix + "".join(rng.choices(_ALNUM, k=length))


def uuid_from(rng: random.Random) -> str:
    """Draw a version-4 UUID string from `rng`, so it is reproducible from the seed."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))
