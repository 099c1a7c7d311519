"""Run metrics: counters and histograms of terminal runs, persisted with the state and published
only once committed, so a scrape never sees a value that a crash could take back.
With `per_agent_histograms` off the three histograms (duration, tokens, cost) have no `agent_id`:
one series set per source and platform instead of per agent; the counters stay per agent. Stored
histogram series of the other mode are left in the state file and not shown (each mode's series
go on from their own values, a switch never adds one mode's counts to the other's).

Exposition (OpenMetrics, as scraped with exemplars):

    agent_runs_total{source="support",platform="conduit",agent_id="ag7",status="failed",disposition="none"} 3.0
    agent_run_duration_seconds_bucket{source="support",...,status="completed",le="5.0"} 9.0 # {trace_id="0000000000000000f9c2b1d8a7e4f36a"} 4.2 1.7e+09
"""  # noqa: E501

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence

from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from exporter.model import Run
from exporter.poll.records import StateBatch
from exporter.sinks.metrics.published import PublishedRuns
from exporter.sinks.metrics.series import (
    COST,
    DURATION,
    MAX_DISPOSITIONS_PER_AGENT,
    MAX_TOOLS_PER_AGENT,
    RUN_METRICS,
    RUNS,
    TOKENS,
    TOOL_CALLS,
    LabelCap,
    Labels,
    MetricSpec,
    RunKind,
    Series,
    SeriesKey,
    add_value,
    decode_key,
    encode_key,
)

log = logging.getLogger(__name__)


class RunMetrics(Collector):
    """The run metrics of every source, kept cumulative across restarts."""

    def __init__(
        self, buckets: Mapping[str, Sequence[float]], *, per_agent_histograms: bool = True
    ) -> None:
        self._buckets = {name: tuple(float(b) for b in values) for name, values in buckets.items()}
        self._per_agent = per_agent_histograms
        self._names = {  # each metric's label names in this mode
            spec.name: spec.labels
            if per_agent_histograms or spec.buckets is None
            else tuple(label for label in spec.labels if label != "agent_id")
            for spec in RUN_METRICS
        }
        self._working: dict[SeriesKey, Series] = {}
        self._shown = PublishedRuns(self._names, self._buckets)
        self._unsaved: set[SeriesKey] = set()
        self._unpublished: set[SeriesKey] = set()
        self._tools = LabelCap(MAX_TOOLS_PER_AGENT)
        self._dispositions = LabelCap(MAX_DISPOSITIONS_PER_AGENT)
        # By raw status and status: ElizaOS's raw `completed` is also a failure when it carries an
        # error.
        self._kinds: dict[tuple[str, str, str, str | None, str], RunKind] = {}
        tokens = self._buckets["tokens"]
        self._bounds = {  # the bucket bounds of each value a run reports
            "duration": self._buckets["duration"],
            "input": tokens,
            "output": tokens,
            "total": tokens,
            "cost": self._buckets["cost"],
        }
        self._touched: set[RunKind] = set()

    def declare_agent(
        self,
        source: str,
        platform: str,
        agent_id: str,
        *,
        statuses: Iterable[str],
        dispositions: Iterable[str],
        token_types: Iterable[str] = ("input", "output"),
        has_cost: bool = True,
    ) -> None:
        """Start the agent's known label sets at zero so a first failure shows in increase().

        Only what the platform can report is declared: a platform without cost gets no cost
        series at all, rather than one that says zero.
        """
        agent = (source, platform, agent_id)
        declared = [self._dispositions.value(source, agent_id, d) for d in dispositions]
        for status in statuses:
            for disposition in (*declared, "none"):
                self._series(RUNS, (*agent, status, disposition))
            self._series(DURATION, self._histogram_labels((*agent, status)))
        for kind in token_types:
            self._series(TOKENS, self._histogram_labels((*agent, kind)))
        if has_cost:
            self._series(COST, self._histogram_labels(agent))

    def _histogram_labels(self, labels: Labels) -> Labels:
        """Return a histogram's label values (source, platform, agent_id, ...) in this mode."""
        return labels if self._per_agent else labels[:2] + labels[3:]

    def record_run(self, source: str, platform: str, run: Run, trace_id: str, now: float) -> None:
        """Count a run that just reached a terminal state."""
        kind = self._kinds.get((source, run.agent_id, run.raw_status, run.disposition, run.status))
        if kind is None:
            kind = self._kind(source, platform, run)
        kind.runs.value += 1
        for name, value in (
            ("duration", run.effective_duration_s),
            ("input", run.input_tokens),
            ("output", run.output_tokens),
            ("total", run.total_tokens),
            ("cost", run.cost_usd),
        ):
            if value is not None:
                series = kind.observed.get(name) or self._observed(kind, name)
                index = add_value(series, self._bounds[name], value)
                if name == "duration":
                    series.exemplars[index] = (trace_id, value, now)
        self._touched.add(kind)  # its keys are marked changed at the next drain or publish

    def _kind(self, source: str, platform: str, run: Run) -> RunKind:
        """Look up (creating at zero) the counter a run of this kind increments; remember it."""
        agent = (source, platform, run.agent_id)
        status = str(run.status)
        labels = (*agent, status, self._dispositions.value(source, run.agent_id, run.disposition))
        kind = RunKind(agent, status, self._series(RUNS, labels), [(RUNS.name, labels)])
        if labels[-1] != "other" or run.disposition is None:
            # Remembered by the raw disposition, so only one that is its own label value (within
            # the agent's cap): the cache never outgrows the series, whatever an upstream sends.
            key = (source, run.agent_id, run.raw_status, run.disposition, run.status)
            self._kinds[key] = kind
        return kind

    def _observed(self, kind: RunKind, name: str) -> Series:
        """Look up (creating at zero) one of a kind's histograms by value name."""
        if name == "duration":
            spec, labels = DURATION, (*kind.agent, kind.status)
        elif name == "cost":
            spec, labels = COST, kind.agent
        else:
            spec, labels = TOKENS, (*kind.agent, name)
        labels = self._histogram_labels(labels)
        series = kind.observed[name] = self._series(spec, labels)
        kind.keys.append((spec.name, labels))
        return series

    def _flush_touched(self) -> None:
        for kind in self._touched:
            self._unsaved.update(kind.keys)
            self._unpublished.update(kind.keys)
        self._touched.clear()

    def _usage(self, agent: Labels, run: Run, known: Run | None) -> None:
        """Observe the run's tokens and cost, skipping any `known` already carried."""
        usage = (
            ("input", run.input_tokens, None if known is None else known.input_tokens),
            ("output", run.output_tokens, None if known is None else known.output_tokens),
            ("total", run.total_tokens, None if known is None else known.total_tokens),
        )
        for kind, tokens, carried in usage:
            if tokens is not None and carried is None:
                self._observe(TOKENS, (*agent, kind), tokens)
        if run.cost_usd is not None and (known is None or known.cost_usd is None):
            self._observe(COST, agent, run.cost_usd)

    def record_detail(self, source: str, platform: str, run: Run, listed: Run) -> None:
        """Count what only a run's detail gives: its tool calls, and usage the list lacked.

        `listed` is the run as it was counted; tokens or cost it did not carry but the detail
        does (ElizaOS sums them from model-call events) are observed now, once.
        """
        for step in run.tool_steps or ():
            if step.kind != "tool":
                continue
            tool = self._tools.value(source, run.agent_id, step.name)
            result = "error" if step.failed else "ok"
            self._inc(TOOL_CALLS, (source, platform, run.agent_id, tool, result))
        self._usage((source, platform, run.agent_id), run, listed)

    def _series(self, spec: MetricSpec, labels: Labels) -> Series:
        key = (spec.name, labels)
        series = self._working.get(key)
        if series is None:
            series = Series()
            if spec.buckets is not None:
                series.counts = [0.0] * (len(self._buckets[spec.buckets]) + 1)
            self._working[key] = series
            self._changed(key)
        return series

    def _changed(self, key: SeriesKey) -> None:
        self._unsaved.add(key)
        self._unpublished.add(key)

    def _inc(self, spec: MetricSpec, labels: Labels) -> None:
        self._series(spec, labels).value += 1
        self._changed((spec.name, labels))

    def _observe(
        self,
        spec: MetricSpec,
        labels: Labels,
        value: float,
        exemplar: tuple[str, float] | None = None,
    ) -> None:
        assert spec.buckets is not None
        labels = self._histogram_labels(labels)
        key = (spec.name, labels)
        series = self._working.get(key) or self._series(spec, labels)
        index = add_value(series, self._buckets[spec.buckets], value)
        if exemplar is not None:
            trace_id, now = exemplar
            series.exemplars[index] = (trace_id, value, now)
        self._unsaved.add(key)
        self._unpublished.add(key)

    def restore(self, stored: Mapping[str, str]) -> int:
        """Load the cumulative values an earlier process committed; return how many were bad."""
        self._flush_touched()
        self._kinds.clear()  # they point at series this replaces
        specs = {spec.name: spec for spec in RUN_METRICS}
        bad = 0
        for key_text, value_text in stored.items():
            try:
                name, labels = decode_key(key_text)
                series = Series.decode(value_text)
            except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
                log.warning("dropping a stored series that cannot be read (%s)", str(exc)[:200])
                bad += 1
                continue
            spec = specs.get(name)
            if spec is None or not self._fits(spec, series):
                log.warning("dropping stored series %s: its buckets changed", name)
                continue
            if len(labels) != len(self._names[name]):  # the other per_agent_histograms mode
                continue
            key = (name, tuple(labels))
            self._remember_labels(spec, key[1])
            self._working[key] = series
            self._shown.show(key, series)
        return bad

    def _remember_labels(self, spec: MetricSpec, labels: Labels) -> None:
        """Count a restored series' upstream-chosen value against its agent's cap."""
        if len(labels) != len(spec.labels):
            return
        if spec is RUNS:
            self._dispositions.value(labels[0], labels[2], labels[4])
        elif spec is TOOL_CALLS:
            self._tools.value(labels[0], labels[2], labels[3])

    def _fits(self, spec: MetricSpec, series: Series) -> bool:
        if spec.buckets is None:
            return not series.counts
        return len(series.counts) == len(self._buckets[spec.buckets]) + 1

    def drain(self, batch: StateBatch) -> None:
        """Move the series changed since the last drain into `batch`."""
        self._flush_touched()
        for name, labels in self._unsaved:
            batch.series[encode_key(name, labels)] = self._working[(name, labels)].encode()
        self._unsaved.clear()

    def publish(self) -> None:
        """Expose the values changed since the last publish (call after they are committed)."""
        self._flush_touched()
        for key in self._unpublished:
            self._shown.show(key, self._working[key])
        self._unpublished.clear()

    def published(self) -> dict[SeriesKey, Series]:
        """Return the published series, to read on any thread (they are replaced, never changed)."""
        return self._shown.series()

    @property
    def label_names(self) -> Mapping[str, tuple[str, ...]]:
        """Return each run metric's label names in this mode (see `per_agent_histograms`)."""
        return self._names

    @property
    def buckets(self) -> Mapping[str, tuple[float, ...]]:
        """Return the bucket bounds of each bucket set (duration, tokens, cost)."""
        return self._buckets

    def collect(self) -> Iterator[Metric]:
        """Yield the published run metrics, each with its exposition text kept between scrapes."""
        yield from self._shown.collect()
