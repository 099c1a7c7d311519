"""The exporter's own metrics: poll health, upstream requests, skipped runs, exported spans."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from exporter import __version__
from exporter.errors import POLL_ERROR_REASONS
from exporter.model import Run

# A status nobody listed no longer skips a run (it counts as status="unknown"): no such reason.
SKIP_REASONS = (
    "malformed_item",
    "invalid_id",
    "in_flight_expired",
    "scrolled_off",
    "detail_failed",
    "detail_overdue",
)
DEFER_REASONS = ("retry_after", "budget")
SPAN_RESULTS = ("success", "failure")
WEB_AUTH_FAILURE_REASONS = ("missing", "malformed", "wrong_credentials", "busy")
POLL_DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


@dataclass(frozen=True, slots=True)
class _Spec:
    attr: str
    kind: type[Counter] | type[Gauge] | type[Histogram]
    name: str
    help: str
    labels: tuple[str, ...]


_SPECS = (
    _Spec(
        "up",
        Gauge,
        "agent_runs_exporter_up",
        "1 if the last poll of the source succeeded.",
        ("source",),
    ),
    _Spec(
        "last_success",
        Gauge,
        "agent_runs_exporter_last_successful_poll_timestamp_seconds",
        "When the source last completed a poll without error (epoch seconds).",
        ("source",),
    ),
    _Spec(
        "poll_duration",
        Histogram,
        "agent_runs_exporter_poll_duration_seconds",
        "Duration of one poll of a source, every agent and trace included.",
        ("source",),
    ),
    _Spec(
        "api_requests",
        Counter,
        "agent_runs_exporter_api_requests_total",
        "Requests made to the upstream API, by endpoint and HTTP code (or timeout/connect).",
        ("source", "endpoint", "code"),
    ),
    _Spec(
        "poll_errors",
        Counter,
        "agent_runs_exporter_poll_errors_total",
        "Polls (of one agent) or detail fetches that failed, by reason.",
        ("source", "reason"),
    ),
    _Spec(
        "polls_deferred",
        Counter,
        "agent_runs_exporter_polls_deferred_total",
        "Agent polls that sent nothing because the source waits: a 429's Retry-After "
        "(retry_after) or its own request budget (budget).",
        ("source", "reason"),
    ),
    _Spec(
        "runs_skipped",
        Counter,
        "agent_runs_exporter_runs_skipped_total",
        "Runs (or their traces) that could not be processed, by reason.",
        ("source", "reason"),
    ),
    _Spec(
        "fields_invalid",
        Counter,
        "agent_runs_exporter_fields_invalid_total",
        "Optional fields of counted runs that were malformed and dropped alone (the run kept).",
        ("source", "field"),
    ),
    _Spec(
        "page_gaps",
        Counter,
        "agent_runs_exporter_page_gaps_total",
        "Polls whose only visible page (the platform has no paging) stopped short of the runs "
        "read before, so runs in between may be missed: poll faster.",
        ("source",),
    ),
    _Spec(
        "spans_exported",
        Counter,
        "agent_runs_exporter_spans_exported_total",
        "Spans handed to the trace exporter, by export result.",
        ("result",),
    ),
    _Spec(
        "spans_dropped",
        Counter,
        "agent_runs_exporter_spans_dropped_total",
        "Spans dropped because the span queue was full (the collector down or too slow).",
        (),
    ),
    _Spec(
        "trace_backlog",
        Gauge,
        "agent_runs_exporter_trace_backlog",
        "Terminal runs whose trace is still to be fetched and exported.",
        ("source",),
    ),
    _Spec(
        "tracked_runs",
        Gauge,
        "agent_runs_exporter_tracked_runs",
        "Runs remembered in the lookback window.",
        (),
    ),
    _Spec(
        "state_resets",
        Counter,
        "agent_runs_exporter_state_resets_total",
        "Times an unreadable state file was moved aside and state started fresh.",
        (),
    ),
    _Spec(
        "state_rows_dropped",
        Counter,
        "agent_runs_exporter_state_rows_dropped_total",
        "State file rows that could not be read at start and were left out.",
        (),
    ),
    _Spec(
        "shard_ordinal",
        Gauge,
        "agent_runs_exporter_shard_ordinal",
        "This instance's shard, 0 to total_shards - 1.",
        (),
    ),
    _Spec(
        "total_shards",
        Gauge,
        "agent_runs_exporter_total_shards",
        "How many exporter instances share the agents between them.",
        (),
    ),
    _Spec(
        "web_auth_failures",
        Counter,
        "agent_runs_exporter_web_auth_failures_total",
        "Requests to the exporter refused for missing, malformed or wrong basic-auth credentials.",
        ("reason",),
    ),
    _Spec(
        "tool_steps_dropped",
        Counter,
        "agent_runs_exporter_tool_steps_dropped_total",
        "Tool steps not turned into spans because their run had more than traces.max_tool_steps.",
        ("source",),
    ),
    _Spec(
        "agent_poll_interval",
        Gauge,
        "agent_runs_exporter_agent_poll_interval_seconds",
        "The agent's current scheduled poll interval (poll_interval when the budget allows).",
        ("source", "agent_id"),
    ),
    _Spec(
        "oldest_poll_age",
        Gauge,
        "agent_runs_exporter_oldest_poll_age_seconds",
        "The longest time any agent of the source has gone without a successful poll.",
        ("source",),
    ),
    _Spec(
        "budget_wait",
        Counter,
        "agent_runs_exporter_budget_wait_seconds_total",
        "Time the source's requests waited for a token of its request budget.",
        ("source",),
    ),
    _Spec(
        "build_info",
        Gauge,
        "agent_runs_exporter_build_info",
        "The exporter's version; always 1.",
        ("version",),
    ),
)


def _instrument(spec: _Spec, registry: CollectorRegistry) -> Counter | Gauge | Histogram:
    if spec.kind is Histogram:
        return Histogram(
            spec.name, spec.help, spec.labels, registry=registry, buckets=POLL_DURATION_BUCKETS
        )
    return spec.kind(spec.name, spec.help, spec.labels, registry=registry)


class SelfMetrics:
    """Direct instruments for the exporter's own health, registered on an injected registry."""

    up: Gauge
    last_success: Gauge
    poll_duration: Histogram
    api_requests: Counter
    poll_errors: Counter
    polls_deferred: Counter
    runs_skipped: Counter
    fields_invalid: Counter
    page_gaps: Counter
    spans_exported: Counter
    spans_dropped: Counter
    trace_backlog: Gauge
    tracked_runs: Gauge
    state_resets: Counter
    state_rows_dropped: Counter
    shard_ordinal: Gauge
    total_shards: Gauge
    web_auth_failures: Counter
    tool_steps_dropped: Counter
    agent_poll_interval: Gauge
    oldest_poll_age: Gauge
    budget_wait: Counter
    build_info: Gauge

    def __init__(self, registry: CollectorRegistry) -> None:
        for spec in _SPECS:
            setattr(self, spec.attr, _instrument(spec, registry))
        self.build_info.labels(__version__).set(1)
        self.total_shards.set(1)
        for result in SPAN_RESULTS:
            self.spans_exported.labels(result)
        for reason in WEB_AUTH_FAILURE_REASONS:
            self.web_auth_failures.labels(reason)

    def declare_source(self, source: str, endpoints: Iterable[str]) -> None:
        """Start the source's known label sets at zero."""
        self.up.labels(source).set(0)
        self.last_success.labels(source)
        self.poll_duration.labels(source)
        self.trace_backlog.labels(source)
        self.tool_steps_dropped.labels(source)
        self.page_gaps.labels(source)
        self.oldest_poll_age.labels(source)
        self.budget_wait.labels(source)
        for reason in POLL_ERROR_REASONS:
            self.poll_errors.labels(source, reason)
        for reason in SKIP_REASONS:
            self.runs_skipped.labels(source, reason)
        for reason in DEFER_REASONS:
            self.polls_deferred.labels(source, reason)
        for endpoint in endpoints:
            self.api_requests.labels(source, endpoint, "200")

    def count_auth_failure(self, reason: str) -> None:
        """Count one request refused by basic auth."""
        self.web_auth_failures.labels(reason).inc()

    def count_invalid_fields(self, source: str, run: Run) -> None:
        """Count the optional fields dropped from a run just counted (once per run)."""
        for name in run.invalid_fields:
            self.fields_invalid.labels(source, name).inc()

    def count_steps_dropped(self, source: str, count: int) -> None:
        """Count tool steps of one run left out of its trace."""
        self.tool_steps_dropped.labels(source).inc(count)

    def count_spans(self, result: str, count: int) -> None:
        """Count spans by export result (called from the span export thread)."""
        self.spans_exported.labels(result).inc(count)
