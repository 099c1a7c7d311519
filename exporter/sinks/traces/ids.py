"""Trace and span ids for a run, derived so that a re-export is identical.

The trace id joins the run's spans with whatever the platform's agent backend emitted under its own
trace id; when there is none usable, it is derived from (source, run id). A sub-agent run started
by a known tool call of its parent (`parent_call_id`) joins the trace of its lineage's root run
instead, under that tool call's span: both ids are derived from the parent's ids alone, so the
child needs neither the parent run nor its spans in hand. That holds because the platform that
reports lineage (Runtype) carries no upstream trace id, and assumes that every sub-agent between
the root and the parent was nested the same way (Runtype starts sub-agents from tool calls).

Span ids come from (source, run id, "root") for the run's own span, (source, run id, call id) for a
step with a call id (the first step with that id), else (source, run id, step position).

`keep_trace` says which successful runs get a trace. The decision is the OpenTelemetry SDK's own
`TraceIdRatioBased` sampler asked about the run's trace id, so it is the same after a restart and
agrees with a collector sampling at the same ratio. Runs that did not complete (failed, timeout,
cancelled) are always traced.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from functools import lru_cache

from opentelemetry.sdk.trace.sampling import Decision, TraceIdRatioBased

from exporter.model import Run, Status, ToolStep

_HEX = re.compile(r"[0-9a-f]+")


def _digest(*parts: str) -> bytes:
    return hashlib.sha256("\x1f".join(parts).encode()).digest()


def run_trace_id(source: str, run_id: str, upstream_trace_id: str | None) -> str:
    """Return the 32-hex trace id for a run's spans (and its exemplar).

    A 32-hex upstream id is used as is, a 16-hex one is left-padded with zeros (the usual rule for
    64-bit ids); anything else is replaced by an id derived from (source, run id).
    """
    return f"{trace_id_value(source, run_id, upstream_trace_id):032x}"


def trace_id_value(source: str, run_id: str, upstream_trace_id: str | None) -> int:
    """Return `run_trace_id` as an integer, as span contexts hold it."""
    if upstream_trace_id:
        candidate = upstream_trace_id.strip().lower()
        if len(candidate) in (16, 32) and _HEX.fullmatch(candidate):
            value = int(candidate, 16)
            if value:
                return value
    return int.from_bytes(_digest("trace", source, run_id)[:16], "big") or 1


def trace_of(source: str, run: Run) -> str:
    """Return the 32-hex trace id of the run's spans (and its exemplar): see `trace_value_of`."""
    return f"{trace_value_of(source, run):032x}"


def trace_value_of(source: str, run: Run) -> int:
    """Return the trace id of the run's spans: its lineage's when nested, else `trace_id_value`."""
    if nested(run):
        return parent_trace_value(source, run)
    return trace_id_value(source, run.id, run.trace_id)


def nested(run: Run) -> bool:
    """Say whether the run's root span is a child of its parent run's tool-call span."""
    return bool(run.parent_run_id and run.parent_call_id)


def parent_trace_value(source: str, run: Run) -> int:
    """Return the trace id the run's parent run lives in: its lineage root's (`root_run_id`)."""
    top = run.root_run_id or run.parent_run_id
    if not top:
        raise ValueError(f"run {run.id!r} has no parent")
    return trace_id_value(source, top, None)


def span_id(source: str, run_id: str, step: int | str) -> str:
    """Return the 16-hex span id of step `step` of a run ("root" names the run's own span)."""
    return f"{span_id_value(source, run_id, step):016x}"


def span_id_value(source: str, run_id: str, step: int | str) -> int:
    """Return `span_id` as an integer, as span contexts hold it."""
    return int.from_bytes(_digest("span", source, run_id, str(step))[:8], "big") or 1


def call_span_id_value(source: str, run_id: str, call_id: str) -> int:
    """Return the span id of the tool call `call_id` of a run, as span contexts hold it."""
    return int.from_bytes(_digest("span", source, run_id, "call", call_id)[:8], "big") or 1


def step_span_ids(source: str, run_id: str, steps: Sequence[ToolStep]) -> list[int]:
    """Return the span ids of a run's steps: by call id when a step has one, else by position."""
    prefix = f"span\x1f{source}\x1f{run_id}\x1f".encode()  # as `_digest` joins the parts
    sha256 = hashlib.sha256
    seen: set[str] = set()
    values = []
    for index, step in enumerate(steps):
        call_id = step.call_id
        if call_id and call_id not in seen:  # a repeated id keeps its position's span id
            seen.add(call_id)
            key = f"call\x1f{call_id}"
        else:
            key = str(index)
        values.append(int.from_bytes(sha256(prefix + key.encode()).digest()[:8], "big") or 1)
    return values


def keep_trace(source: str, run: Run, ratio: float) -> bool:
    """Say whether the run's trace is exported when successful runs are sampled at `ratio`."""
    if run.status is not Status.COMPLETED or ratio >= 1.0:
        return True
    if ratio <= 0.0:
        return False
    trace_id = trace_value_of(source, run)  # a nested run goes with its lineage
    decision = _sampler(ratio).should_sample(None, trace_id, "invoke_agent").decision
    return decision is Decision.RECORD_AND_SAMPLE


@lru_cache(maxsize=8)
def _sampler(ratio: float) -> TraceIdRatioBased:
    return TraceIdRatioBased(ratio)
