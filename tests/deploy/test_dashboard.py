"""The Grafana dashboard: generated from its panel table, every expression valid PromQL over the
exporter's real metric names, and the panels the issue asks for."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from prometheus_client import CollectorRegistry

from exporter.poll.discovery import INFO_NAME
from exporter.sinks.metrics.selfmetrics import SelfMetrics
from exporter.sinks.metrics.series import RUN_METRICS
from tests.deploy.charts import CHART, dashboard_expressions
from tests.deploy.tools import ROOT, run, script, tool

DASHBOARD = json.loads((CHART / "files" / "dashboard.json").read_text())

# What Grafana substitutes before a query reaches Prometheus.
GRAFANA = {
    "$__rate_interval": "1m",
    "$__range": "1h",
    "$source": ".*",
    "$agent": ".*",
    "$rules": ".*",
}
_METRIC = re.compile(r"\b(agent_[a-z_]+)")
_RECORDED = re.compile(r"\b[a-z_]+:[a-z_]+:[a-z0-9_]+")  # level:metric:operations


def substitute(expr: str, values: dict[str, str] = GRAFANA) -> str:
    """Replace Grafana's variables in `expr` as Grafana would before querying."""
    for variable, value in values.items():
        expr = expr.replace(variable, value)
    return expr


def exported_names() -> set[str]:
    names = {spec.name for spec in RUN_METRICS} | {"agent_runs_in_progress", INFO_NAME}
    registry = CollectorRegistry()
    SelfMetrics(registry)
    for family in registry.collect():
        names |= {sample.name for sample in family.samples} | {family.name}
    out = set()
    for name in names:
        out |= {name, f"{name}_sum", f"{name}_count", f"{name}_bucket", f"{name}_total"}
    return out


def test_dashboard_file_is_generated() -> None:
    result = script("build_dashboard.py", "--check")
    assert result.returncode == 0, result.stderr


def test_every_expression_is_valid_promql(tmp_path: Path) -> None:
    rules = [
        {"record": f"dashboard:query_{index}", "expr": substitute(expr)}
        for index, expr in enumerate(dashboard_expressions())
    ]
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = run(tool("promtool"), "check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


def test_every_metric_name_is_one_the_exporter_exports() -> None:
    labels = {"agent_id", "agent_name"}
    exprs = [_RECORDED.sub("", expr) for expr in dashboard_expressions()]
    used = {name for expr in exprs for name in _METRIC.findall(expr)} - labels
    assert used - exported_names() == set()
    assert len(used) >= 14


def test_variables_and_exemplars() -> None:
    variables = {v["name"]: v for v in DASHBOARD["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert {"source", "agent"} <= set(variables)
    (duration,) = [p for p in DASHBOARD["panels"] if p["title"].startswith("Run duration")]
    legends = [t["legendFormat"] for t in duration["targets"]]
    assert legends == ["p50", "p50", "p95", "p95", "p99", "p99"]  # raw, then recorded
    assert all(t["exemplar"] for t in duration["targets"])
    for panel in DASHBOARD["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}"


def test_panels_answer_the_questions() -> None:
    titles = {p["title"] for p in DASHBOARD["panels"]}
    assert {
        "Runs per second by status",
        "Failure ratio by agent",
        "Disposition breakdown",
        "Tokens per second",
        "Cost per hour (USD)",
        "Cost per run (USD)",
        "Tool calls per second by tool",
        "Tool error ratio by tool",
        "Source up",
        "Age of last successful poll",
        "API responses by code",
        "Trace backlog",
        "Spans exported and dropped",
    } <= titles
    ids = [p["id"] for p in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids))


def test_every_self_metric_of_the_span_pipeline_is_plotted() -> None:
    (spans,) = [p for p in DASHBOARD["panels"] if p["title"] == "Spans exported and dropped"]
    exprs = " ".join(t["expr"] for t in spans["targets"])
    assert "agent_runs_exporter_spans_exported_total" in exprs
    assert "agent_runs_exporter_spans_dropped_total" in exprs


def test_heavy_panels_read_the_recording_rules_when_asked() -> None:
    recorded = {
        rule["record"]
        for group in yaml.safe_load((ROOT / "deploy/prometheus/recording.yaml").read_text())[
            "groups"
        ]
        for rule in group["rules"]
    }
    used = {name for expr in dashboard_expressions() for name in _RECORDED.findall(expr)}
    assert used == recorded
    variables = {v["name"]: v for v in DASHBOARD["templating"]["list"]}
    assert variables["rules"]["current"]["value"] == ".*"  # raw by default: works without rules
    for panel in DASHBOARD["panels"]:
        exprs = [t["expr"] for t in panel.get("targets", [])]
        raw = [e for e in exprs if 'recording_rules=~"$rules"' in e]
        rules = [e for e in exprs if 'recording_rules!~"$rules"' in e]
        assert len(raw) == len(rules)  # each raw query has its recorded twin
        for expr in rules:
            assert "[$__rate_interval]" not in expr
