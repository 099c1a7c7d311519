"""The fast /metrics body: byte for byte prometheus_client's, and fresh after every publish."""

from __future__ import annotations

import gzip
import math

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import GaugeMetricFamily
from prometheus_client.utils import floatToGoString

from exporter.model import Status, ToolStep
from exporter.poll.discovery import AgentInfoCollector
from exporter.poll.records import StateBatch
from exporter.sinks.metrics.exposition import GaugeLines, RenderedFamily, render
from exporter.sinks.metrics.in_progress import InProgressCollector
from exporter.sinks.metrics.lines import number
from exporter.sinks.metrics.runs import RunMetrics
from exporter.sinks.metrics.selfmetrics import SelfMetrics
from tests.unit.runs import T0, make_run

BUCKETS = {"duration": [1.0, 5.0, 30.0], "tokens": [500.0, 5000.0], "cost": [0.005, 0.05]}
TRACE = "0000000000000000" + "0f9c2b1d8a7e4f36"
OPENMETRICS = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
ACCEPTS = (
    "",
    "text/plain",
    "text/plain;version=1.0.0;escaping=allow-utf-8",
    "application/openmetrics-text",
    OPENMETRICS,
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8",
)
ODD_AGENT = 'ag "quoted" \\ back\nslash'  # agent ids come from upstream unchecked


def declared(metrics: RunMetrics, agent_id: str) -> None:
    metrics.declare_agent(
        "s", "conduit", agent_id, statuses=("completed", "failed"), dispositions=("resolved",)
    )


def daemon_registry() -> tuple[CollectorRegistry, RunMetrics, dict[tuple[str, str, Status], int]]:
    """Return a registry wired as the daemon's: self metrics, run metrics, in flight, info."""
    registry = CollectorRegistry(auto_describe=True)
    SelfMetrics(registry).declare_source("s", ("list_runs", "get_run"))
    metrics = RunMetrics(BUCKETS)
    agents = ["ag1", "ag2", ODD_AGENT]
    for agent_id in agents:
        declared(metrics, agent_id)
    metrics.publish()
    counts = {("s", "ag2", Status.RUNNING): 3}
    registry.register(metrics)
    registry.register(
        InProgressCollector(lambda: counts, lambda: [("s", "conduit", a) for a in agents])
    )
    names = {"ag1": "Concierge ✓", ODD_AGENT: 'say "hi"'}
    registry.register(
        AgentInfoCollector(lambda: [("s", "conduit", a, names.get(a)) for a in agents])
    )
    return registry, metrics, counts


def record(metrics: RunMetrics, run_id: str, agent_id: str = "ag1", **kw: object) -> None:
    run = make_run(run_id, agent_id=agent_id, **kw)  # type: ignore[arg-type]
    metrics.record_run("s", "conduit", run, TRACE, T0)
    steps = (ToolStep("lookup"), ToolStep("send", error="boom"))
    metrics.record_detail(
        "s", "conduit", make_run(run_id, agent_id=agent_id, tool_steps=steps), run
    )


def assert_same(registry: CollectorRegistry) -> None:
    for accept in ACCEPTS:
        encoder, content_type = choose_encoder(accept)
        expected = encoder(registry)
        assert render(registry, accept) == (expected, content_type, None), accept
        zipped = render(registry, accept, "gzip, deflate")
        assert zipped.encoding == "gzip"
        assert gzip.decompress(zipped.body) == expected, accept


def test_render_is_byte_for_byte_prometheus_client() -> None:
    registry, metrics, _ = daemon_registry()
    record(metrics, "r1")
    record(metrics, "r2", agent_id=ODD_AGENT, status=Status.FAILED, duration_s=99.5)
    record(metrics, "r3", agent_id="ag2", input_tokens=None, cost_usd=1e7, duration_s=1234567.0)
    metrics.publish()
    text = render(registry, OPENMETRICS).body
    assert f'# {{trace_id="{TRACE}"}} 4.0 {T0}' in text.decode()
    assert_same(registry)


def test_a_publish_renews_the_text_and_nothing_else_does() -> None:
    registry, metrics, counts = daemon_registry()
    before = render(registry, OPENMETRICS).body
    record(metrics, "r1")
    assert render(registry, OPENMETRICS).body == before  # recorded, not yet committed
    metrics.publish()
    after = render(registry, OPENMETRICS).body
    assert after != before
    assert_same(registry)
    counts[("s", "ag1", Status.QUEUED)] = 1  # in-flight counts are read at every scrape
    assert render(registry, OPENMETRICS).body != after
    assert_same(registry)


def test_new_series_take_their_place_in_order() -> None:
    registry, metrics, _ = daemon_registry()
    render(registry, "")
    declared(metrics, "ag0")  # one new agent: inserted
    metrics.publish()
    assert_same(registry)
    for index in range(100):  # many: some families rebuild their order, others insert
        declared(metrics, f"ag1{index:02d}")
    record(metrics, "r1", agent_id="ag105", disposition="escalated")
    metrics.publish()
    assert_same(registry)


def test_restored_series_are_rendered() -> None:
    first = RunMetrics(BUCKETS)
    record(first, "r1")
    batch = StateBatch()
    first.drain(batch)
    second = RunMetrics(BUCKETS)
    registry = CollectorRegistry()
    registry.register(second)
    second.restore(batch.series)
    text = render(registry, OPENMETRICS).body
    assert TRACE in text.decode()
    assert_same(registry)


def test_other_collectors_keep_their_place_between_rendered_families() -> None:
    registry, metrics, _ = daemon_registry()
    Counter("late_things", "Registered after the run metrics.", ["kind"], registry=registry)
    Gauge("late_gauge", "A plain gauge.", registry=registry).set(2.5)
    record(metrics, "r1")
    metrics.publish()
    assert_same(registry)


def test_samples_are_built_only_when_read() -> None:
    built: list[int] = []

    def reference() -> GaugeMetricFamily:
        built.append(1)
        return GaugeMetricFamily("g", "A gauge.", value=7)

    family = RenderedFamily("g", "A gauge.", "gauge", lambda _om: [b"g 7.0\n"], reference)
    text = b"".join(family.exposition(openmetrics=False))
    assert text == b"# HELP g A gauge.\n# TYPE g gauge\ng 7.0\n"
    assert built == []
    assert [sample.value for sample in family.samples] == [7]
    assert family.samples == family.samples
    assert built == [1]


@pytest.mark.parametrize(
    "value",
    [0, 0.0, -0.0, 1, 1.0, 7.5, 4095, 4095.0, 4096, 1e6, 1234567.0, 1e22, 0.1, -3.0, 2**70],
)
def test_number_is_float_to_go_string(value: float) -> None:
    assert number(value) == floatToGoString(value)


def test_number_handles_special_values() -> None:
    for value in (math.inf, -math.inf, math.nan):
        assert number(value) == floatToGoString(value)


def test_gauge_lines_are_rendered_again_only_for_new_rows() -> None:
    lines = GaugeLines("g", "A gauge.", ("source", "agent_id"))
    rows = [((f"s{i}", "a"), 1.0) for i in range(200)]
    (first,) = lines.body(rows)
    assert first.startswith(b'g{agent_id="a",source="s0"} 1.0\n')
    (again,) = lines.body(list(rows))
    assert again is first  # the same rows: the same text, not rendered again
    (one,) = lines.body(rows[:1])
    assert one == b'g{agent_id="a",source="s0"} 1.0\n'
