"""Runtype's tool calls (`GET /v1/agents/{id}/executions/{executionId}/tool-calls`), in order.

A call that cannot be read is skipped, never the run; an optional field that cannot be read is
left out, never the call.
"""

from __future__ import annotations

import logging
from typing import Any

from exporter.errors import MalformedPageError, ParseError
from exporter.model import ToolStep
from exporter.sources import fields

log = logging.getLogger(__name__)
_FAILED_TOOL_STATUSES = ("failed", "error", "errored")


def parse_tool_calls(body: Any) -> tuple[ToolStep, ...]:
    """Translate a list-tool-calls response into steps in call order, skipping malformed calls."""
    if not isinstance(body, dict) or not isinstance(body.get("toolCalls"), list):
        raise MalformedPageError("tool-calls response has no 'toolCalls' array")
    steps: list[ToolStep] = []
    for item in body["toolCalls"]:
        try:
            steps.append(_tool_step(item))
        except ParseError as exc:
            log.debug("skipping a Runtype tool call: %s", exc)
    return tuple(sorted(steps, key=lambda step: step.started_at or 0.0))


def _tool_step(item: Any) -> ToolStep:
    if not isinstance(item, dict):
        raise ParseError("tool call must be an object")
    started = fields.optional_timestamp(item.get("startedAt") or item.get("createdAt"), "startedAt")
    ended = fields.optional_timestamp(item.get("completedAt"), "completedAt")
    elapsed_ms = fields.optional_number(item.get("executionTimeMs"), "executionTimeMs")
    if ended is None and started is not None and elapsed_ms is not None:
        ended = started + elapsed_ms / 1000.0
    return ToolStep(
        name=fields.required_str(item, "toolName"),
        input=item.get("inputParameters"),
        output=item.get("outputResult"),
        started_at=started,
        ended_at=ended,
        call_id=_text(item, "toolCallId"),
        error=_tool_error(item),
        record_id=_text(item, "id"),
    )


def _text(item: dict[str, Any], key: str) -> str | None:
    """Return an optional string of a tool call; a malformed one is left out, not the call."""
    try:
        return fields.optional_str(item, key)
    except ParseError:
        return None


def _tool_error(item: dict[str, Any]) -> str | None:
    message = item.get("errorMessage")
    if isinstance(message, str) and message:
        return message[:200]
    status = item.get("status")
    if isinstance(status, str) and status.lower() in _FAILED_TOOL_STATUSES:
        return f"tool call {status}"
    return None
