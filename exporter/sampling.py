"""Which successful runs get a trace: a deterministic ratio over the run's trace id.

The decision is the OpenTelemetry `TraceIdRatioBased` rule (the low 64 bits of the trace id below
`ratio * 2**64`), so it is the same after a restart and agrees with a collector sampling at the
same ratio. Runs that did not complete (failed, timeout, cancelled) are always traced.
"""

from __future__ import annotations

from exporter import ids
from exporter.model import Run, Status

_LOW_64 = (1 << 64) - 1


def keep_trace(source: str, run: Run, ratio: float) -> bool:
    """Say whether the run's trace is exported when successful runs are sampled at `ratio`."""
    if run.status is not Status.COMPLETED or ratio >= 1.0:
        return True
    if ratio <= 0.0:
        return False
    trace_id = int(ids.run_trace_id(source, run.id, run.trace_id), 16)
    return (trace_id & _LOW_64) < round(ratio * (1 << 64))
