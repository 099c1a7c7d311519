"""Settle the runs whose spans the span queue is done with: a trace is done once exported.

    poller ──submit(spans, Sent)──► span queue ──► collector
       ▲                                │
       └── settle(): exported → trace done, tool metrics recorded (one transaction with them)
                     dropped  → back in the backlog, up to `max_attempts` times

A run is marked done only once the collector accepted its spans, so a crash before that leaves it
pending in the state file, and its spans are sent again, with identical ids.
"""

from __future__ import annotations

from dataclasses import dataclass

from exporter.model import Run
from exporter.sinks.metrics import RunMetrics
from exporter.sinks.spans import SourceInfo
from exporter.sinks.traces import TraceSink
from exporter.state import RunRecord
from exporter.tracker import Tracker


@dataclass(frozen=True, slots=True)
class Sent:
    """A run whose spans are in the span queue, waiting to be settled."""

    info: SourceInfo
    record: RunRecord
    run: Run  # with its detail
    listed: Run  # as the list showed it


def settle(traces: TraceSink, tracker: Tracker, run_metrics: RunMetrics, max_attempts: int) -> None:
    """Mark done the runs whose spans were exported; put dropped ones back in the backlog."""
    for settled in traces.settled():
        sent = settled.key
        if not isinstance(sent, Sent):
            continue
        if not settled.exported and tracker.trace_failed(sent.record) < max_attempts:
            tracker.trace_retry(sent.record)  # dropped from a full queue: try again later
            continue
        run_metrics.record_detail(sent.info.name, sent.info.platform, sent.run, sent.listed)
        tracker.trace_done(sent.record)
