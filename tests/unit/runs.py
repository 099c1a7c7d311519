"""Small builders of `Run` values for unit tests."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from exporter.model import Run, Status

T0 = 1_800_000_000.0


def make_run(
    run_id: str, *, created: float = T0, status: Status = Status.COMPLETED, **kw: Any
) -> Run:
    """Return a run of agent `ag1` with sensible values for its status."""
    terminal = status.terminal
    base = Run(
        id=run_id,
        agent_id=kw.pop("agent_id", "ag1"),
        status=status,
        raw_status=status.value,
        created_at=created,
        completed_at=created + 4.0 if terminal else None,
        duration_s=4.0 if terminal else None,
        disposition="resolved" if terminal else None,
        input_tokens=1000 if terminal else None,
        output_tokens=200 if terminal else None,
        cost_usd=0.01 if terminal else None,
        trace_id="0f9c2b1d8a7e4f36",
    )
    return replace(base, **kw)
