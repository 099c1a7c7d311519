"""Draw Runtype agents and executions: the `Flavor` of the simulated Runtype world.

Executions go `queued -> running [-> paused -> running] -> completed|failed|cancelled|interrupted`;
some pause mid-run awaiting a tool approval. A share are sub-agent executions whose
`parentExecutionId` is the same agent's previous execution, still running when the child starts;
`parentToolCallId` names the parent's latest tool call begun by then, when that call carries a
model id (else it is null: a link, not a nesting). Runtype starts sub-agents from tool calls, so a
sub-agent without a known call starts none of its own. The tool calls' layout (times, failures,
model ids) is drawn here from `detail_seed`, so a child can name its parent's call; their content
is drawn in `runtype_payloads`.

Quirks (`quirks.py`): a share of executions end with a status outside the documented set (the SDK
types `status` as an open enum; `UNLISTED` are our invention), with an end time; a share carry
one malformed optional field (`DRIFTS`: `totalTokens` is "any" in the SDK).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import math
import random
from dataclasses import dataclass, replace
from typing import Any

from exporter.simulator import quirks, timeline
from exporter.simulator.records import alnum_id, hex_id, iso_ms
from exporter.simulator.settings import SimulatorSettings
from exporter.simulator.timeline import TimedRun, Timeline

STATUSES = ("queued", "running", "paused", "completed", "failed", "cancelled", "interrupted")
FAILURES = (("failed", 0.5), ("cancelled", 0.25), ("interrupted", 0.25))
PROFILES: tuple[tuple[str, str], ...] = (
    ("Research Assistant", "Searches the web and summarises sources with citations."),
    ("Code Reviewer", "Reviews pull requests and suggests focused changes."),
    ("Lead Qualifier", "Scores inbound leads and drafts the first reply."),
    ("Data Analyst", "Answers questions by querying the warehouse."),
    ("Content Writer", "Drafts blog posts and social copy from a brief."),
    ("Ops Triage", "Reads alerts, gathers context and opens incidents."),
)
_SURFACES = ("api", "webhook", "web", "schedule", "slack")
_STOP_REASONS = ("end_turn", "end_turn", "end_turn", "max_iterations_reached", "max_tool_calls")
UNLISTED = ("expired", "timed_out")  # ended, but not with a status the SDK names
DRIFTS: quirks.Drifts = {
    "totalTokens": lambda tokens: {"input": tokens * 4 // 5, "output": tokens - tokens * 4 // 5},
    "totalCost": lambda cost: f"${cost}",
    "startedAt": lambda iso: email.utils.format_datetime(
        dt.datetime.fromisoformat(iso), usegmt=True
    ),
}


@dataclass(frozen=True, slots=True)
class RuntypeAgent:
    """One simulated Runtype agent."""

    id: str
    name: str
    description: str
    created_ms: int


@dataclass(frozen=True, slots=True)
class Execution(TimedRun):
    """One generated execution: fixed facts; status and in-flight nulls derived at read time."""

    id: str
    agent_id: str
    times: Timeline
    surface_type: str
    execution_mode: str
    notification_mode: str
    target_resolution: str
    version_number: int
    conversation_id: str | None
    parent_id: str | None
    parent_call_id: str | None
    root_id: str | None
    total_tokens: int | None
    total_cost: str | None
    iterations: int
    stop_reason: str
    tool_calls: int
    detail_seed: int
    drift: str | None = None  # the optional field its payloads spoil (`DRIFTS`)


@dataclass(frozen=True, slots=True)
class CallSlot:
    """When one tool call of an execution ran, whether it failed and the model's id for it."""

    start_ms: int
    took_ms: int
    fails: bool
    call_id: str | None  # null on about 30% of rows, as when Runtype wrote the row itself


def call_slots(run: Execution) -> list[CallSlot]:
    """Lay out the execution's tool calls one after another inside the run (same every time)."""
    rng = random.Random(run.detail_seed ^ 0x7001)
    times = run.times
    slot = max(1, times.duration_ms // max(1, run.tool_calls))
    failing = times.outcome == "failed" and rng.random() < 0.6
    calls = []
    for index in range(run.tool_calls):
        start = times.started_ms + index * slot + rng.randint(0, slot // 4)
        took = max(1, min(round(slot * rng.uniform(0.2, 0.7)), times.completed_ms - start))
        fails = (failing and index == run.tool_calls - 1) or rng.random() < 0.04
        call_id = None if rng.random() < 0.3 else alnum_id(rng, "toolu_", 24)
        calls.append(CallSlot(start, took, fails, call_id))
    return calls


def cost_string(dollars: float) -> str:
    """Format a cost as Runtype does: a decimal string such as "0.0234"."""
    text = f"{dollars:.6f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


class RuntypeFlavor:
    """Runtype's vocabulary: `agent_...` agents and `exec_<hex>` executions."""

    platform = "runtype"

    def __init__(self, settings: SimulatorSettings) -> None:
        self.settings = settings

    def begin(self, master: random.Random) -> None:
        """Draw nothing world-wide: Runtype scopes by API key."""

    def new_agent(self, master: random.Random, index: int, start: float) -> RuntypeAgent:
        """Draw agent number `index`."""
        name, description = timeline.profile(PROFILES, index)
        created = timeline.created_long_ago(master, start)
        return RuntypeAgent(alnum_id(master, "agent_", 20), name, description, created)

    def new_run(
        self, rng: random.Random, agent: RuntypeAgent, at: float, previous: Execution | None
    ) -> Execution:
        """Draw the agent's execution arriving at `at`."""
        times = timeline.draw_timeline(rng, at, self.settings, FAILURES, pause_ratio=0.15)
        parent = _parent(rng, previous, times.created_ms)
        call_id = _spawning_call(parent, times.created_ms)
        tokens = None if rng.random() < 0.05 else int(rng.lognormvariate(math.log(2200), 0.7))
        cost = None if tokens is None else cost_string(tokens * rng.uniform(2e-6, 9e-6))
        run = Execution(
            id=hex_id(rng, "exec_"),
            agent_id=agent.id,
            times=times,
            surface_type=rng.choice(_SURFACES),
            execution_mode="detached" if rng.random() < 0.3 else "attached",
            notification_mode=rng.choice(("none", "none", "narrate", "react")),
            target_resolution=rng.choice(("alias", "alias", "version", "legacy-live-row")),
            version_number=rng.randint(1, 12),
            conversation_id=None if rng.random() < 0.2 else hex_id(rng, "conv_"),
            parent_id=parent.id if parent else None,
            parent_call_id=call_id,
            root_id=(parent.root_id or parent.id) if parent else None,
            total_tokens=tokens,
            total_cost=cost,
            iterations=rng.randint(1, 8),
            stop_reason=rng.choice(_STOP_REASONS),
            tool_calls=min(6, int(rng.expovariate(1 / 2.0))),
            detail_seed=rng.getrandbits(64),
        )
        return self._quirks(run)

    def _quirks(self, run: Execution) -> Execution:
        """Return `run` with the quirks the settings give it: an unlisted end, a drifting field."""
        seed, settings = run.detail_seed, self.settings
        unlisted = quirks.unlisted_status(seed, settings.unknown_status_ratio, UNLISTED)
        present = {"totalTokens": run.total_tokens, "totalCost": run.total_cost, "startedAt": 0}
        drift = quirks.drift_of(
            seed, settings.drift_ratio, DRIFTS, lambda name: present[name] is not None
        )
        if unlisted is None and drift is None:
            return run
        times = replace(run.times, outcome=unlisted) if unlisted else run.times
        return replace(run, times=times, drift=drift)

    def truth(self, run: Execution, now_ms: int) -> dict[str, Any]:
        """Return the execution's ground truth as a JSON-ready dict."""
        done = run.terminal(now_ms)
        return {
            "id": run.id,
            "agent_id": run.agent_id,
            "status": run.status(now_ms),
            "terminal": done,
            "created_at": iso_ms(run.times.created_ms),
            "started_at": iso_ms(run.times.started_ms) if now_ms >= run.times.started_ms else None,
            "completed_at": iso_ms(run.times.completed_ms) if done else None,
            "duration_ms": run.times.duration_ms if done else None,
            "parent_execution_id": run.parent_id,
            "parent_tool_call_id": run.parent_call_id,
            "total_tokens": run.total_tokens if done else None,
            "total_cost": run.total_cost if done else None,
            "tool_calls": run.tool_calls,
            "documented": run.status(now_ms) in STATUSES,
            "invalid_fields": [run.drift] if done and run.drift else [],
        }


def _parent(rng: random.Random, previous: Execution | None, created_ms: int) -> Execution | None:
    sub_agent = rng.random() < 0.3
    if previous is None or not sub_agent:
        return None
    if previous.parent_id is not None and previous.parent_call_id is None:
        return None  # started by no known tool call: it starts no sub-agent either
    running = previous.times.started_ms <= created_ms < previous.times.completed_ms
    return previous if running else None


def _spawning_call(parent: Execution | None, created_ms: int) -> str | None:
    """Return the model id of the parent's latest tool call begun by `created_ms`, if any."""
    begun = [call for call in call_slots(parent) if call.start_ms <= created_ms] if parent else []
    return begun[-1].call_id if begun else None
