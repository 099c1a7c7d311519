"""The SLO rules: valid for promtool, each burn-rate alert shown firing and quiet by `promtool test
rules` (a one-run agent included), the minimum-traffic guard shown necessary, and the plain rule
file identical to what the chart's PrometheusRule carries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.deploy.charts import SOURCE, one, render
from tests.deploy.tools import ROOT, run, tool

RULES = ROOT / "deploy" / "prometheus"
ALERTS = {"AgentRunsErrorBudgetBurnFast", "AgentRunsErrorBudgetBurnSlow"}
WINDOWS = ("5m", "1h", "30m", "6h")


def groups(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Render the chart's PrometheusRule and return its SLO groups."""
    chart_values = {"sources": [SOURCE], "prometheusRule": {"enabled": True}} | (values or {})
    rule = one(render(chart_values), "PrometheusRule")
    return [g for g in rule["spec"]["groups"] if g["name"].startswith("agent-runs-exporter-slo")]


def rules(values: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    return {r.get("alert") or r["record"]: r for g in groups(values) for r in g["rules"]}


def test_rule_file_is_valid() -> None:
    result = run(tool("promtool"), "check", "rules", "slo.yaml", cwd=RULES)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {2 * len(WINDOWS) + len(ALERTS)} rules found" in result.stdout


def test_every_alert_fires_and_stays_quiet_in_promtool_tests() -> None:
    result = run(tool("promtool"), "test", "rules", "slo.test.yaml", cwd=RULES)
    assert result.returncode == 0, result.stdout + result.stderr
    tests = yaml.safe_load((RULES / "slo.test.yaml").read_text())["tests"]
    cases = [case for test in tests for case in test["alert_rule_test"]]
    assert {case["alertname"] for case in cases if case["exp_alerts"]} == ALERTS
    assert {case["alertname"] for case in cases if not case["exp_alerts"]} == ALERTS


def test_without_the_traffic_guard_the_one_run_agent_would_alert(tmp_path: Path) -> None:
    unguarded = {"alerts": {"slo": {"minRuns": 1}}}
    (tmp_path / "slo.yaml").write_text(yaml.safe_dump({"groups": groups(unguarded)}))
    (tmp_path / "slo.test.yaml").write_text((RULES / "slo.test.yaml").read_text())
    result = run(tool("promtool"), "test", "rules", "slo.test.yaml", cwd=tmp_path)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert output.count('agent_id="quiet"') == 2, output  # paged at 4m, ticket at 25m


def test_chart_rules_equal_the_plain_file() -> None:
    plain = yaml.safe_load((RULES / "slo.yaml").read_text())["groups"]
    assert groups() == plain
    recorded = {r["record"] for g in plain for r in g["rules"] if "record" in r}
    assert recorded == {
        f"{level}:agent_runs_failures:ratio_rate{window}"
        for level in ("source_agent_id", "job")
        for window in WINDOWS
    }


def test_target_windows_and_guard_come_from_values() -> None:
    page = {"burnRate": 10, "longWindow": "2h", "shortWindow": "10m", "for": "1m"}
    values = {"alerts": {"slo": {"target": 0.995, "minRuns": 25, "page": page}}}
    found = rules(values)
    expr = found["AgentRunsErrorBudgetBurnFast"]["expr"]
    assert "ratio_rate2h > (10 * (1 - 0.995))\n" in expr
    assert "ratio_rate10m > (10 * (1 - 0.995))\n" in expr
    assert "increase(agent_runs_total[2h])) >= 25" in expr
    assert "job:agent_runs_failures:ratio_rate2h" in found
    assert "source_agent_id:agent_runs_failures:ratio_rate5m" not in found  # no window uses it
    ticket_off = rules({"alerts": {"slo": {"ticket": {"enabled": False}}}})
    assert "AgentRunsErrorBudgetBurnSlow" not in ticket_off
    assert "AgentRunsErrorBudgetBurnFast" in ticket_off
    assert groups({"alerts": {"slo": {"enabled": False}}}) == []
