"""OTLP metrics: the registry's families read by OTel's SDK (InMemoryMetricReader, and the
periodic reader with an in-memory exporter), equal to what /metrics serves."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider, ObservableCounter
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Histogram,
    InMemoryMetricReader,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    Sum,
)
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from exporter.config.models import OtlpMetricsSettings
from exporter.errors import ConfigError
from exporter.model import Status
from exporter.sinks.metrics.exposition import render
from exporter.sinks.metrics.otlp import SnapshotCache, register_instruments, temporality_of
from exporter.sinks.metrics.otlp_families import read_families, run_families, unit
from exporter.sinks.metrics.otlp_push import (
    MetricsPush,
    RegistryReader,
    metrics_url,
    otlp_exporter,
    resolve_protocol,
)
from exporter.sinks.metrics.runs import RunMetrics
from tests.unit.fakeclock import FakeClock
from tests.unit.poll.test_poller import Harness
from tests.unit.runs import T0, make_run
from tests.unit.sinks.test_metrics import BUCKETS, TRACE

Key = tuple[str, tuple[tuple[str, str], ...]]


class MemoryExporter(MetricExporter):
    """Keep every batch it is given."""

    def __init__(self, temporality: AggregationTemporality) -> None:
        super().__init__(preferred_temporality={ObservableCounter: temporality})
        self.batches: list[MetricsData] = []

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        self.batches.append(metrics_data)
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        pass


def fresh(per_agent_histograms: bool = True) -> tuple[RunMetrics, CollectorRegistry]:
    metrics = RunMetrics(BUCKETS, per_agent_histograms=per_agent_histograms)
    registry = CollectorRegistry()
    registry.register(metrics)
    metrics.declare_agent("s", "conduit", "ag2", statuses=("completed", "failed"), dispositions=())
    return metrics, registry


def record(metrics: RunMetrics, *runs: tuple[str, Any]) -> None:
    for run_id, status in runs:
        metrics.record_run("s", "conduit", make_run(run_id, status=Status(status)), TRACE, T0)
    metrics.publish()


def points(batch: MetricsData) -> dict[Key, Any]:
    """Return each data point of a batch by (metric name, sorted attributes)."""
    out = {}
    for resource in batch.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    out[(metric.name, tuple(sorted(point.attributes.items())))] = point
    return out


def scraped(registry: CollectorRegistry) -> dict[Key, Any]:
    """Return /metrics as OTLP would name it: counters' and gauges' values, histograms'
    (per-bucket counts, sum)."""
    text = render(registry, "text/plain").body.decode()
    out: dict[Key, Any] = {}
    for family in text_string_to_metric_families(text):
        if family.name.endswith("_created"):  # OTLP carries it as the points' start time
            continue
        buckets: dict[tuple[tuple[str, str], ...], list[float]] = {}
        for sample in family.samples:
            labels = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "le"))
            if sample.name in (family.name, family.name + "_total"):
                out[(family.name, labels)] = sample.value
            elif sample.name == family.name + "_bucket":
                buckets.setdefault(labels, []).append(sample.value)
            elif sample.name == family.name + "_sum":
                out[(family.name, labels)] = (per_bucket(buckets[labels]), sample.value)
    return out


def per_bucket(cumulative: Sequence[float]) -> list[int]:
    return [int(b - a) for a, b in zip([0.0, *cumulative[:-1]], cumulative, strict=True)]


def pushed(batch: MetricsData) -> dict[Key, Any]:
    out: dict[Key, Any] = {}
    for key, point in points(batch).items():
        if hasattr(point, "bucket_counts"):
            out[key] = (list(point.bucket_counts), point.sum)
        else:
            out[key] = point.value
    return out


def test_units_follow_the_names() -> None:
    assert unit("agent_run_duration_seconds") == "s"
    assert unit("agent_runs_exporter_poll_duration_seconds") == "s"
    assert unit("agent_run_tokens") == "{token}"
    assert unit("agent_run_cost_usd") == "{USD}"
    assert unit("agent_runs") == ""


def test_counters_read_by_the_sdk_equal_the_published_values() -> None:
    metrics, registry = fresh()
    record(metrics, ("r1", "completed"), ("r2", "failed"), ("r3", "failed"))
    reader = InMemoryMetricReader()
    cache = SnapshotCache(lambda: read_families(registry.collect()))
    names = register_instruments(MeterProvider(metric_readers=[reader]), cache)
    assert names == ["agent_runs", "agent_tool_calls"]
    data = reader.get_metrics_data()
    assert data is not None
    got = points(data)
    failed = (("agent_id", "ag1"), ("disposition", "resolved"), ("platform", "conduit"))
    failed += (("source", "s"), ("status", "failed"))
    assert got[("agent_runs", failed)].value == 2
    zero = (("agent_id", "ag2"), ("disposition", "none"), ("platform", "conduit"))
    assert got[("agent_runs", (*zero, ("source", "s"), ("status", "failed")))].value == 0
    metric = data.resource_metrics[0].scope_metrics[0].metrics[0]
    assert isinstance(metric.data, Sum)
    assert metric.data.is_monotonic


def test_unpublished_runs_are_not_pushed_either() -> None:
    metrics, registry = fresh()
    record(metrics, ("r1", "completed"))
    metrics.record_run("s", "conduit", make_run("r2"), TRACE, T0)  # not committed yet
    reader = InMemoryMetricReader()
    cache = SnapshotCache(lambda: read_families(registry.collect()))
    register_instruments(MeterProvider(metric_readers=[reader]), cache)
    data = reader.get_metrics_data()
    assert data is not None
    assert sum(p.value for k, p in points(data).items() if k[0] == "agent_runs") == 1


def test_delta_counters_report_the_increase_since_the_last_read() -> None:
    metrics, registry = fresh()
    record(metrics, ("r1", "failed"))
    reader = InMemoryMetricReader(
        preferred_temporality={ObservableCounter: AggregationTemporality.DELTA}
    )
    cache = SnapshotCache(lambda: read_families(registry.collect()))
    register_instruments(MeterProvider(metric_readers=[reader]), cache)
    reader.get_metrics_data()
    cache.clear()
    record(metrics, ("r2", "failed"), ("r3", "failed"))
    data = reader.get_metrics_data()
    assert data is not None
    runs = [p.value for k, p in points(data).items() if k[0] == "agent_runs"]
    assert sum(runs) == 2


def push(
    registry: CollectorRegistry, temporality: AggregationTemporality
) -> tuple[MetricsPush, MemoryExporter]:
    memory = MemoryExporter(temporality)
    snapshot = lambda: read_families(registry.collect())  # noqa: E731
    pusher = MetricsPush(memory, snapshot, interval_s=math.inf, temporality=temporality)
    pusher.start()
    return pusher, memory


def test_pushed_values_equal_the_scraped_ones() -> None:
    metrics, registry = fresh()
    record(metrics, ("r1", "completed"), ("r2", "failed"))
    record(metrics, *((f"x{n}", "completed") for n in range(5)))
    pusher, memory = push(registry, AggregationTemporality.CUMULATIVE)
    assert pusher.force_flush(5)
    pusher.shutdown(1)
    got, expected = pushed(memory.batches[-1]), scraped(registry)
    assert got == expected
    duration = (("agent_id", "ag1"), ("platform", "conduit"), ("source", "s"))
    assert got[("agent_run_duration_seconds", (*duration, ("status", "completed")))] == (
        [0, 6, 0, 0],
        24.0,
    )


def test_histograms_carry_exemplars_units_and_bounds() -> None:
    metrics, registry = fresh()
    record(metrics, ("r1", "completed"))
    pusher, memory = push(registry, AggregationTemporality.CUMULATIVE)
    pusher.force_flush(5)
    scope = memory.batches[-1].resource_metrics[0].scope_metrics[0]
    by_name = {metric.name: metric for metric in scope.metrics}
    duration = by_name["agent_run_duration_seconds"]
    assert duration.unit == "s"
    assert isinstance(duration.data, Histogram)
    labels = {"source": "s", "platform": "conduit", "agent_id": "ag1", "status": "completed"}
    point = next(p for p in duration.data.data_points if p.attributes == labels)
    assert list(point.explicit_bounds) == [1.0, 5.0, 30.0]
    [exemplar] = point.exemplars
    assert exemplar.filtered_attributes == {"trace_id": TRACE}
    assert exemplar.value == 4.0
    assert exemplar.time_unix_nano == int(T0 * 1e9)
    assert by_name["agent_run_tokens"].unit == "{token}"
    assert duration.data.aggregation_temporality is AggregationTemporality.CUMULATIVE
    pusher.shutdown(1)


def test_delta_pushes_send_only_what_changed_since_the_start() -> None:
    metrics, registry = fresh()
    record(metrics, ("r0", "completed"), ("r0b", "failed"))  # restored: sent before a restart
    pusher, memory = push(registry, AggregationTemporality.DELTA)
    record(metrics, ("r1", "completed"))
    pusher.force_flush(5)
    record(metrics, ("r2", "completed"), ("r3", "completed"))
    pusher.force_flush(5)
    pusher.shutdown(1)
    labels = (("agent_id", "ag1"), ("platform", "conduit"), ("source", "s"))
    key = ("agent_run_duration_seconds", (*labels, ("status", "completed")))
    first, second = points(memory.batches[0]), points(memory.batches[1])
    assert first[key].count == 1
    assert second[key].count == 2
    assert second[key].sum == 8.0
    assert second[key].start_time_unix_nano == first[key].time_unix_nano
    failed = ("agent_run_duration_seconds", (*labels, ("status", "failed")))
    assert failed not in first  # unchanged since the start: no delta point
    runs = ("agent_runs", (*labels[:1], ("disposition", "resolved"), *labels[1:]))
    assert first[(runs[0], (*runs[1], ("status", "completed")))].value == 1
    assert first[(runs[0], (*runs[1], ("status", "failed")))].value == 0
    assert second[(runs[0], (*runs[1], ("status", "completed")))].value == 2
    total = sum(p.value for k, p in second.items() if k[0] == "agent_runs")
    assert total == 2


def test_a_failed_read_skips_the_push_and_the_next_one_works() -> None:
    metrics, registry = fresh()
    record(metrics, ("r1", "completed"))
    reads = iter(["start", "fail"])

    def snapshot() -> Any:
        if next(reads, "ok") == "fail":
            raise TimeoutError("the loop is busy")
        return read_families(registry.collect())

    memory, clock = MemoryExporter(AggregationTemporality.CUMULATIVE), FakeClock(0.0)
    pusher = MetricsPush(
        memory,
        snapshot,
        interval_s=math.inf,
        temporality=AggregationTemporality.CUMULATIVE,
        clock=clock,
    )
    pusher.start()
    pusher.force_flush(5)  # nothing to read: nothing sent
    assert not any(pushed(batch) for batch in memory.batches)
    clock.advance(15)
    pusher.force_flush(5)
    assert pushed(memory.batches[-1]) == scraped(registry)
    pusher.shutdown(1)


def test_protocol_endpoint_and_temporality_follow_settings_then_variables() -> None:
    assert resolve_protocol(None, {}) == "http/protobuf"
    assert resolve_protocol(None, {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}) == "grpc"
    env = {"OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_PROTOCOL": "x"}
    assert resolve_protocol(None, env) == "grpc"
    assert resolve_protocol("http/protobuf", env) == "http/protobuf"
    with pytest.raises(ConfigError, match="OTEL_EXPORTER_OTLP_PROTOCOL"):
        resolve_protocol(None, {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"})
    assert metrics_url("http://c:4318", "http/protobuf") == "http://c:4318/v1/metrics"
    assert metrics_url("http://c:4318/v1/metrics", "http/protobuf") == "http://c:4318/v1/metrics"
    assert metrics_url("http://c:4317", "grpc") == "http://c:4317"
    assert metrics_url(None, "http/protobuf") is None  # the exporter reads OTEL_* itself
    variable = {"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "DELTA"}
    assert temporality_of(None, variable) is AggregationTemporality.DELTA
    assert temporality_of("cumulative", variable) is AggregationTemporality.CUMULATIVE
    assert temporality_of(None, {}) is AggregationTemporality.CUMULATIVE


def test_settings_defaults(tmp_path: Path) -> None:
    otlp = OtlpMetricsSettings()
    assert (otlp.enabled, otlp.interval, otlp.endpoint, otlp.protocol) == (False, 15.0, None, None)
    with pytest.raises(ValueError, match="protocol"):
        OtlpMetricsSettings(protocol="http/json")  # type: ignore[arg-type]


def test_a_polling_exporter_pushes_what_its_metrics_endpoint_serves(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    try:
        harness.poll(12)
        harness.finish()
        registry = harness.exporter.registry
        memory = MemoryExporter(AggregationTemporality.CUMULATIVE)
        pusher = MetricsPush(
            memory,
            harness.exporter.metrics_reader,  # what the daemon pushes from
            interval_s=math.inf,
            temporality=AggregationTemporality.CUMULATIVE,
        )
        pusher.start()
        pusher.force_flush(5)
        pusher.shutdown(1)
        got, expected = pushed(memory.batches[-1]), scraped(registry)
    finally:
        asyncio.run(harness.exporter.close())
    assert got == expected
    runs = sum(v for k, v in got.items() if k[0] == "agent_runs")
    assert runs == sum(harness.truth().values()) > 50
    assert {k[0] for k in got} >= {
        "agent_runs",
        "agent_run_duration_seconds",
        "agent_runs_in_progress",
        "agent_runs_exporter_api_requests",
        "agent_runs_exporter_poll_duration_seconds",
    }


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_otel_exporter_for_each_protocol_with_the_chosen_temporality(protocol: str) -> None:
    settings = OtlpMetricsSettings(
        enabled=True, endpoint="http://127.0.0.1:9", protocol=protocol, temporality="delta"
    )  # type: ignore[arg-type]
    exporter, temporality = otlp_exporter(settings, {})
    assert type(exporter).__module__.split(".")[4] == protocol.split("/", maxsplit=1)[0]
    assert temporality is AggregationTemporality.DELTA
    counters = exporter._preferred_temporality[ObservableCounter]  # what the SDK reader reads
    assert counters is AggregationTemporality.DELTA
    exporter.shutdown()


@pytest.mark.parametrize("per_agent_histograms", [True, False])
def test_run_families_from_the_published_index_equal_the_registry_read(
    per_agent_histograms: bool,
) -> None:
    metrics, registry = fresh(per_agent_histograms)
    record(metrics, ("r1", "completed"), ("r2", "failed"), ("r3", "timeout"))
    metrics.record_detail("s", "conduit", make_run("r1", input_tokens=7), make_run("r1"))
    metrics.publish()
    fast = run_families(metrics.published(), metrics.buckets, metrics.label_names)
    slow = read_families(registry.collect())
    assert {f.name: f for f in fast} == {f.name: f for f in slow}
    assert any(p.exemplars for f in fast for p in f.points.values())


def test_a_push_thread_reads_the_registry_on_the_event_loop() -> None:
    metrics, registry = fresh()
    record(metrics, ("r1", "completed"), ("r2", "failed"))
    reader = RegistryReader(registry, metrics)
    direct = reader()  # no loop given: read where called

    async def from_a_thread() -> list[Any]:
        reader.loop = asyncio.get_running_loop()
        return await asyncio.to_thread(reader)

    assert asyncio.run(from_a_thread()) == direct
    assert {f.name for f in direct} == {"agent_runs", "agent_run_duration_seconds",
                                        "agent_run_tokens", "agent_run_cost_usd",
                                        "agent_tool_calls"}  # fmt: skip
