"""Build a finished run's spans as `ReadableSpan`s: ids, names, times, attributes.

    invoke_agent {agent}        CLIENT, run.start_time -> run.end_time, ERROR if failed/timeout;
    │                           a sub-agent run: child of its parent's tool-call span when the
    │                           call is known, and linked to the parent run's root span
    ├── execute_tool {step 0}   INTERNAL, child of the root, in the platform's order
    │   └── chat {model}        CLIENT, a model call made inside step 0 (ElizaOS actionContext)
    ├── chat {model}            CLIENT, a model call (ElizaOS MODEL_USED)
    └── execute_tool {step 3}

Ids come from `ids`, so building the same run twice yields byte-identical spans. Tool steps
without reported times get synthesized ones (see `step_window`). Nothing here delivers a span:
`sink` does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.util.types import AttributeValue

from exporter import __version__
from exporter.logs import redact
from exporter.model import Run, SourceInfo, ToolStep
from exporter.sinks.traces import ids

SCOPE = InstrumentationScope("agent-runs-exporter", __version__)
TRUNCATION_MARK = "…[truncated]"
_MAX_STATUS_CHARS = 1024
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_MAX_NS = 2**63 - 1
_UNSET = Status(StatusCode.UNSET)


def run_spans(
    source: SourceInfo,
    run: Run,
    resource: Resource,
    content: Callable[[Any], str | None] | None = None,
) -> list[ReadableSpan]:
    """Return the run's root span, then one span per tool step; `content` captures payloads."""
    root = root_span(source, run, resource)
    steps = run.tool_steps
    if not steps:
        return [root]
    parent, start, end = root.context, root.start_time, root.end_time
    assert parent is not None
    assert start is not None
    assert end is not None
    contexts = [
        _context(parent.trace_id, value) for value in ids.step_span_ids(source.name, run.id, steps)
    ]
    parents = _step_parents(steps, contexts, parent)
    spans: list[ReadableSpan] = [root]
    for index, step in enumerate(steps):
        window = step_window(step, index, len(steps), start, end)
        spans.append(_step_span(step, (contexts[index], parents[index]), resource, window, content))
    return spans


def _step_parents(
    steps: Sequence[ToolStep], contexts: list[SpanContext], root: SpanContext
) -> list[SpanContext]:
    """Return each step's parent: the step its `parent_call_id` names, else the root.

    Only a step that itself runs under the root can be a parent (one level), so bad data can
    never make a cycle.
    """
    if not any(step.parent_call_id for step in steps):
        return [root] * len(steps)
    by_call: dict[str, SpanContext] = {}
    for step, context in zip(steps, contexts, strict=True):
        if step.call_id and step.parent_call_id is None:
            by_call.setdefault(step.call_id, context)
    return [
        by_call.get(step.parent_call_id, root) if step.parent_call_id else root for step in steps
    ]


def _step_span(
    step: ToolStep,
    contexts: tuple[SpanContext, SpanContext],
    resource: Resource,
    window: tuple[int, int, bool],
    content: Callable[[Any], str | None] | None,
) -> ReadableSpan:
    """Return a step's span; `contexts` are its own and its parent's."""
    context, parent = contexts
    start, end, reported = window
    model = step.kind == "model"
    attributes = _model_attributes(step, reported) if model else _tool_attributes(step, reported)
    if reported and _clamped(step, start, end):  # the reported times, kept
        attributes["agent_run.tool.reported_start"] = step.started_at or 0.0
        attributes["agent_run.tool.reported_end"] = step.ended_at or 0.0
    if content is not None and step.kind == "tool":
        _put(attributes, "gen_ai.tool.call.arguments", content(step.input))
        _put(attributes, "gen_ai.tool.call.result", content(step.output))
    return ReadableSpan(
        name=f"{'chat' if model else 'execute_tool'} {step.name}".rstrip(),
        context=context,
        parent=parent,
        resource=resource,
        attributes=attributes,
        kind=SpanKind.CLIENT if model else SpanKind.INTERNAL,
        status=status(step.failed, step.error),
        start_time=start,
        end_time=end,
        instrumentation_scope=SCOPE,
    )


def _tool_attributes(step: ToolStep, reported: bool) -> dict[str, AttributeValue]:
    attributes: dict[str, AttributeValue] = {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": step.name,
    }
    _put(attributes, "gen_ai.tool.call.id", step.call_id)
    _put(attributes, "agent_run.tool.record_id", step.record_id)
    attributes["agent_run.tool.timing"] = "reported" if reported else "synthesized"
    if step.error is not None:
        attributes["error.type"] = "tool_error"
    return attributes


def _model_attributes(step: ToolStep, reported: bool) -> dict[str, AttributeValue]:
    return _present(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": step.name,
            "gen_ai.provider.name": step.provider,
            "gen_ai.usage.input_tokens": step.input_tokens,
            "gen_ai.usage.output_tokens": step.output_tokens,
            "agent_run.tool.timing": "reported" if reported else "synthesized",
            "error.type": "model_error" if step.failed else None,
        }
    )


def _put(attributes: dict[str, AttributeValue], key: str, value: AttributeValue | None) -> None:
    if value is not None:
        attributes[key] = value


def _parent_link(source: SourceInfo, run: Run) -> list[Link]:
    """Link a sub-agent run to the root span of the run that started it (same source)."""
    if not run.parent_run_id:
        return []
    parent_trace = ids.parent_trace_value(source.name, run)
    parent = _context(parent_trace, ids.span_id_value(source.name, run.parent_run_id, "root"))
    return [Link(parent, {"agent_run.link": "parent_run", "agent_run.id": run.parent_run_id})]


def _parent_call(source: SourceInfo, run: Run, trace_id: int) -> SpanContext | None:
    """Return the span of the parent's tool call that started a nested sub-agent run."""
    if not (run.parent_run_id and run.parent_call_id):
        return None
    return _context(
        trace_id, ids.call_span_id_value(source.name, run.parent_run_id, run.parent_call_id)
    )


def root_span(source: SourceInfo, run: Run, resource: Resource) -> ReadableSpan:
    """Return the run's `invoke_agent` span."""
    trace_id = ids.trace_value_of(source.name, run)
    start = to_ns(run.start_time)
    end_time = run.end_time
    end = start if end_time is None else max(start, to_ns(end_time))
    return ReadableSpan(
        name=f"invoke_agent {run.agent_name or run.agent_id}".rstrip(),
        context=_context(trace_id, ids.span_id_value(source.name, run.id, "root")),
        parent=_parent_call(source, run, trace_id),
        resource=resource,
        attributes=_root_attributes(source, run),
        kind=SpanKind.CLIENT,
        status=status(run.status.is_error, run.error),
        start_time=start,
        end_time=end,
        links=_parent_link(source, run),
        instrumentation_scope=SCOPE,
    )


def _root_attributes(source: SourceInfo, run: Run) -> dict[str, AttributeValue]:
    """Return the contract attributes that are known, then the run's own (never overriding)."""
    error = run.status.is_error
    attributes: dict[str, AttributeValue] = {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.provider.name": source.platform,
        "gen_ai.agent.id": run.agent_id,
    }
    put = attributes.__setitem__
    for key, value in (
        ("gen_ai.agent.name", run.agent_name),
        ("gen_ai.conversation.id", run.conversation_id),
        ("gen_ai.usage.input_tokens", run.input_tokens),
        ("gen_ai.usage.output_tokens", run.output_tokens),
        ("agent_run.usage.total_tokens", run.total_tokens),
        ("error.type", run.status.value if error else None),
        ("agent_run.id", run.id),
        ("agent_run.status", run.status.value),
        ("agent_run.raw_status", run.raw_status),
        ("agent_run.disposition", run.disposition),
        ("agent_run.cost_usd", run.cost_usd),
        ("agent_run.upstream_trace_id", run.trace_id or None),
        ("agent_run.parent_run_id", run.parent_run_id),
        ("agent_run.parent_call_id", run.parent_call_id),
        ("agent_run.root_run_id", run.root_run_id),
        ("agent_run.source", source.name),
    ):
        if value is not None:
            put(key, value)
    for key, value in run.attributes.items():
        attributes.setdefault(key, value)
    return attributes


def step_window(
    step: ToolStep, index: int, count: int, root_start: int, root_end: int
) -> tuple[int, int, bool]:
    """Return (start ns, end ns, reported) for step `index` of `count`.

    Reported times are used when the step has both, clamped inside the root (ElizaOS files events
    late or under another run: the span keeps the reported times as attributes then). Otherwise
    the root's interval is cut into `count` equal consecutive slots and the step gets slot
    `index`, so synthesized steps keep their order, never leave the root span and always land on
    the same nanoseconds.
    """
    if step.started_at is not None and step.ended_at is not None:
        start = to_ns(step.started_at)
        end = max(start, to_ns(step.ended_at))
        return _inside(start, root_start, root_end), _inside(end, root_start, root_end), True
    span = root_end - root_start
    return root_start + span * index // count, root_start + span * (index + 1) // count, False


def _clamped(step: ToolStep, start: int, end: int) -> bool:
    """Say whether a step's reported times were moved to fit inside its root span."""
    if step.started_at is None or step.ended_at is None:
        return False
    reported = to_ns(step.started_at)
    return (start, end) != (reported, max(reported, to_ns(step.ended_at)))


def _inside(instant: int, low: int, high: int) -> int:
    return min(max(instant, low), high)


def to_ns(epoch_s: float) -> int:
    """Convert epoch seconds to nanoseconds, at microsecond precision so floats stay exact.

    Clamped to what OTLP's fixed64 holds, so an absurd upstream duration cannot poison a batch.
    """
    return min(max(0, round(epoch_s * 1_000_000) * 1000), _MAX_NS)


def truncate(text: str, limit: int) -> str:
    """Cut `text` to `limit` characters, marking the cut."""
    return text if len(text) <= limit else text[:limit] + TRUNCATION_MARK


def _context(trace_id: int, span_id: int) -> SpanContext:
    return SpanContext(trace_id, span_id, False, _SAMPLED)


def status(is_error: bool, message: str | None) -> Status:
    """Return an ERROR status with the (redacted, truncated) message, or the shared UNSET one."""
    if not is_error:
        return _UNSET
    return Status(
        StatusCode.ERROR, truncate(redact(message), _MAX_STATUS_CHARS) if message else None
    )


def _present(attributes: Mapping[str, AttributeValue | None]) -> dict[str, AttributeValue]:
    return {key: value for key, value in attributes.items() if value is not None}
