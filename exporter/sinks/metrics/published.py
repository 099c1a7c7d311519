"""The committed run series as a scrape sees them, with each family's text kept between scrapes.

`RunMetrics` shows a series here only once the state transaction holding it committed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from functools import partial

from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.samples import Exemplar

from exporter.sinks.metrics.exposition import RenderedFamily, SeriesLines
from exporter.sinks.metrics.lines import HistogramLines, counter_line
from exporter.sinks.metrics.series import (
    RUN_METRICS,
    Labels,
    MetricSpec,
    Series,
    SeriesKey,
)


class PublishedRuns:
    """Holds the published run series and renders their families."""

    def __init__(
        self, label_names: Mapping[str, tuple[str, ...]], buckets: Mapping[str, tuple[float, ...]]
    ) -> None:
        self._names = label_names
        self._buckets = buckets
        self._published: dict[SeriesKey, Series] = {}
        self._histograms = {
            spec.name: HistogramLines(spec.name, names, self._buckets[spec.buckets])
            for spec in RUN_METRICS
            if spec.buckets is not None and (names := self._names[spec.name])
        }
        self._lines = {spec.name: SeriesLines(partial(self._render, spec)) for spec in RUN_METRICS}

    def show(self, key: SeriesKey, series: Series) -> None:
        """Publish a copy of `series` under `key` (its lines are rendered again)."""
        self._published[key] = series.copy()
        self._lines[key[0]].changed(key[1])

    def series(self) -> dict[SeriesKey, Series]:
        """Return the published series, to read on any thread (they are replaced, never changed)."""
        return dict(self._published)

    def collect(self) -> Iterator[Metric]:
        """Yield the published run metrics, each with its exposition text kept between scrapes."""
        for spec in RUN_METRICS:
            kind = "counter" if spec.buckets is None else "histogram"
            body = self._lines[spec.name].body
            yield RenderedFamily(spec.family, spec.help, kind, body, partial(self._family, spec))

    def _render(self, spec: MetricSpec, labels: Labels) -> tuple[bytes, bytes]:
        """Return one published series' lines (text format, OpenMetrics), as _family has them."""
        series = self._published[(spec.name, labels)]
        histogram = self._histograms.get(spec.name)
        if histogram is None:
            line = counter_line(spec.name, self._names[spec.name], labels, series.value)
            return line, line
        return histogram.lines(labels, series.counts, series.value, series.exemplars)

    def _family(self, spec: MetricSpec) -> Metric:
        items = sorted((k[1], s) for k, s in self._published.items() if k[0] == spec.name)
        if spec.buckets is None:
            counter = CounterMetricFamily(spec.name, spec.help, labels=self._names[spec.name])
            for labels, series in items:
                counter.add_metric(labels, series.value)
            return counter
        histogram = HistogramMetricFamily(spec.name, spec.help, labels=self._names[spec.name])
        bounds = self._buckets[spec.buckets]
        for labels, series in items:
            histogram.add_metric(labels, _buckets(bounds, series), series.value)
        return histogram


def _buckets(
    bounds: Sequence[float], series: Series
) -> list[tuple[str, float] | tuple[str, float, Exemplar]]:
    out: list[tuple[str, float] | tuple[str, float, Exemplar]] = []
    cumulative = 0.0
    for index, bound in enumerate((*bounds, float("inf"))):
        cumulative += series.counts[index]
        le = "+Inf" if bound == float("inf") else repr(bound)
        exemplar = series.exemplars.get(index)
        if exemplar is None:
            out.append((le, cumulative))
        else:
            trace_id, value, ts = exemplar
            out.append((le, cumulative, Exemplar({"trace_id": trace_id}, value, ts)))
    return out
