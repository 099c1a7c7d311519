"""The OTLP metrics push: OTel's MeterProvider, periodic reader and OTLP metric exporter.

`MetricsPush.start()` begins pushing every `interval`, reading the registry through a
`RegistryReader` on the event loop, where it changes; `shutdown(timeout)` pushes once more and
stops, bounded. The exporter honours the standard variables itself (`OTEL_EXPORTER_OTLP_METRICS_*`
then `OTEL_EXPORTER_OTLP_*`: endpoint, headers, timeout, compression, certificates); the settings'
`endpoint` (a base URL, like `traces.endpoint`) and `protocol` come first when set.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping

from opentelemetry.sdk.metrics import (
    Counter,
    Histogram,
    MeterProvider,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    UpDownCounter,
)
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    MetricExporter,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from prometheus_client.registry import Collector

from exporter.config.models import OtlpMetricsSettings
from exporter.errors import ConfigError, ConfigProblem
from exporter.sinks.metrics.otlp import (
    HistogramExporter,
    SnapshotCache,
    counter_baseline,
    register_instruments,
    temporality_of,
)
from exporter.sinks.metrics.otlp_families import (
    RUN_FAMILIES,
    Family,
    Snapshot,
    read_families,
    run_families,
)
from exporter.sinks.metrics.runs import RunMetrics
from exporter.sinks.metrics.series import Series, SeriesKey

log = logging.getLogger(__name__)

HTTP, GRPC = "http/protobuf", "grpc"
METRICS_PATH = "/v1/metrics"
SNAPSHOT_TIMEOUT_S = 5.0  # a push waits this long for the event loop to read the metrics


def resolve_protocol(protocol: str | None, environ: Mapping[str, str]) -> str:
    """Return the OTLP protocol: the setting, else the standard variables, else http/protobuf."""
    origin, chosen = "metrics.otlp.protocol", protocol
    for variable in ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        if not chosen and environ.get(variable):
            origin, chosen = variable, environ[variable]
    chosen = (chosen or HTTP).strip()
    if chosen not in (HTTP, GRPC):
        message = f"unsupported OTLP protocol {chosen!r}: use {HTTP} or {GRPC}"
        raise ConfigError([ConfigProblem(origin, message)])
    return chosen


def metrics_url(endpoint: str | None, protocol: str) -> str | None:
    """Return the URL for an explicit base endpoint (None: let the exporter read the variables)."""
    if endpoint is None or protocol == GRPC or endpoint.rstrip("/").endswith(METRICS_PATH):
        return endpoint
    return endpoint.rstrip("/") + METRICS_PATH


def otlp_exporter(
    settings: OtlpMetricsSettings, environ: Mapping[str, str]
) -> tuple[MetricExporter, AggregationTemporality]:
    """Return OTel's OTLP metric exporter for the settings, and the temporality it sends."""
    protocol = resolve_protocol(settings.protocol, environ)
    url = metrics_url(settings.endpoint, protocol)
    chosen = temporality_of(settings.temporality, environ)
    preferred: dict[type, AggregationTemporality] = {
        kind: chosen
        for kind in (Counter, UpDownCounter, Histogram, ObservableCounter, ObservableUpDownCounter)
    }
    preferred[ObservableGauge] = AggregationTemporality.CUMULATIVE
    log.info("pushing metrics over OTLP %s to %s", protocol, url or "the OTEL_* endpoint")
    if protocol == GRPC:
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (  # noqa: PLC0415
            OTLPMetricExporter as GrpcExporter,
        )

        return GrpcExporter(endpoint=url, preferred_temporality=preferred), chosen
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import (  # noqa: PLC0415
        OTLPMetricExporter as HttpExporter,
    )

    return HttpExporter(endpoint=url, preferred_temporality=preferred), chosen


class RegistryReader:
    """Read the registry for a push: the small families and a copy of the run metrics' index on
    the event loop (about 1 ms at 1,000 agents), the run metrics' points on the caller's thread."""

    def __init__(self, registry: Collector, run_metrics: RunMetrics) -> None:
        self.registry = registry
        self.run_metrics = run_metrics
        self.loop: asyncio.AbstractEventLoop | None = None  # None: read where called

    def __call__(self) -> list[Family]:
        """Return every family of the registry."""
        loop = self.loop
        with contextlib.suppress(RuntimeError):  # no running loop: a reader thread
            if loop is None or asyncio.get_running_loop() is loop:
                return self._build(self._read())
        assert loop is not None
        future = asyncio.run_coroutine_threadsafe(self._read_on_loop(), loop)
        return self._build(future.result(timeout=SNAPSHOT_TIMEOUT_S))

    def _read(self) -> tuple[list[Family], dict[SeriesKey, Series]]:
        others = (m for m in self.registry.collect() if m.name not in RUN_FAMILIES)
        return read_families(others), self.run_metrics.published()

    async def _read_on_loop(self) -> tuple[list[Family], dict[SeriesKey, Series]]:
        return self._read()

    def _build(self, read: tuple[list[Family], dict[SeriesKey, Series]]) -> list[Family]:
        others, published = read
        run_metrics = self.run_metrics
        return others + run_families(published, run_metrics.buckets, run_metrics.label_names)


class MetricsPush:
    """Push the registry's families over OTLP every `interval` seconds until shut down."""

    def __init__(
        self,
        exporter: MetricExporter,
        snapshot: Snapshot,
        *,
        interval_s: float,
        temporality: AggregationTemporality,
        resource: Resource | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._resource = resource or Resource.create({"service.name": "agent-runs-exporter"})
        self._cache = SnapshotCache(snapshot, clock=clock)
        self._exporter = HistogramExporter(
            exporter, self._cache, temporality=temporality, resource=self._resource
        )
        self._interval_ms = interval_s * 1000
        self._temporality = temporality
        self._provider: MeterProvider | None = None

    def start(self) -> None:
        """Create the instruments and start the periodic push."""
        if self._provider is not None:
            return
        reader = PeriodicExportingMetricReader(
            self._exporter, export_interval_millis=self._interval_ms
        )
        self._provider = MeterProvider(metric_readers=[reader], resource=self._resource)
        families = self._cache.families().values()
        baseline = None
        if self._temporality is AggregationTemporality.DELTA:  # restored counts were sent
            baseline = counter_baseline(families)
            self._exporter.set_baseline(families)
        names = register_instruments(self._provider, self._cache, baseline)
        self._cache.clear()
        log.info("pushing %d metric families over OTLP", len(names))

    def force_flush(self, timeout_s: float) -> bool:
        """Push now; return whether it finished in time."""
        if self._provider is None:
            return False
        return self._provider.force_flush(timeout_millis=timeout_s * 1000)

    def shutdown(self, timeout_s: float) -> None:
        """Push the last values and stop (idempotent)."""
        provider, self._provider = self._provider, None
        if provider is not None:
            provider.shutdown(timeout_millis=timeout_s * 1000)
