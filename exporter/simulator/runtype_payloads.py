"""Render simulated Runtype agents, executions and tool calls as Runtype JSON at a given instant.

In flight, an execution has no `completedAt`, `stopReason`, `finalOutput`, `totalCost`,
`totalTokens` or `budgetExhausted`; while `paused` it carries a `pendingApproval`. Once ended,
`budgetExhausted` says whether it stopped at its iteration budget (null on a few: unknown), and a
`failed` one carries an `error` message (UNCONFIRMED on the execution record: the SDK's model
allows extra fields, and Runtype's execution status and stream payloads carry `error`). A run that
read the live agent row (`legacy-live-row`) has no `agentVersion`. Tool calls are drawn from the
execution's `detail_seed` (the same on every read), laid out one after another inside the run
(`runtype_runs.call_slots`), and shown once started: `createdAt == startedAt`,
`completedAt = startedAt + executionTimeMs`, and a payload whose JSON exceeds 16 KiB is replaced by
`{truncated: true, preview}`. A drifting execution (`Execution.drift`) has one optional field
spoiled on every read.
"""

from __future__ import annotations

import json
import random
from typing import Any

from exporter.simulator import quirks, timeline
from exporter.simulator.records import iso_ms, uuid_from
from exporter.simulator.runtype_runs import DRIFTS, CallSlot, Execution, RuntypeAgent, call_slots

Payload = dict[str, Any]
TRUNCATE_BYTES = 16 * 1024
_PREVIEW_CHARS = 512
_COMPACT_CHARS = 100
_TOOLS = (
    ("web_search", "Search the web and return the top results."),
    ("fetch_url", "Download a page and return its text."),
    ("query_database", "Run a read-only SQL query on the warehouse."),
    ("send_slack_message", "Post a message to a Slack channel."),
    ("create_ticket", "Open a ticket in the issue tracker."),
    ("code_interpreter", "Run Python in a sandbox."),
)
_TOOL_ERRORS = ("Tool timed out after 30000ms", "HTTP 502 from upstream", "Permission denied")
_RUN_ERRORS = (
    "Model provider returned 529: overloaded",
    "Tool send_slack_message failed: channel_not_found",
    "Execution exceeded its 15 minute wall-clock limit",
)
_PROMPTS = (
    "Summarise the last week of support tickets and flag anything urgent.",
    "Review the open pull request and list the risky changes.",
    "Find three recent sources on vector databases and compare them.",
    "Read the attached quarterly report, pull out every figure about churn and retention, and "
    "draft a one-page summary for the leadership meeting on Monday.",
)


def agent_payload(agent: RuntypeAgent, last_run_ms: int | None) -> Payload:
    """Render an agent like one item of `GET /v1/agents`."""
    created = iso_ms(agent.created_ms)
    return {
        "id": agent.id,
        "name": agent.name,
        "description": agent.description,
        "agentType": "runtype",
        "status": "active",
        "capabilityCount": 2,
        "icon": None,
        "config": {},
        "lastModifiedSource": "dashboard",
        "lastRunAt": None if last_run_ms is None else iso_ms(last_run_ms),
        "sandboxCapabilityIssues": [],
        "createdAt": created,
        "updatedAt": created,
    }


def agent_detail(agent: RuntypeAgent, last_run_ms: int | None) -> Payload:
    """Render an agent like `GET /v1/agents/{id}`."""
    return agent_payload(agent, last_run_ms) | {
        "capabilities": [],
        "userId": "user_" + agent.id.removeprefix("agent_")[:12],
        "organizationId": None,
        "publishedVersionId": None,
    }


def execution_payload(run: Execution, now_ms: int, compact: bool = False) -> Payload:
    """Render an execution like one item of `GET /v1/agents/{id}/executions`."""
    rng = random.Random(run.detail_seed)
    times, status = run.times, run.status(now_ms)
    done, started = run.terminal(now_ms), now_ms >= times.started_ms
    prompt = rng.choice(_PROMPTS)
    payload: Payload = {
        "id": run.id,
        "executionId": run.id,
        "agentId": run.agent_id,
        "agentSource": "runtype-core",
        "agentSpec": None,
        "agentTargetResolution": run.target_resolution,
        "agentVersion": _version(run),
        "agentVersionId": (_version(run) or {}).get("id"),
        "budgetExhausted": _budget_exhausted(run) if done else None,
        "createdAt": iso_ms(times.created_ms),
        "startedAt": iso_ms(times.started_ms) if started else None,
        "completedAt": iso_ms(times.completed_ms) if done else None,
        "cancelRequestedAt": _cancel_requested(run) if done else None,
        "lastHeartbeatAt": None if done or not started else iso_ms(now_ms - now_ms % 5000),
        "conversationId": run.conversation_id,
        "executionMode": run.execution_mode,
        "notificationMode": run.notification_mode,
        "inputMessages": [{"role": "user", "content": prompt}],
        "finalOutput": _final_output(run) if status == "completed" else None,
        "iterations": run.iterations if done else None,
        "parentAgentId": run.agent_id if run.parent_id else None,
        "parentConversationId": None,
        "parentExecutionId": run.parent_id,
        "parentToolCallId": run.parent_call_id,
        "rootExecutionId": run.root_id,
        "retryOfExecutionId": None,
        "pendingApproval": _pending_approval(run) if status == timeline.PAUSED else None,
        "progress": None,
        "status": status,
        "stopReason": run.stop_reason if done else None,
        "surfaceType": run.surface_type,
        "totalCost": run.total_cost if done else None,
        "totalTokens": run.total_tokens if done else None,
    }
    if status == "failed":
        payload["error"] = random.Random(run.detail_seed ^ 0xE7).choice(_RUN_ERRORS)
    quirks.spoil(payload, run.drift, DRIFTS)
    if compact:
        del payload["finalOutput"]
        return {key: _shorten(value) for key, value in payload.items()}
    return payload


def execution_detail(run: Execution, now_ms: int) -> Payload:
    """Render an execution like `GET /v1/agents/{id}/executions/{executionId}`."""
    done = run.terminal(now_ms)
    iterations = [{"iteration": n + 1} for n in range(run.iterations if done else 0)]
    return execution_payload(run, now_ms) | {
        "iterationDetails": iterations,
        "loopConfig": {"maxIterations": 10},
        "externalObservedApprovals": None,
        "externalTelemetry": None,
    }


def tool_calls(run: Execution, now_ms: int) -> list[Payload]:
    """Render `GET .../executions/{executionId}/tool-calls`: the calls started by `now_ms`."""
    return [_visible(call, now_ms) for call in _draw_calls(run) if call["_start"] <= now_ms]


def tool_call_detail(run: Execution, call_id: str, now_ms: int) -> Payload | None:
    """Render one tool call with its full payloads, or None if the run has no such call."""
    for call in _draw_calls(run):
        if call["id"] == call_id and call["_start"] <= now_ms:
            full = _visible(call, now_ms, truncate=False)
            keep = ("id", "toolName", "toolDescription", "model", "status", "errorMessage")
            extra = ("executionTimeMs", "createdAt", "inputParameters", "outputResult")
            return {key: full[key] for key in (*keep, *extra)} | {"toolId": call["toolName"]}
    return None


def _version(run: Execution) -> Payload | None:
    if run.target_resolution == "legacy-live-row":  # read the live agent row: no version stamped
        return None
    label = f"v{run.version_number}"
    return {
        "id": f"ver_{run.agent_id[-8:]}{run.version_number:02d}",
        "label": label,
        "versionNumber": run.version_number,
    }


def _budget_exhausted(run: Execution) -> bool | None:
    if run.detail_seed % 20 == 0:  # recorded before the field existed: unknown, not false
        return None
    return run.stop_reason == "max_iterations_reached"


def _cancel_requested(run: Execution) -> str | None:
    if run.times.outcome != "cancelled":
        return None
    return iso_ms(max(run.times.started_ms, run.times.completed_ms - 250))


def _pending_approval(run: Execution) -> Payload:
    assert run.times.pause is not None
    return {
        "approvalId": "appr_" + run.id.removeprefix("exec_"),
        "toolCallId": "toolu_" + run.id.removeprefix("exec_"),
        "toolName": "send_slack_message",
        "toolType": "external",
        "requestedAt": iso_ms(run.times.pause[0]),
        "description": "Post the summary to #general",
        "reason": "Tool requires approval",
    }


def _final_output(run: Execution) -> Payload:
    return {"type": "text", "text": f"Done after {run.iterations} iterations."}


def _shorten(value: Any) -> Any:
    if isinstance(value, str) and len(value) > _COMPACT_CHARS:
        return value[:_COMPACT_CHARS] + "…"
    if isinstance(value, list):
        return [_shorten(item) for item in value]
    if isinstance(value, dict):
        return {key: _shorten(item) for key, item in value.items()}
    return value


def _draw_calls(run: Execution) -> list[Payload]:
    rng = random.Random(run.detail_seed ^ 0x7003)
    return [_draw_call(rng, run, index, slot) for index, slot in enumerate(call_slots(run))]


def _draw_call(rng: random.Random, run: Execution, index: int, slot: CallSlot) -> Payload:
    name, description = rng.choice(_TOOLS)
    big = rng.random() < 0.06
    output: Any = {"error": "failed"} if slot.fails else _output(rng, name, big)
    return {
        "id": uuid_from(rng),
        "toolCallId": slot.call_id,
        "toolName": name,
        "toolDescription": description,
        "model": "claude-sonnet-4-5",
        "iteration": min(index + 1, run.iterations),
        "_start": slot.start_ms,
        "_took": slot.took_ms,
        "_error": rng.choice(_TOOL_ERRORS) if slot.fails else None,
        "inputParameters": {"query": rng.choice(_PROMPTS)},
        "outputResult": None if slot.fails else output,
    }


def _output(rng: random.Random, name: str, big: bool) -> Any:
    if not big:
        return {"ok": True, "items": rng.randint(0, 9)}
    rows = [{"row": n, "text": "lorem ipsum dolor sit amet " * 4} for n in range(200)]
    return {"tool": name, "rows": rows}  # well over 16 KiB of JSON


def _visible(call: Payload, now_ms: int, truncate: bool = True) -> Payload:
    start, took = call["_start"], call["_took"]
    finished = now_ms >= start + took
    body = {key: value for key, value in call.items() if not key.startswith("_")}
    body["status"] = ("failed" if call["_error"] else "completed") if finished else "running"
    body["errorMessage"] = call["_error"] if finished else None
    body["createdAt"] = body["startedAt"] = iso_ms(start)
    body["completedAt"] = iso_ms(start + took) if finished else None
    body["executionTimeMs"] = took if finished else None
    if not finished:
        body["outputResult"] = None
    for field, flag in (("inputParameters", "inputTruncated"), ("outputResult", "outputTruncated")):
        cut = truncate and len(json.dumps(body[field])) > TRUNCATE_BYTES
        if cut:
            body[field] = {"truncated": True, "preview": json.dumps(body[field])[:_PREVIEW_CHARS]}
        if truncate:
            body[flag] = cut
    return body
