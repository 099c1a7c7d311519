"""Build a finished run's spans as `ReadableSpan`s: ids, names, times and attributes.

    invoke_agent {agent}        CLIENT, run.start_time -> run.end_time, ERROR if failed/timeout,
    │                           linked to its parent run's root span for a sub-agent run
    ├── execute_tool {step 0}   INTERNAL, child of the root, in the platform's order
    ├── chat {model}            CLIENT, a model call (ElizaOS MODEL_USED)
    └── execute_tool {step 2}

Ids come from `exporter.ids`, so building the same run twice yields byte-identical spans. Tool
steps without reported times get synthesized ones (see `step_window`). Nothing here delivers a
span: `exporter.sinks.traces` does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib import parse

from opentelemetry.sdk.resources import (
    SERVICE_NAME,
    TELEMETRY_SDK_LANGUAGE,
    TELEMETRY_SDK_NAME,
    TELEMETRY_SDK_VERSION,
    Resource,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.sdk.version import __version__ as sdk_version
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.util.types import AttributeValue

from exporter import __version__, ids
from exporter.logs import redact
from exporter.model import Run, ToolStep

logger = logging.getLogger(__name__)

SCOPE = InstrumentationScope("agent-runs-exporter", __version__)
TRUNCATION_MARK = "…[truncated]"
_MAX_STATUS_CHARS = 1024
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_MAX_NS = 2**63 - 1
_SDK_ATTRIBUTES = {
    TELEMETRY_SDK_LANGUAGE: "python",
    TELEMETRY_SDK_NAME: "opentelemetry",
    TELEMETRY_SDK_VERSION: sdk_version,
}


@dataclass(frozen=True)
class SourceInfo:
    """Who a run came from: the source's label name, platform and configured service name.

    `capture_content` overrides the sink's setting for this source's runs when not None.
    """

    name: str
    platform: str
    service_name: str | None = None
    capture_content: bool | None = None


def step_span(
    root: ReadableSpan,
    source: SourceInfo,
    run: Run,
    index: int,
    content: Callable[[Any], str | None] | None = None,
) -> ReadableSpan:
    """Return the span of step `index` of `run` under `root`; `content` captures its payloads."""
    steps = run.tool_steps or ()
    step = steps[index]
    assert root.context is not None
    assert root.start_time is not None
    assert root.end_time is not None
    start, end, reported = step_window(step, index, len(steps), root.start_time, root.end_time)
    attributes = _step_attributes(step, reported)
    if content is not None and step.kind == "tool":
        attributes["gen_ai.tool.call.arguments"] = content(step.input)
        attributes["gen_ai.tool.call.result"] = content(step.output)
    model = step.kind == "model"
    return ReadableSpan(
        name=f"{'chat' if model else 'execute_tool'} {step.name}".rstrip(),
        context=_context(root.context.trace_id, ids.span_id(source.name, run.id, index)),
        parent=root.context,
        resource=root.resource,
        attributes=_present(attributes),
        kind=SpanKind.CLIENT if model else SpanKind.INTERNAL,
        status=status(step.failed, step.error),
        start_time=start,
        end_time=end,
        instrumentation_scope=SCOPE,
    )


def _step_attributes(step: ToolStep, reported: bool) -> dict[str, AttributeValue | None]:
    timing = "reported" if reported else "synthesized"
    if step.kind == "model":
        return {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": step.name,
            "gen_ai.provider.name": step.provider,
            "gen_ai.usage.input_tokens": step.input_tokens,
            "gen_ai.usage.output_tokens": step.output_tokens,
            "agent_run.tool.timing": timing,
            "error.type": "model_error" if step.failed else None,
        }
    return {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": step.name,
        "gen_ai.tool.call.id": step.call_id,
        "agent_run.tool.timing": timing,
        "error.type": "tool_error" if step.failed else None,
    }


def _parent_link(source: SourceInfo, run: Run) -> list[Link]:
    """Link a sub-agent run to the root span of the run that started it (same source)."""
    if not run.parent_run_id:
        return []
    parent_trace = int(ids.run_trace_id(source.name, run.parent_run_id, None), 16)
    parent = _context(parent_trace, ids.span_id(source.name, run.parent_run_id, "root"))
    return [Link(parent, {"agent_run.link": "parent_run", "agent_run.id": run.parent_run_id})]


def root_span(source: SourceInfo, run: Run, resource: Resource) -> ReadableSpan:
    """Return the run's `invoke_agent` span."""
    trace_id = int(ids.run_trace_id(source.name, run.id, run.trace_id), 16)
    start = to_ns(run.start_time)
    end_time = run.end_time
    end = start if end_time is None else max(start, to_ns(end_time))
    return ReadableSpan(
        name=f"invoke_agent {run.agent_name or run.agent_id}".rstrip(),
        context=_context(trace_id, ids.span_id(source.name, run.id, "root")),
        parent=None,
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
    contract = _present(
        {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.provider.name": source.platform,
            "gen_ai.agent.id": run.agent_id,
            "gen_ai.agent.name": run.agent_name,
            "gen_ai.conversation.id": run.conversation_id,
            "gen_ai.usage.input_tokens": run.input_tokens,
            "gen_ai.usage.output_tokens": run.output_tokens,
            "agent_run.usage.total_tokens": run.total_tokens,
            "error.type": run.status.value if run.status.is_error else None,
            "agent_run.id": run.id,
            "agent_run.status": run.status.value,
            "agent_run.raw_status": run.raw_status,
            "agent_run.disposition": run.disposition,
            "agent_run.cost_usd": run.cost_usd,
            "agent_run.upstream_trace_id": run.trace_id or None,
            "agent_run.parent_run_id": run.parent_run_id,
            "agent_run.source": source.name,
        }
    )
    extra = {key: value for key, value in run.attributes.items() if key not in contract}
    return {**contract, **extra}


def step_window(
    step: ToolStep, index: int, count: int, root_start: int, root_end: int
) -> tuple[int, int, bool]:
    """Return (start ns, end ns, reported) for step `index` of `count`.

    Reported times are used as given when the step has both. Otherwise the root's interval is cut
    into `count` equal consecutive slots and the step gets slot `index`, so synthesized steps keep
    their order, never leave the root span and always land on the same nanoseconds.
    """
    if step.started_at is not None and step.ended_at is not None:
        start = to_ns(step.started_at)
        return start, max(start, to_ns(step.ended_at)), True
    span = root_end - root_start
    return root_start + span * index // count, root_start + span * (index + 1) // count, False


def build_resource(source: SourceInfo, environ: Mapping[str, str]) -> Resource:
    """Build a source's resource: SDK defaults, `OTEL_RESOURCE_ATTRIBUTES`, then service.name.

    service.name is the source's configured one, else `OTEL_SERVICE_NAME`, else a service.name
    given in `OTEL_RESOURCE_ATTRIBUTES`, else the source's name.
    """
    attributes: dict[str, AttributeValue] = dict(_SDK_ATTRIBUTES)
    attributes.update(parse_resource_attributes(environ.get("OTEL_RESOURCE_ATTRIBUTES", "")))
    attributes[SERVICE_NAME] = (
        source.service_name
        or environ.get("OTEL_SERVICE_NAME")
        or attributes.get(SERVICE_NAME)
        or source.name
    )
    return Resource(attributes)


def parse_resource_attributes(raw: str) -> dict[str, str]:
    """Parse `key=value,...` as the SDK does (values percent-decoded, bad items skipped)."""
    result: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            logger.warning("ignoring invalid OTEL_RESOURCE_ATTRIBUTES item %r", item)
            continue
        result[key.strip()] = parse.unquote(value.strip())
    return result


def to_ns(epoch_s: float) -> int:
    """Convert epoch seconds to nanoseconds, at microsecond precision so floats stay exact.

    Clamped to what OTLP's fixed64 holds, so an absurd upstream duration cannot poison a batch.
    """
    return min(max(0, round(epoch_s * 1_000_000) * 1000), _MAX_NS)


def truncate(text: str, limit: int) -> str:
    """Cut `text` to `limit` characters, marking the cut."""
    return text if len(text) <= limit else text[:limit] + TRUNCATION_MARK


def _context(trace_id: int, span_hex: str) -> SpanContext:
    return SpanContext(trace_id, int(span_hex, 16), is_remote=False, trace_flags=_SAMPLED)


def status(is_error: bool, message: str | None) -> Status:
    if not is_error:
        return Status(StatusCode.UNSET)
    return Status(
        StatusCode.ERROR, truncate(redact(message), _MAX_STATUS_CHARS) if message else None
    )


def _present(attributes: Mapping[str, AttributeValue | None]) -> dict[str, AttributeValue]:
    return {key: value for key, value in attributes.items() if value is not None}
