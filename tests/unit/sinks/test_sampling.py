"""Sampling successful runs' traces: deterministic per run, close to the ratio, failures kept."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
from opentelemetry.sdk.trace.sampling import TraceIdRatioBased

from exporter.model import Status
from exporter.poll.tracker import Tracker
from exporter.sinks.traces.ids import keep_trace, run_trace_id
from tests.unit.runs import make_run


def test_failures_are_always_traced() -> None:
    failed = make_run("r1", status=Status.FAILED)
    assert keep_trace("s", failed, 0.0)
    assert keep_trace("s", replace(failed, status=Status.TIMEOUT), 0.0)


@pytest.mark.parametrize("ratio", [0.0, 0.1, 0.5, 1.0])
def test_the_kept_share_is_close_to_the_ratio(ratio: float) -> None:
    runs = [make_run(f"run-{i}", status=Status.COMPLETED, trace_id=None) for i in range(4000)]
    kept = sum(keep_trace("s", run, ratio) for run in runs)
    assert abs(kept / len(runs) - ratio) < 0.03


def test_the_decision_is_the_same_every_time() -> None:
    runs = [make_run(f"run-{i}", status=Status.COMPLETED, trace_id=None) for i in range(200)]
    first = [keep_trace("s", run, 0.3) for run in runs]
    assert first == [keep_trace("s", run, 0.3) for run in runs]


def upstream_id(rng: random.Random, index: int) -> str | None:
    """Return no upstream trace id, a 16-hex or a 32-hex one, in turn."""
    return (None, f"{rng.getrandbits(64):016x}", f"{rng.getrandbits(128):032x}")[index % 3]


@pytest.mark.parametrize("ratio", [0.01, 0.1, 0.25, 0.5, 0.9, 0.99])
def test_the_decision_is_the_otel_sdk_samplers(ratio: float) -> None:
    rng = random.Random(12)
    sampler = TraceIdRatioBased(ratio)
    runs = [
        make_run(f"run-{i}", status=Status.COMPLETED, trace_id=upstream_id(rng, i))
        for i in range(3000)
    ]
    ours = [keep_trace("s", run, ratio) for run in runs]
    trace_ids = [int(run_trace_id("s", run.id, run.trace_id), 16) for run in runs]
    sdk = [sampler.should_sample(None, t, "x").decision.is_sampled() for t in trace_ids]
    assert ours == sdk
    assert 0 < sum(ours) < len(runs)  # both decisions occur: the comparison is not vacuous


def test_the_tracker_queues_only_sampled_traces_but_counts_every_run() -> None:
    tracker = Tracker(lookback_s=3600, traces_enabled=True, sample_successful=0.0)
    now = 1_800_000_000.0
    tracker.observe("s", make_run("ok", status=Status.COMPLETED, created=now - 5), now)
    tracker.observe("s", make_run("bad", status=Status.FAILED, created=now - 5), now)
    assert [r.run_id for r in tracker.pending_traces("s")] == ["bad"]
    assert len(tracker) == 2
