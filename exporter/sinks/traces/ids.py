"""Trace and span ids for a run, derived so that a re-export is identical.

The trace id joins the run's spans with whatever the platform's agent backend emitted under its own
trace id; when there is none usable, it is derived from (source, run id).

`keep_trace` says which successful runs get a trace. The decision is the OpenTelemetry SDK's own
`TraceIdRatioBased` sampler asked about the run's trace id, so it is the same after a restart and
agrees with a collector sampling at the same ratio. Runs that did not complete (failed, timeout,
cancelled) are always traced.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache

from opentelemetry.sdk.trace.sampling import Decision, TraceIdRatioBased

from exporter.model import Run, Status

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


def span_id(source: str, run_id: str, step: int | str) -> str:
    """Return the 16-hex span id of step `step` of a run ("root" names the run's own span)."""
    return f"{span_id_value(source, run_id, step):016x}"


def span_id_value(source: str, run_id: str, step: int | str) -> int:
    """Return `span_id` as an integer, as span contexts hold it."""
    return int.from_bytes(_digest("span", source, run_id, str(step))[:8], "big") or 1


def span_id_values(source: str, run_id: str, count: int) -> list[int]:
    """Return the span ids of steps 0 … count-1 of a run, as integers."""
    prefix = f"span\x1f{source}\x1f{run_id}\x1f".encode()
    sha256 = hashlib.sha256
    return [
        int.from_bytes(sha256(prefix + str(step).encode()).digest()[:8], "big") or 1
        for step in range(count)
    ]


def keep_trace(source: str, run: Run, ratio: float) -> bool:
    """Say whether the run's trace is exported when successful runs are sampled at `ratio`."""
    if run.status is not Status.COMPLETED or ratio >= 1.0:
        return True
    if ratio <= 0.0:
        return False
    trace_id = trace_id_value(source, run.id, run.trace_id)
    decision = _sampler(ratio).should_sample(None, trace_id, "invoke_agent").decision
    return decision is Decision.RECORD_AND_SAMPLE


@lru_cache(maxsize=8)
def _sampler(ratio: float) -> TraceIdRatioBased:
    return TraceIdRatioBased(ratio)
