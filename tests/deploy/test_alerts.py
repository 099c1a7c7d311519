"""The alert rules: valid for promtool, each shown firing and quiet by `promtool test rules`, and
the plain rule file identical to what the chart's PrometheusRule carries."""

from __future__ import annotations

from typing import Any

import yaml

from tests.deploy.charts import SOURCE, one, render
from tests.deploy.tools import ROOT, run, script, tool

RULES = ROOT / "deploy" / "prometheus"
ALERTS = {
    "AgentRunsFailureRatioHigh",
    "AgentRunDurationP95High",
    "AgentRunsCostBurnHigh",
    "AgentRunsExporterDown",
    "AgentRunsExporterAbsent",
    "AgentRunsPollStale",
    "AgentRunsPollingBehind",
    "AgentRunsUpstreamThrottled",
    "AgentRunsUpstreamAuthFailing",
    "AgentRunsSpansDropped",
    "AgentRunsShardsDisagree",
    "AgentRunsShardMissing",
}


def plain_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load((RULES / "alerts.yaml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_rule_file_is_valid() -> None:
    result = run(tool("promtool"), "check", "rules", "alerts.yaml", cwd=RULES)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in result.stdout


def test_every_alert_fires_and_stays_quiet_in_promtool_tests() -> None:
    result = run(tool("promtool"), "test", "rules", "alerts.test.yaml", cwd=RULES)
    assert result.returncode == 0, result.stdout + result.stderr
    tests = yaml.safe_load((RULES / "alerts.test.yaml").read_text())["tests"]
    cases = [case for test in tests for case in test["alert_rule_test"]]
    fired = {case["alertname"] for case in cases if case["exp_alerts"]}
    quiet = {case["alertname"] for case in cases if not case["exp_alerts"]}
    assert fired == ALERTS
    assert quiet == ALERTS


def test_plain_rule_file_is_rendered_from_the_chart() -> None:
    result = script("render_alerts.py", "--check")
    assert result.returncode == 0, result.stderr
    assert {rule["alert"] for rule in plain_rules()} == ALERTS


def test_chart_rules_equal_the_plain_file() -> None:
    values: dict[str, Any] = {"sources": [SOURCE], "prometheusRule": {"enabled": True}}
    default = one(render(values), "PrometheusRule")["spec"]["groups"][0]["rules"]
    assert default == [r for r in plain_rules() if r["alert"] != "AgentRunsCostBurnHigh"]
    values["alerts"] = {"costBurn": {"enabled": True}}
    everything = one(render(values), "PrometheusRule")["spec"]["groups"][0]["rules"]
    assert everything == plain_rules()


def test_thresholds_come_from_values() -> None:
    values = {
        "sources": [SOURCE],
        "prometheusRule": {"enabled": True},
        "alerts": {
            "job": "agents",
            "failureRatio": {"enabled": True, "threshold": 0.5, "window": "1h", "minRuns": 3},
            "shards": {"enabled": False},
        },
    }
    rules = {
        r["alert"]: r for r in one(render(values), "PrometheusRule")["spec"]["groups"][0]["rules"]
    }
    ratio = rules["AgentRunsFailureRatioHigh"]["expr"]
    assert ") > 0.5\n" in ratio
    assert "increase(agent_runs_total[1h])) >= 3" in ratio
    assert 'up{job="agents"} == 0' in rules["AgentRunsExporterDown"]["expr"]
    assert "AgentRunsShardMissing" not in rules
