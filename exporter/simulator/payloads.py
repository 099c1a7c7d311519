"""Render simulated agents and runs as Conduit JSON payloads at a given instant.

While a run is in flight (`accepted`/`running`) every outcome field is null: disposition, error,
duration, tokens, cost, completed_at, response and reflection. Its `tool_trace` is null while
`accepted` and grows step by step while `running`. Detail-only fields are drawn from the run's
`detail_seed`, so they are the same on every read and cost no memory between reads. A drifting
run (`SimRun.drift`) has one optional field spoiled in both its summary and its detail.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from exporter.simulator import catalogue, quirks
from exporter.simulator.conduit_runs import DRIFTS
from exporter.simulator.records import Agent, SimRun, iso_ms


def agent_payload(agent: Agent) -> dict[str, Any]:
    """Render an agent like `GET /v1/agents/{id}` does."""
    created = iso_ms(agent.created_ms)
    return {
        "id": agent.id,
        "workspace_id": agent.workspace_id,
        "name": agent.name,
        "description": agent.description,
        "version": "v2",
        "instructions": f"You are {agent.name}. {agent.description}",
        "guardrails": [],
        "operation_mode": "autopilot",
        "autopilot_schedule": None,
        "custom_response_delay_ms": 0,
        "auto_mark_as_done": False,
        "response_language": "en",
        "responseflow": None,
        "output_schema": [],
        "skill_ids": [],
        "enabled": True,
        "triggers": [_trigger_payload(agent, created)],
        "created_at": created,
        "updated_at": created,
    }


def _trigger_payload(agent: Agent, created: str) -> dict[str, Any]:
    return {
        "id": agent.trigger_id,
        "workspace_id": agent.workspace_id,
        "name": "New guest message",
        "description": "Runs the agent when a guest sends a message.",
        "type": "conversation_message",
        "config": {},
        "enabled": True,
        "created_at": created,
        "updated_at": created,
    }


def run_summary(run: SimRun, now_ms: int) -> dict[str, Any]:
    """Render a run like one item of `GET /v1/agents/{id}/runs`."""
    done = run.terminal(now_ms)
    usage = None
    if done and run.input_tokens is not None and run.output_tokens is not None:
        usage = {"input": run.input_tokens, "output": run.output_tokens}
    summary = {
        "id": run.id,
        "run_id": run.run_id,
        "agent_id": run.agent_id,
        "workspace_id": run.workspace_id,
        "status": run.status(now_ms),
        "disposition": run.disposition if done else None,
        "contact_id": run.contact_id,
        "conversation_id": run.conversation_id,
        "trigger_id": run.trigger_id,
        "error": run.error if done else None,
        "duration_ms": run.completed_ms - run.created_ms if done else None,
        "token_usage": usage,
        "total_cost": run.total_cost if done else None,
        "trace_id": run.trace_id,
        "created_at": iso_ms(run.created_ms),
        "completed_at": iso_ms(run.completed_ms) if done else None,
    }
    return quirks.spoil(summary, run.drift, DRIFTS)


def run_detail(run: SimRun, now_ms: int) -> dict[str, Any]:
    """Render a run like `GET /v1/agents/{id}/runs/{run_id}`: summary, detail fields, tool_trace."""
    rng = random.Random(run.detail_seed)
    done = run.terminal(now_ms)
    reason, response, reflection = _narrative(rng, run)
    trace = _tool_trace(rng, run)
    return run_summary(run, now_ms) | {
        "session_id": run.session_id,
        "disposition_reason": reason if done else None,
        "trigger_event_id": run.trigger_event_id,
        "response": response if done else None,
        "reflection": reflection if done else None,
        "tool_trace": _visible_steps(trace, run, now_ms),
    }


def _narrative(rng: random.Random, run: SimRun) -> tuple[str | None, str | None, str | None]:
    disposition = run.disposition
    reason = rng.choice(catalogue.DISPOSITION_REASONS[disposition]) if disposition else None
    replies = catalogue.RESPONSES.get(disposition or "", ())
    response = rng.choice(replies) if replies and not run.failed else None
    skip_reflection = rng.random() < (0.5 if run.failed else 0.15)
    reflection = None if skip_reflection else rng.choice(catalogue.REFLECTIONS)
    return reason, response, reflection


def _tool_trace(rng: random.Random, run: SimRun) -> list[dict[str, Any] | None] | None:
    if run.tool_steps is None:
        return None
    base = dt.datetime.fromtimestamp(run.created_ms // 1000, tz=dt.UTC).date()
    last_fails = run.failed and rng.random() < 0.6
    steps: list[dict[str, Any] | None] = [
        catalogue.tool_step(rng, base, failed=rng.random() < 0.03)
        for _ in range(run.tool_steps - run.tool_nulls)
    ]
    if last_fails and steps:
        steps[-1] = catalogue.tool_step(rng, base, failed=True)
    for index in sorted(rng.sample(range(run.tool_steps), run.tool_nulls)):
        steps.insert(index, None)
    return steps


def _visible_steps(
    trace: list[dict[str, Any] | None] | None, run: SimRun, now_ms: int
) -> list[dict[str, Any] | None] | None:
    if trace is None or run.terminal(now_ms):
        return trace
    if run.status(now_ms) == "accepted":
        return None
    progress = (now_ms - run.started_ms) / (run.completed_ms - run.started_ms)
    return trace[: int(len(trace) * progress)]
