"""The /metrics families pushed over OTLP, read from the same registry so both always agree.

Every family the Prometheus registry serves is pushed under the same name (a counter under its
family name, `agent_runs` for `agent_runs_total`), its labels as attributes, with a unit:

    counter    an SDK `ObservableCounter` whose callback reads the published cumulative value
    gauge      an SDK `ObservableGauge`, read the same way
    histogram  built here from the published buckets (the SDK has no observable histogram, and
               recording each run again would neither restore state nor wait for the commit),
               with the duration exemplars as OTLP exemplars (`trace_id` as an attribute)

A `MeterProvider` with a `PeriodicExportingMetricReader` drives the push; `HistogramExporter`
adds the histograms to each batch the reader collects, right before OTel's OTLP exporter sends it.
All families are read in one `snapshot` per collection, taken where the registry is updated; the
run metrics, the large part, as a copy of their published index (`otlp_families.run_families`
builds them off that thread).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace

from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from exporter import __version__
from exporter.sinks.metrics.otlp_families import Attributes, Family, Point, Snapshot, unit

log = logging.getLogger(__name__)

SCOPE = InstrumentationScope("agent-runs-exporter", __version__)


class SnapshotCache:
    """One snapshot per collection: taken at the first read, dropped by `clear` after the export,
    or once older than `max_age_s` (a collection with nothing to export calls no `clear`)."""

    def __init__(
        self,
        snapshot: Snapshot,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_age_s: float = 1.0,
    ) -> None:
        self._snapshot = snapshot
        self._clock = clock
        self._max_age_s = max_age_s
        self._families: dict[str, Family] | None = None
        self._taken = 0.0

    def families(self) -> dict[str, Family]:
        """Return the current families by name."""
        now = self._clock()
        if self._families is None or now - self._taken > self._max_age_s:
            self._taken = now
            try:
                self._families = {family.name: family for family in self._snapshot()}
            except Exception as exc:  # a failed read skips this push, never the daemon
                log.warning("cannot read the metrics for OTLP: %s", exc)
                self._families = {}
        return self._families

    def clear(self) -> None:
        """Take a new snapshot at the next read."""
        self._families = None


Baseline = Mapping[tuple[str, Attributes], float]


def observations(family: Family | None, baseline: Baseline) -> list[Observation]:
    """Return a counter's or gauge's values (less `baseline`) as observations, labels as
    attributes."""
    if family is None:
        return []
    name = family.name
    return [
        Observation(value - baseline.get((name, key), 0.0), dict(key))
        for key, value in family.values.items()
    ]


def counter_baseline(families: Iterable[Family]) -> dict[tuple[str, Attributes], float]:
    """Return the counters' values now: with delta temporality, what a push must not send again
    (the counts restored from the state file were sent before the restart)."""
    return {
        (family.name, key): value
        for family in families
        if family.kind == "counter"
        for key, value in family.values.items()
    }


def register_instruments(
    meter_provider: MeterProvider, cache: SnapshotCache, baseline: Baseline | None = None
) -> list[str]:
    """Create an observable instrument for each counter and gauge family; return the names.

    Counters report their increase since `baseline` (default: their whole value).
    """
    meter = meter_provider.get_meter(SCOPE.name, SCOPE.version)
    created = []
    for family in cache.families().values():
        if family.kind not in ("counter", "gauge", "info"):
            continue
        callback, symbol = _callback(cache, family.name, baseline or {}), unit(family.name)
        if family.kind == "counter":
            meter.create_observable_counter(family.name, [callback], symbol, family.help)
        else:
            meter.create_observable_gauge(family.name, [callback], symbol, family.help)
        created.append(family.name)
    return created


def _callback(
    cache: SnapshotCache, name: str, baseline: Baseline
) -> Callable[[CallbackOptions], list[Observation]]:
    def observe(_options: CallbackOptions) -> list[Observation]:
        return observations(cache.families().get(name), baseline)

    return observe


class HistogramExporter(MetricExporter):
    """Send each batch through `inner` with the registry's histograms added.

    The histograms' temporality is `temporality`: delta points are the change since the last
    successful export (a series that did not change is left out).
    """

    def __init__(
        self,
        inner: MetricExporter,
        cache: SnapshotCache,
        *,
        temporality: AggregationTemporality,
        resource: Resource,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(
            preferred_temporality=inner._preferred_temporality,
            preferred_aggregation=inner._preferred_aggregation,
        )
        self._inner = inner
        self._cache = cache
        self._temporality = temporality
        self._resource = resource
        self._clock = clock
        self._start = int(clock() * 1e9)
        self._last: dict[tuple[str, Attributes], Point] = {}
        self._last_time = self._start

    def set_baseline(self, families: Iterable[Family]) -> None:
        """Send, with delta temporality, only what the histograms gain after `families`."""
        for family in families:
            for attributes, point in family.points.items():
                self._last[(family.name, attributes)] = point

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: object
    ) -> MetricExportResult:
        """Export the batch and the histograms."""
        try:
            now = int(self._clock() * 1e9)
            histograms, sent = self._histograms(now)
            batch = _with(metrics_data, histograms, self._resource)
            result = self._inner.export(batch, timeout_millis)
        finally:
            self._cache.clear()
        if (
            result is MetricExportResult.SUCCESS
            and self._temporality is AggregationTemporality.DELTA
        ):
            self._last.update(sent)
            self._last_time = now
        return result

    def _histograms(self, now: int) -> tuple[list[Metric], dict[tuple[str, Attributes], Point]]:
        metrics, sent = [], {}
        delta = self._temporality is AggregationTemporality.DELTA
        for family in self._cache.families().values():
            if family.kind != "histogram":
                continue
            data_points = []
            for attributes, point in family.points.items():
                sent[(family.name, attributes)] = point
                previous = self._last.get((family.name, attributes)) if delta else None
                data_point = self._data_point(attributes, point, previous, now)
                if data_point is not None:
                    data_points.append(data_point)
            if data_points:
                data = Histogram(data_points, self._temporality)
                metrics.append(Metric(family.name, family.help, unit(family.name), data))
        return metrics, sent

    def _data_point(
        self, attributes: Attributes, point: Point, previous: Point | None, now: int
    ) -> HistogramDataPoint | None:
        counts, total, start = point.counts, point.total, self._start
        exemplars = point.exemplars
        if self._temporality is AggregationTemporality.DELTA:
            start = self._last_time
            if previous is not None and previous.bounds == point.bounds:
                counts = [a - b for a, b in zip(point.counts, previous.counts, strict=True)]
                total -= previous.total
            if not any(counts):
                return None
            exemplars = [e for e in exemplars if e.time_unix_nano > start]  # of this delta
        return HistogramDataPoint(
            attributes=dict(attributes),
            start_time_unix_nano=start,
            time_unix_nano=now,
            count=sum(counts),
            sum=total,
            bucket_counts=counts,
            explicit_bounds=point.bounds,
            min=None,  # type: ignore[arg-type]  # unknown: buckets do not keep them
            max=None,  # type: ignore[arg-type]
            exemplars=exemplars,
        )

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        """Flush the inner exporter."""
        return self._inner.force_flush(timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: object) -> None:
        """Shut the inner exporter down."""
        self._inner.shutdown(timeout_millis=timeout_millis)


def _with(data: MetricsData, histograms: list[Metric], resource: Resource) -> MetricsData:
    """Return `data` with `histograms` added to our scope (created when the batch has none)."""
    if not histograms:
        return data
    resources = list(data.resource_metrics) or [ResourceMetrics(resource, [], "")]
    first = resources[0]
    scopes = list(first.scope_metrics)
    for index, scope in enumerate(scopes):
        if scope.scope.name == SCOPE.name:
            scopes[index] = replace(scope, metrics=[*scope.metrics, *histograms])
            break
    else:
        scopes.append(ScopeMetrics(SCOPE, histograms, ""))
    resources[0] = replace(first, scope_metrics=scopes)
    return MetricsData(resources)


def temporality_of(choice: str | None, environ: Mapping[str, str]) -> AggregationTemporality:
    """Return the chosen temporality: the setting, else the OTel variable, else cumulative."""
    variable = "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE"
    chosen = (choice or environ.get(variable, "") or "cumulative").strip().lower()
    if chosen == "delta":
        return AggregationTemporality.DELTA
    return AggregationTemporality.CUMULATIVE
