"""The metric families pushed over OTLP, read from the registry or the published run series.

A family keeps the name the registry serves it under (a counter its family name, `agent_runs`
for `agent_runs_total`), its series keyed by their labels as sorted attributes; a histogram's
series keep per-bucket counts, their sum and the duration exemplars.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from opentelemetry.sdk.metrics import Exemplar
from prometheus_client.metrics_core import Metric as PrometheusMetric
from prometheus_client.samples import Sample

from exporter.sinks.metrics.series import RUN_METRICS, Labels, Series, SeriesKey

RUN_FAMILIES = frozenset(spec.family for spec in RUN_METRICS)
UNITS = {"agent_run_tokens": "{token}", "agent_run_cost_usd": "{USD}"}
_SUFFIX_UNITS = (("_seconds", "s"), ("_bytes", "By"))
Attributes = tuple[tuple[str, str], ...]


@dataclass(slots=True)
class Point:
    """A histogram series: per-bucket counts (not cumulative), sum and exemplars."""

    bounds: list[float]
    counts: list[int]
    total: float
    exemplars: list[Exemplar]


@dataclass(frozen=True, slots=True)
class Family:
    """One family as read from the registry: name, type, help, and its series by attributes."""

    name: str
    kind: str
    help: str
    values: Mapping[Attributes, float] = field(default_factory=dict)  # counters, gauges
    points: Mapping[Attributes, Point] = field(default_factory=dict)  # histograms


Snapshot = Callable[[], Sequence[Family]]


def unit(name: str) -> str:
    """Return the OTLP unit of a family (empty when it counts things without a unit)."""
    if name in UNITS:
        return UNITS[name]
    for suffix, symbol in _SUFFIX_UNITS:
        if name.endswith(suffix) or name.endswith(suffix + "_total"):
            return symbol
    return ""


def read_families(metrics: Iterable[PrometheusMetric]) -> list[Family]:
    """Read the families a registry's `collect()` yields (call where the registry is updated)."""
    out = []
    for metric in metrics:
        name, kind = metric.name, metric.type
        if kind == "histogram":
            family = Family(name, kind, metric.documentation, points=_points(name, metric.samples))
        else:
            wanted = name + "_total" if kind == "counter" else name
            values = {_key(s.labels): s.value for s in metric.samples if s.name == wanted}
            family = Family(name, kind, metric.documentation, values=values)
        out.append(family)
    return out


def run_families(
    published: Mapping[SeriesKey, Series],
    buckets: Mapping[str, Sequence[float]],
    label_names: Mapping[str, Sequence[str]],
) -> list[Family]:
    """Return the run metrics from a copy of their published series (call on any thread).

    `label_names` gives each metric's label names in force (`per_agent_histograms` off drops
    `agent_id` from the histograms).
    """
    by_name: dict[str, list[tuple[Labels, Series]]] = {spec.name: [] for spec in RUN_METRICS}
    for (name, labels), series in published.items():
        if name in by_name:
            by_name[name].append((labels, series))
    out = []
    for spec in RUN_METRICS:
        rows = by_name[spec.name]
        if spec.buckets is None:
            names = label_names[spec.name]
            values = {_key(dict(zip(names, k, strict=True))): s.value for k, s in rows}
            out.append(Family(spec.family, spec.kind, spec.help, values=values))
            continue
        bounds, names = list(buckets[spec.buckets]), label_names[spec.name]
        points = {
            _key(dict(zip(names, labels, strict=True))): _run_point(bounds, series)
            for labels, series in rows
        }
        out.append(Family(spec.name, spec.kind, spec.help, points=points))
    return out


def _run_point(bounds: list[float], series: Series) -> Point:
    exemplars = [
        Exemplar({"trace_id": trace_id}, value, int(ts * 1e9))
        for _, (trace_id, value, ts) in sorted(series.exemplars.items())
    ]
    return Point(bounds, [int(c) for c in series.counts], series.value, exemplars)


def _key(labels: Mapping[str, str]) -> Attributes:
    return tuple(sorted(labels.items()))


def _points(name: str, samples: Iterable[Sample]) -> dict[Attributes, Point]:
    """Return a histogram's series by attributes, from its `_bucket` and `_sum` samples."""
    points: dict[Attributes, Point] = {}
    for sample in samples:
        key = _key({k: v for k, v in sample.labels.items() if k != "le"})
        point = points.get(key) or points.setdefault(key, Point([], [], 0.0, []))
        if sample.name == name + "_sum":
            point.total = sample.value
        elif sample.name == name + "_bucket":
            le = float(sample.labels["le"])
            if le != float("inf"):
                point.bounds.append(le)
            point.counts.append(int(sample.value) - sum(point.counts))
            if sample.exemplar is not None:
                point.exemplars.append(_exemplar(sample))
    return points


def _exemplar(sample: Sample) -> Exemplar:
    exemplar = sample.exemplar
    assert exemplar is not None
    ts = int(float(exemplar.timestamp or time.time()) * 1e9)
    return Exemplar(dict(exemplar.labels), exemplar.value, ts)
