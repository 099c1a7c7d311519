"""Write the Grafana dashboard (helm/agent-runs-exporter/files/dashboard.json) from a panel table.

"Are my agents healthy and what do they cost", in one glance: runs, failures, durations with
exemplars (click through to the trace), tokens, cost, tools, and the exporter's own health.
Every expression is checked by tests/deploy (promtool) and tests/e2e (a real Prometheus).

    python scripts/build_dashboard.py          # rewrite the file
    python scripts/build_dashboard.py --check  # exit 1 if the file is out of date
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "helm" / "agent-runs-exporter" / "files" / "dashboard.json"
UID = "agent-runs-exporter"
AGENT = 'source=~"$source", agent_id=~"$agent"'
SOURCE = 'source=~"$source"'
RI = "$__rate_interval"
# Agents by name where agent_runs_exporter_agent_info has one, else by id; the value is the id.
AGENTS = (
    'max by (source, agent_id, agent_name) (agent_runs_exporter_agent_info{source=~"$source"})'
    " or on (source, agent_id) "
    'label_replace(max by (source, agent_id) (agent_runs_total{source=~"$source"}),'
    ' "agent_name", "$1", "agent_id", "(.+)")'
)
AGENT_REGEX = '/agent_id="(?<value>[^"]+)", ?agent_name="(?<text>[^"]*)"/'
# The heavy panels query either the raw series or the recording rules (deploy/prometheus/
# recording.yaml), as the "Queries" variable says. Each has both targets; a matcher on a label no
# series has (`recording_rules`, always "") empties the other one, which then costs nothing.
RAW = 'recording_rules=~"$rules"'  # $rules is ".*" (raw series) or "on" (recording rules)
RECORDED = 'recording_rules!~"$rules"'
RATES = "source_agent_id_status:agent_runs:rate5m"
DURATION_RATES = "source_agent_id_le:agent_run_duration_seconds_bucket:rate5m"


@dataclass(frozen=True)
class Panel:
    """One panel: title, kind, unit, and its queries as (legend, expression[, exemplar])."""

    title: str
    kind: str
    unit: str
    queries: tuple[tuple[str, str], ...]
    width: int = 8
    description: str = ""
    exemplars: bool = False
    options: dict[str, Any] = field(default_factory=dict)


def _q(status: str = "", guard: str = "") -> str:
    extra = f', status=~"{status}"' if status else ""
    extra += f", {guard}" if guard else ""
    return f"agent_runs_total{{{AGENT}{extra}}}"


def _rates(status: str = "") -> str:
    extra = f', status=~"{status}"' if status else ""
    return f"{RATES}{{{AGENT}{extra}, {RECORDED}}}"


def _quantile(q: str) -> tuple[str, str]:
    return (
        f"histogram_quantile({q}, sum by (le) "
        f"(rate(agent_run_duration_seconds_bucket{{{AGENT}, {RAW}}}[{RI}])))",
        f"histogram_quantile({q}, sum by (le) ({DURATION_RATES}{{{AGENT}, {RECORDED}}}))",
    )


def _either(legend: str, raw: str, recorded: str) -> tuple[tuple[str, str], ...]:
    """Return a panel's two queries: the raw one and the one that reads the recording rules."""
    return ((legend, raw), (legend, recorded))


ROWS: tuple[tuple[str, tuple[Panel, ...]], ...] = (
    (
        "Runs",
        (
            Panel(
                "Runs per second by status",
                "timeseries",
                "reqps",
                _either(
                    "{{status}}",
                    f"sum by (status) (rate({_q(guard=RAW)}[{RI}]))",
                    f"sum by (status) ({_rates()})",
                ),
            ),
            Panel(
                "Failure ratio by agent",
                "timeseries",
                "percentunit",
                _either(
                    "{{source}}/{{agent_id}}",
                    f"sum by (source, agent_id) (rate({_q('failed|timeout', RAW)}[{RI}]))"
                    f" / sum by (source, agent_id) (rate({_q(guard=RAW)}[{RI}]))",
                    f"sum by (source, agent_id) ({_rates('failed|timeout')})"
                    f" / sum by (source, agent_id) ({_rates()})",
                ),
                description="Failed or timed-out runs over all terminal runs.",
            ),
            Panel(
                "Disposition breakdown",
                "piechart",
                "short",
                (("{{disposition}}", f"sum by (disposition) (increase({_q()}[$__range]))"),),
                options={"reduceOptions": {"calcs": ["lastNotNull"]}, "legend": {"show": True}},
            ),
            Panel(
                "Run duration p50 / p95 / p99",
                "timeseries",
                "s",
                (
                    *_either("p50", *_quantile("0.5")),
                    *_either("p95", *_quantile("0.95")),
                    *_either("p99", *_quantile("0.99")),
                ),
                width=16,
                exemplars=True,
                description="Exemplars carry each run's trace_id: click one to open its trace.",
            ),
            Panel(
                "Runs in progress",
                "timeseries",
                "short",
                (("{{status}}", f"sum by (status) (agent_runs_in_progress{{{AGENT}}})"),),
            ),
        ),
    ),
    (
        "Tokens and cost",
        (
            Panel(
                "Tokens per second",
                "timeseries",
                "short",
                _either(
                    "{{type}}",
                    f"sum by (type) (rate(agent_run_tokens_sum{{{AGENT}, {RAW}}}[{RI}]))",
                    "sum by (type) "
                    f"(source_agent_id_type:agent_run_tokens_sum:rate5m{{{AGENT}, {RECORDED}}})",
                ),
            ),
            Panel(
                "Cost per hour (USD)",
                "timeseries",
                "currencyUSD",
                _either(
                    "{{agent_id}}",
                    "sum by (agent_id) "
                    f"(rate(agent_run_cost_usd_sum{{{AGENT}, {RAW}}}[{RI}])) * 3600",
                    "sum by (agent_id) "
                    f"(source_agent_id:agent_run_cost_usd_sum:rate5m{{{AGENT}, {RECORDED}}})"
                    " * 3600",
                ),
            ),
            Panel(
                "Cost per run (USD)",
                "timeseries",
                "currencyUSD",
                (
                    (
                        "{{agent_id}}",
                        f"sum by (agent_id) (rate(agent_run_cost_usd_sum{{{AGENT}}}[{RI}]))"
                        f" / sum by (agent_id) (rate(agent_run_cost_usd_count{{{AGENT}}}[{RI}]))",
                    ),
                ),
            ),
        ),
    ),
    (
        "Tools",
        (
            Panel(
                "Tool calls per second by tool",
                "timeseries",
                "reqps",
                (("{{tool}}", f"sum by (tool) (rate(agent_tool_calls_total{{{AGENT}}}[{RI}]))"),),
                width=12,
            ),
            Panel(
                "Tool error ratio by tool",
                "timeseries",
                "percentunit",
                (
                    (
                        "{{tool}}",
                        "sum by (tool) (rate(agent_tool_calls_total"
                        f'{{{AGENT}, result="error"}}[{RI}]))'
                        f" / sum by (tool) (rate(agent_tool_calls_total{{{AGENT}}}[{RI}]))",
                    ),
                ),
                width=12,
            ),
        ),
    ),
    (
        "Exporter health",
        (
            Panel(
                "Source up",
                "stat",
                "short",
                (("{{source}}", f"agent_runs_exporter_up{{{SOURCE}}}"),),
                width=6,
                options={"colorMode": "background", "reduceOptions": {"calcs": ["lastNotNull"]}},
            ),
            Panel(
                "Age of last successful poll",
                "stat",
                "s",
                (
                    (
                        "{{source}}",
                        "time() - agent_runs_exporter_last_successful_poll_timestamp_seconds"
                        f"{{{SOURCE}}}",
                    ),
                ),
                width=6,
                options={"reduceOptions": {"calcs": ["lastNotNull"]}},
            ),
            Panel(
                "Trace backlog",
                "timeseries",
                "short",
                (("{{source}}", f"agent_runs_exporter_trace_backlog{{{SOURCE}}}"),),
                width=6,
            ),
            Panel(
                "Shards",
                "stat",
                "short",
                (
                    ("total shards", "max(agent_runs_exporter_total_shards)"),
                    ("shards reporting", "count(agent_runs_exporter_shard_ordinal)"),
                ),
                width=6,
                options={"reduceOptions": {"calcs": ["lastNotNull"]}},
            ),
            Panel(
                "API responses by code",
                "timeseries",
                "reqps",
                (
                    (
                        "{{source}} {{endpoint}} {{code}}",
                        "sum by (source, endpoint, code) "
                        f"(rate(agent_runs_exporter_api_requests_total{{{SOURCE}}}[{RI}]))",
                    ),
                ),
            ),
            Panel(
                "Poll errors by reason",
                "timeseries",
                "reqps",
                (
                    (
                        "{{source}} {{reason}}",
                        "sum by (source, reason) "
                        f"(rate(agent_runs_exporter_poll_errors_total{{{SOURCE}}}[{RI}]))",
                    ),
                ),
            ),
            Panel(
                "Spans exported and dropped",
                "timeseries",
                "reqps",
                (
                    (
                        "{{result}}",
                        "sum by (result) (rate(agent_runs_exporter_spans_exported_total["
                        + RI
                        + "]))",
                    ),
                    (
                        "dropped",
                        "sum(rate(agent_runs_exporter_spans_dropped_total[" + RI + "]))",
                    ),
                ),
            ),
        ),
    ),
    (
        "Polling schedule",
        (
            Panel(
                "Scheduled poll interval (longest and median over agents)",
                "timeseries",
                "s",
                (
                    (
                        "{{source}} longest",
                        "max by (source) "
                        f"(agent_runs_exporter_agent_poll_interval_seconds{{{AGENT}}})",
                    ),
                    (
                        "{{source}} median",
                        "quantile by (source) (0.5, "
                        f"agent_runs_exporter_agent_poll_interval_seconds{{{AGENT}}})",
                    ),
                ),
                description="Each agent's interval between polls; poll_interval while the "
                "request budget covers every agent, longer for quiet agents when it does not.",
            ),
            Panel(
                "Oldest poll age",
                "timeseries",
                "s",
                (("{{source}}", f"agent_runs_exporter_oldest_poll_age_seconds{{{SOURCE}}}"),),
                description="The longest any agent has gone without a successful poll; "
                "AgentRunsPollingBehind fires above 1.5 x max_poll_interval.",
            ),
            Panel(
                "Budget wait",
                "timeseries",
                "percentunit",
                (
                    (
                        "{{source}}",
                        "sum by (source) (rate(agent_runs_exporter_budget_wait_seconds_total"
                        f"{{{SOURCE}}}[{RI}]))",
                    ),
                ),
                description="Seconds per second the source's requests waited for a token of "
                "its request budget (several requests can wait at once).",
            ),
        ),
    ),
)


def _target(index: int, legend: str, expr: str, exemplar: bool) -> dict[str, Any]:
    return {
        "refId": chr(ord("A") + index),
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "expr": expr,
        "legendFormat": legend,
        "exemplar": exemplar,
    }


def _panel(panel: Panel, ident: int, x: int, y: int) -> dict[str, Any]:
    return {
        "id": ident,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"h": 8, "w": panel.width, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
        "options": panel.options,
        "targets": [
            _target(i, legend, expr, panel.exemplars)
            for i, (legend, expr) in enumerate(panel.queries)
        ],
    }


def _variable(name: str, label: str, query: str, regex: str = "") -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "query": {"query": query, "refId": f"{name}-values"},
        "definition": query,
        "refresh": 2,
        "includeAll": True,
        "multi": True,
        "allValue": ".*",
        "current": {"text": "All", "value": "$__all"},
        "sort": 1,
        "regex": regex,
    }


def _panels() -> list[dict[str, Any]]:
    panels: list[dict[str, Any]] = []
    y = 0
    for title, row in ROWS:
        panels.append({"id": len(panels) + 1, "type": "row", "title": title, "collapsed": False,
                       "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []})  # fmt: skip
        y, x = y + 1, 0
        for panel in row:
            if x + panel.width > 24:
                y, x = y + 8, 0
            panels.append(_panel(panel, len(panels) + 1, x, y))
            x += panel.width
        y += 8
    return panels


def build() -> dict[str, Any]:
    """Return the dashboard as a JSON-ready dict."""
    variables = [
        {
            "name": "datasource",
            "label": "Data source",
            "type": "datasource",
            "query": "prometheus",
            "current": {},
            "hide": 0,
        },
        _variable("source", "Source", "label_values(agent_runs_total, source)"),
        _variable("agent", "Agent", f"query_result({AGENTS})", AGENT_REGEX),
        {
            "name": "rules",
            "label": "Queries",
            "type": "custom",
            "description": "Recording rules: read the per-agent rates recorded by "
            "deploy/prometheus/recording.yaml (the chart installs them), cheaper at many agents.",
            "query": "raw series : .*,recording rules : on",
            "options": [
                {"text": "raw series", "value": ".*", "selected": True},
                {"text": "recording rules", "value": "on", "selected": False},
            ],
            "current": {"text": "raw series", "value": ".*"},
            "hide": 0,
        },
    ]
    return {
        "uid": UID,
        "title": "AI agent runs",
        "description": "Runs, failures, durations, tokens, cost and tools of hosted AI agents, "
        "from agent-runs-exporter.",
        "tags": ["agent-runs-exporter", "ai-agents"],
        "editable": True,
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "1m",
        "timezone": "",
        "graphTooltip": 1,
        "templating": {"list": variables},
        "annotations": {"list": []},
        "links": [],
        "panels": _panels(),
    }


def render() -> str:
    """Return the dashboard file's text."""
    return json.dumps(build(), indent=2) + "\n"


def main(argv: list[str]) -> int:
    """Write the file, or with --check only compare it."""
    text = render()
    if "--check" in argv:
        if TARGET.read_text(encoding="utf-8") != text:
            print(
                f"{TARGET} is out of date: run python scripts/build_dashboard.py", file=sys.stderr
            )
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
