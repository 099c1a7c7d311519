"""Run metrics: values on a fresh registry, exemplars, persistence and publish-after-commit."""

from __future__ import annotations

from dataclasses import replace

from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics.exposition import generate_latest

from exporter.model import Status, ToolStep
from exporter.poll.records import StateBatch
from exporter.sinks.metrics.runs import RunMetrics
from exporter.sinks.metrics.series import (
    MAX_DISPOSITIONS_PER_AGENT,
    LabelCap,
    clean_text,
    label_value,
)
from tests.unit.runs import T0, make_run

BUCKETS = {"duration": [1.0, 5.0, 30.0], "tokens": [500.0, 5000.0], "cost": [0.005, 0.05]}
TRACE = "0000000000000000" + "0f9c2b1d8a7e4f36"
AGENT = {"source": "s", "platform": "conduit", "agent_id": "ag1"}


def fresh() -> tuple[RunMetrics, CollectorRegistry]:
    metrics = RunMetrics(BUCKETS)
    registry = CollectorRegistry()
    registry.register(metrics)
    return metrics, registry


def test_terminal_run_fills_every_metric() -> None:
    metrics, registry = fresh()
    metrics.record_run("s", "conduit", make_run("r1"), TRACE, T0)
    metrics.publish()
    get = registry.get_sample_value
    assert get("agent_runs_total", AGENT | {"status": "completed", "disposition": "resolved"}) == 1
    labels = AGENT | {"status": "completed"}
    assert get("agent_run_duration_seconds_bucket", labels | {"le": "1.0"}) == 0
    assert get("agent_run_duration_seconds_bucket", labels | {"le": "5.0"}) == 1
    assert get("agent_run_duration_seconds_bucket", labels | {"le": "+Inf"}) == 1
    assert get("agent_run_duration_seconds_sum", labels) == 4.0
    assert get("agent_run_tokens_sum", AGENT | {"type": "input"}) == 1000
    assert get("agent_run_tokens_count", AGENT | {"type": "output"}) == 1
    assert get("agent_run_cost_usd_sum", AGENT) == 0.01


def test_absent_values_are_not_observed_as_zero() -> None:
    metrics, registry = fresh()
    run = replace(
        make_run("r1", status=Status.FAILED),
        disposition=None,
        duration_s=None,
        completed_at=None,
        input_tokens=None,
        output_tokens=None,
        cost_usd=None,
    )
    metrics.record_run("s", "conduit", run, TRACE, T0)
    metrics.publish()
    get = registry.get_sample_value
    assert get("agent_runs_total", AGENT | {"status": "failed", "disposition": "none"}) == 1
    assert get("agent_run_duration_seconds_count", AGENT | {"status": "failed"}) is None
    assert get("agent_run_tokens_count", AGENT | {"type": "input"}) is None
    assert get("agent_run_cost_usd_count", AGENT) is None


def test_duration_exemplar_carries_the_trace_id_in_openmetrics() -> None:
    metrics, registry = fresh()
    metrics.record_run("s", "conduit", make_run("r1"), TRACE, T0)
    metrics.publish()
    text = generate_latest(registry).decode()
    line = next(x for x in text.splitlines() if 'le="5.0"' in x and "duration" in x)
    assert f'# {{trace_id="{TRACE}"}} 4.0' in line


def test_tool_calls_by_tool_and_result() -> None:
    metrics, registry = fresh()
    steps = (ToolStep("lookup"), ToolStep("lookup", error="boom"), ToolStep("send email!"))
    run = make_run("r1", tool_steps=steps)
    metrics.record_detail("s", "conduit", run, run)
    metrics.publish()
    get = registry.get_sample_value
    assert get("agent_tool_calls_total", AGENT | {"tool": "lookup", "result": "ok"}) == 1
    assert get("agent_tool_calls_total", AGENT | {"tool": "lookup", "result": "error"}) == 1
    assert get("agent_tool_calls_total", AGENT | {"tool": "other", "result": "ok"}) == 1


def test_label_values_are_bounded() -> None:
    assert label_value(None) == "none"
    assert label_value("escalation_and_answer") == "escalation_and_answer"
    assert label_value("x" * 65) == "other"
    assert label_value('bad"quote') == "other"


def test_free_text_dispositions_all_count_as_other() -> None:
    metrics, registry = fresh()
    for index in range(50):
        run = make_run(f"r{index}", disposition=f"free text #{index}: not a label value")
        metrics.record_run("s", "conduit", run, TRACE, T0)
    metrics.publish()
    other = AGENT | {"status": "completed", "disposition": "other"}
    assert registry.get_sample_value("agent_runs_total", other) == 50
    assert len(metrics._kinds) == 0  # none of them is remembered by its raw text


def test_values_are_published_only_when_asked() -> None:
    metrics, registry = fresh()
    metrics.record_run("s", "conduit", make_run("r1"), TRACE, T0)
    labels = AGENT | {"status": "completed", "disposition": "resolved"}
    assert registry.get_sample_value("agent_runs_total", labels) is None
    metrics.publish()
    assert registry.get_sample_value("agent_runs_total", labels) == 1


def test_cumulative_values_survive_a_restart_through_the_state_batch() -> None:
    first, _ = fresh()
    first.record_run("s", "conduit", make_run("r1"), TRACE, T0)
    first.record_run("s", "conduit", make_run("r2"), TRACE, T0)
    batch = StateBatch()
    first.drain(batch)
    second, registry = fresh()
    second.restore(batch.series)
    labels = AGENT | {"status": "completed", "disposition": "resolved"}
    assert registry.get_sample_value("agent_runs_total", labels) == 2
    second.record_run("s", "conduit", make_run("r3"), TRACE, T0)
    second.publish()
    assert registry.get_sample_value("agent_runs_total", labels) == 3
    exemplar_text = generate_latest(registry).decode()
    assert TRACE in exemplar_text


def test_stored_histogram_with_other_buckets_is_dropped() -> None:
    first, _ = fresh()
    first.record_run("s", "conduit", make_run("r1"), TRACE, T0)
    batch = StateBatch()
    first.drain(batch)
    other = RunMetrics(BUCKETS | {"duration": [2.0, 4.0, 8.0, 16.0]})
    registry = CollectorRegistry()
    registry.register(other)
    other.restore(batch.series)
    assert (
        registry.get_sample_value(
            "agent_run_duration_seconds_count", AGENT | {"status": "completed"}
        )
        is None
    )
    assert (
        registry.get_sample_value(
            "agent_runs_total", AGENT | {"status": "completed", "disposition": "resolved"}
        )
        == 1
    )


def test_a_total_without_split_is_recorded_as_type_total() -> None:
    metrics, registry = fresh()
    run = make_run("r1", input_tokens=None, output_tokens=None, total_tokens=1450)
    metrics.record_run("s", "runtype", run, TRACE, T0)
    metrics.publish()
    labels = AGENT | {"platform": "runtype"}
    assert registry.get_sample_value("agent_run_tokens_sum", labels | {"type": "total"}) == 1450
    assert registry.get_sample_value("agent_run_tokens_count", labels | {"type": "input"}) is None


def test_detail_usage_counts_only_what_the_listed_run_lacked() -> None:
    metrics, registry = fresh()
    listed = make_run("r1", input_tokens=None, output_tokens=None, cost_usd=None)
    metrics.record_run("s", "elizaos", listed, TRACE, T0)
    detailed = replace(listed, input_tokens=150, output_tokens=25, cost_usd=0.003)
    model_call = ToolStep("TEXT_LARGE", kind="model")
    metrics.record_detail("s", "elizaos", replace(detailed, tool_steps=(model_call,)), listed)
    already = make_run("r2")  # listed with usage: its detail adds none again
    metrics.record_run("s", "elizaos", already, TRACE, T0)
    metrics.record_detail("s", "elizaos", already, already)
    metrics.publish()
    labels = AGENT | {"platform": "elizaos"}
    get = registry.get_sample_value
    assert get("agent_run_tokens_sum", labels | {"type": "input"}) == 1150
    assert get("agent_run_tokens_count", labels | {"type": "input"}) == 2
    assert get("agent_run_cost_usd_count", labels) == 2
    assert get("agent_tool_calls_total", labels | {"tool": "TEXT_LARGE", "result": "ok"}) is None


def test_declared_series_follow_what_the_platform_reports() -> None:
    metrics, registry = fresh()
    metrics.declare_agent(
        "s", "acp", "srv", statuses=("completed",), dispositions=(), token_types=(), has_cost=False
    )
    metrics.publish()
    labels = {"source": "s", "platform": "acp", "agent_id": "srv"}
    get = registry.get_sample_value
    assert get("agent_runs_total", labels | {"status": "completed", "disposition": "none"}) == 0
    assert get("agent_run_tokens_count", labels | {"type": "input"}) is None
    assert get("agent_run_cost_usd_count", labels) is None


def test_dispositions_are_capped_per_agent_with_an_other_overflow() -> None:
    metrics, registry = fresh()
    for index in range(MAX_DISPOSITIONS_PER_AGENT + 30):
        run = replace(make_run(f"r{index}"), disposition=f"d{index}")
        metrics.record_run("s", "conduit", run, TRACE, T0)
        metrics.record_run("s", "conduit", replace(run, agent_id="ag2"), TRACE, T0)
    metrics.publish()
    get = registry.get_sample_value
    assert get("agent_runs_total", AGENT | {"status": "completed", "disposition": "d0"}) == 1
    last = f"d{MAX_DISPOSITIONS_PER_AGENT - 1}"
    assert get("agent_runs_total", AGENT | {"status": "completed", "disposition": last}) == 1
    over = AGENT | {"status": "completed", "disposition": f"d{MAX_DISPOSITIONS_PER_AGENT}"}
    assert get("agent_runs_total", over) is None
    other = AGENT | {"status": "completed", "disposition": "other"}
    assert get("agent_runs_total", other) == 30
    assert get("agent_runs_total", other | {"agent_id": "ag2"}) == 30  # each agent its own cap


def test_label_cap_cleans_and_bounds() -> None:
    cap = LabelCap(2)
    assert cap.value("s", "a", None) == "none"
    assert cap.value("s", "a", "x\x00y") == "other"
    assert [cap.value("s", "a", v) for v in ("p", "q", "r", "p")] == ["p", "q", "other", "p"]
    assert clean_text("Na\x00me\n\x9b", 3) == "Nam"


def aggregated() -> tuple[RunMetrics, CollectorRegistry]:
    metrics = RunMetrics(BUCKETS, per_agent_histograms=False)
    registry = CollectorRegistry()
    registry.register(metrics)
    return metrics, registry


def test_without_per_agent_histograms_they_sum_over_agents_and_counters_stay_per_agent() -> None:
    metrics, registry = aggregated()
    metrics.declare_agent("s", "conduit", "ag2", statuses=["completed"], dispositions=[])
    metrics.record_run("s", "conduit", make_run("r1"), TRACE, T0)
    metrics.record_run("s", "conduit", make_run("r2", agent_id="ag2"), TRACE, T0)
    metrics.publish()
    get = registry.get_sample_value
    source = {"source": "s", "platform": "conduit"}
    assert get("agent_runs_total", AGENT | {"status": "completed", "disposition": "resolved"}) == 1
    ag2 = source | {"agent_id": "ag2", "status": "completed", "disposition": "resolved"}
    assert get("agent_runs_total", ag2) == 1
    assert get("agent_run_duration_seconds_count", source | {"status": "completed"}) == 2
    assert get("agent_run_duration_seconds_sum", source | {"status": "completed"}) == 8.0
    assert get("agent_run_tokens_count", source | {"type": "input"}) == 2
    assert get("agent_run_cost_usd_sum", source) == 0.02
    assert get("agent_run_duration_seconds_count", AGENT | {"status": "completed"}) is None
    text = generate_latest(registry).decode()
    assert "agent_run_cost_usd_count{" in text
    assert not any("agent_id" in line for line in text.splitlines() if "agent_run_" in line)


def test_switching_per_agent_histograms_keeps_each_modes_series_apart() -> None:
    first, _ = fresh()  # per agent
    first.record_run("s", "conduit", make_run("r1"), TRACE, T0)
    batch = StateBatch()
    first.drain(batch)
    second, registry = aggregated()  # restarted with per_agent_histograms: false
    second.restore(batch.series)
    second.record_run("s", "conduit", make_run("r2"), TRACE, T0)
    second.publish()
    source = {"source": "s", "platform": "conduit", "status": "completed"}
    get = registry.get_sample_value
    assert get("agent_run_duration_seconds_count", source) == 1  # not 2: nothing folded in
    assert get("agent_run_duration_seconds_count", AGENT | {"status": "completed"}) is None
    labels = AGENT | {"status": "completed", "disposition": "resolved"}
    assert get("agent_runs_total", labels) == 2  # counters go on as before
    second.drain(batch)  # both modes' rows now in the state
    third, registry = fresh()  # and back: the per-agent series go on from their own value
    third.restore(batch.series)
    third.publish()
    per_agent = AGENT | {"status": "completed"}
    assert registry.get_sample_value("agent_run_duration_seconds_count", per_agent) == 1
    assert registry.get_sample_value("agent_runs_total", labels) == 2
