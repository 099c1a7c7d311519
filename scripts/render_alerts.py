"""Write deploy/prometheus/alerts.yaml, slo.yaml and recording.yaml: the chart's PrometheusRule
groups with every alert on (the threshold alerts; the SLO recording rules and burn-rate alerts;
the dashboard's recording rules).

The chart's templates/_alerts.tpl, _slo.tpl and _recording.tpl are the one source of the rules;
this renders them offline with helm-python-sdk, so plain-Prometheus users get exactly what the
chart installs.

    python scripts/render_alerts.py          # rewrite the files
    python scripts/render_alerts.py --check  # exit 1 if a file is out of date
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "helm" / "agent-runs-exporter"
TARGET = ROOT / "deploy" / "prometheus" / "alerts.yaml"
SLO_TARGET = ROOT / "deploy" / "prometheus" / "slo.yaml"
SLO_GROUPS = "agent-runs-exporter-slo"  # the prefix of the SLO groups' names
RECORDING_TARGET = ROOT / "deploy" / "prometheus" / "recording.yaml"
RECORDING_GROUP = "agent-runs-exporter-dashboard"
HEADER = """\
# Alert rules for agent-runs-exporter, for a plain Prometheus (rule_files: [alerts.yaml]).
# Generated from helm/agent-runs-exporter/templates/_alerts.tpl by scripts/render_alerts.py with
# the chart's default thresholds and every alert on (the chart leaves AgentRunsCostBurnHigh off
# by default). The scrape job must be named "agent-runs-exporter". Tests: alerts.test.yaml.
"""
SLO_HEADER = """\
# SLO rules for agent-runs-exporter, for a plain Prometheus (rule_files: [slo.yaml]): the run
# failure ratio recorded per agent and per job at each burn-rate window, and multiwindow,
# multi-burn-rate alerts on the error budget of a 99% success objective (page: 14.4x over 1h and
# 5m; ticket: 6x over 6h and 30m; never for an agent with fewer than 10 runs in the long window).
# Generated from helm/agent-runs-exporter/templates/_slo.tpl by scripts/render_alerts.py with the
# chart's defaults. Tests: slo.test.yaml.
"""
RECORDING_HEADER = """\
# Recording rules for the agent-runs-exporter dashboard, for a plain Prometheus
# (rule_files: [recording.yaml]): the per-agent rates its heavy panels read when its "Queries"
# variable is set to "recording rules". Generated from
# helm/agent-runs-exporter/templates/_recording.tpl by scripts/render_alerts.py.
"""
VALUES: dict[str, Any] = {
    "sources": [{"name": "x", "platform": "conduit", "base_url": "http://x", "agents": ["a"]}],
    "prometheusRule": {"enabled": True},
    "alerts": {"costBurn": {"enabled": True}},
}


class _Dumper(yaml.SafeDumper):
    """Write multi-line strings (the expressions) as literal blocks."""


def _string(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _string)


def rule_groups(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Render the chart and return the PrometheusRule's groups."""
    manifests = helm.Chart.load(CHART).render(values or VALUES, name="alerts", namespace="x")
    rule = yaml.safe_load(manifests["agent-runs-exporter/templates/prometheusrule.yaml"])
    groups: list[dict[str, Any]] = rule["spec"]["groups"]
    return groups


def render() -> dict[Path, str]:
    """Return the text of each plain rule file, by path."""
    groups = rule_groups()
    slo = [group for group in groups if group["name"].startswith(SLO_GROUPS)]
    recording = [group for group in groups if group["name"] == RECORDING_GROUP]
    alerts = [group for group in groups if group not in slo and group not in recording]
    return {
        TARGET: HEADER + _dump(alerts),
        SLO_TARGET: SLO_HEADER + _dump(slo),
        RECORDING_TARGET: RECORDING_HEADER + _dump(recording),
    }


def _dump(groups: list[dict[str, Any]]) -> str:
    return yaml.dump({"groups": groups}, Dumper=_Dumper, sort_keys=False, width=200)


def main(argv: list[str]) -> int:
    """Write the files, or with --check only compare them."""
    for target, text in render().items():
        if "--check" in argv:
            if not target.exists() or target.read_text(encoding="utf-8") != text:
                print(
                    f"{target} is out of date: run python scripts/render_alerts.py", file=sys.stderr
                )
                return 1
        else:
            target.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
