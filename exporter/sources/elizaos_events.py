"""Turn an ElizaOS run's event timeline into tool and model steps and summed usage.

    ACTION_STARTED / ACTION_COMPLETED  paired by actionId -> a tool step (error if success false)
    MODEL_USED                         a model step ending at its timestamp, `executionTime` long,
                                       inside the action its `actionContext.actionId` names

Event types are also accepted in the documented `action:started` spelling. Token and cost fields
are usually absent from MODEL_USED: the sums are then None, never zero. A `RUN_ENDED` event may
carry the error of a run the list calls `completed`: `with_outcome` makes it failed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from exporter.errors import ParseError
from exporter.model import Run, Status, ToolStep
from exporter.sources import fields


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens and cost summed over the model calls that report them."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None


def event_type(event: dict[str, Any]) -> str:
    """Return the event's type as UPPER_SNAKE (`action:started` -> `ACTION_STARTED`)."""
    raw = event.get("type")
    return raw.upper().replace(":", "_").replace("-", "_") if isinstance(raw, str) else ""


def steps_of(events: list[Any]) -> tuple[ToolStep, ...]:
    """Return the actions and model calls of a timeline, ordered by start (or end) time."""
    started: dict[str, float | None] = {}
    steps: list[ToolStep] = []
    for event in events:
        if not isinstance(event, dict) or not isinstance(event.get("data", {}), dict):
            continue
        kind, data = event_type(event), event.get("data") or {}
        at = _at(event)
        if kind == "ACTION_STARTED":
            started[_action_key(data)] = at
        elif kind == "ACTION_COMPLETED":
            steps.append(_action(data, started.pop(_action_key(data), None), at))
        elif kind == "MODEL_USED":
            steps.append(_model_call(data, at))
    steps.extend(_action(data, at, None) for data, at in _unfinished(events, started))
    return tuple(sorted(steps, key=lambda step: step.started_at or step.ended_at or 0.0))


def _at(event: dict[str, Any]) -> float | None:
    try:
        return fields.instant(event.get("timestamp"), "timestamp")
    except ParseError:
        return None


def _action_key(data: dict[str, Any]) -> str:
    return str(data.get("actionId") or data.get("actionName") or "")


def _unfinished(
    events: list[Any], started: dict[str, float | None]
) -> list[tuple[dict[str, Any], float | None]]:
    """Return the ACTION_STARTED events never completed, with their start times."""
    found = []
    for event in events:
        if isinstance(event, dict) and event_type(event) == "ACTION_STARTED":
            data = event.get("data")
            if isinstance(data, dict) and _action_key(data) in started:
                found.append((data, started.pop(_action_key(data))))
    return found


def _action(data: dict[str, Any], start: float | None, end: float | None) -> ToolStep:
    name = data.get("actionName")
    return ToolStep(
        name=name if isinstance(name, str) and name else "action",
        input=data.get("params"),
        output=data.get("result", data.get("response")),
        started_at=start,
        ended_at=end,
        call_id=str(data["actionId"]) if data.get("actionId") else None,
        error=_action_error(data),
    )


def _action_error(data: dict[str, Any]) -> str | None:
    if data.get("success") is not False:
        return None
    result = data.get("result")
    if isinstance(result, dict):
        for key in ("error", "message"):
            if isinstance(result.get(key), str) and result[key]:
                return str(result[key])[:200]
    return "action reported success=false"


def _model_call(data: dict[str, Any], end: float | None) -> ToolStep:
    model = data.get("modelType") or data.get("model")
    try:
        elapsed_ms = fields.optional_number(data.get("executionTime"), "executionTime")
    except ParseError:
        elapsed_ms = None
    start = None if end is None or elapsed_ms is None else end - elapsed_ms / 1000.0
    tokens_in, tokens_out = _tokens(data)
    return ToolStep(
        name=str(model) if model else "model",
        started_at=start,
        ended_at=end if start is not None else None,
        kind="model",
        provider=data["provider"] if isinstance(data.get("provider"), str) else None,
        input_tokens=tokens_in,
        output_tokens=tokens_out,
        parent_call_id=_action_of(data.get("actionContext")),
    )


def _action_of(context: Any) -> str | None:
    """Return the id of the action a model call was made in (`actionContext`), if it says."""
    action_id = context.get("actionId") if isinstance(context, dict) else None
    return action_id if isinstance(action_id, str) and action_id else None


def _tokens(data: dict[str, Any]) -> tuple[int | None, int | None]:
    usage: dict[str, Any] = data["usage"] if isinstance(data.get("usage"), dict) else {}
    pairs = (("inputTokens", "outputTokens"), ("promptTokens", "completionTokens"))
    for source in (data, usage):
        for input_key, output_key in pairs:
            if source.get(input_key) is not None or source.get(output_key) is not None:
                return _count(source.get(input_key)), _count(source.get(output_key))
    return None, None


def _count(value: Any) -> int | None:
    try:
        return fields.optional_int(value, "tokens")
    except ParseError:
        return None


def usage_of(events: list[Any]) -> Usage:
    """Sum the tokens and cost the timeline's model calls report; None where none report any."""
    inputs, outputs, costs = [], [], []
    for event in events:
        if not isinstance(event, dict) or event_type(event) != "MODEL_USED":
            continue
        data = event.get("data")
        if not isinstance(data, dict):
            continue
        tokens_in, tokens_out = _tokens(data)
        inputs += [tokens_in] if tokens_in is not None else []
        outputs += [tokens_out] if tokens_out is not None else []
        try:
            cost = fields.optional_number(data.get("cost"), "cost")
        except ParseError:
            cost = None
        costs += [cost] if cost is not None else []
    return Usage(
        sum(inputs) if inputs else None,
        sum(outputs) if outputs else None,
        sum(costs) if costs else None,
    )


def run_error(events: list[Any]) -> str | None:
    """Return the error a `RUN_ENDED` event reports (a string or `{message}`), else None."""
    for event in reversed(events):
        if not isinstance(event, dict) or event_type(event) != "RUN_ENDED":
            continue
        data = event.get("data")
        error = data.get("error") if isinstance(data, dict) else None
        if isinstance(error, dict):
            error = error.get("message") or error.get("code") or "error"
        if error:
            return str(error)[:500]
    return None


def with_outcome(events: list[Any], run: Run) -> Run:
    """Return `run` as failed when its `RUN_ENDED` event carries an error (raw status kept)."""
    error = run_error(events)
    if error is None or not run.status.terminal:
        return run
    if run.status is Status.COMPLETED:
        return replace(run, status=Status.FAILED, error=error)
    return run if run.error else replace(run, error=error)  # timeout, error: keep the status
