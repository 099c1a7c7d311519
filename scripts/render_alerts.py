"""Write deploy/prometheus/alerts.yaml: the chart's PrometheusRule groups with every alert on.

The chart's templates/_alerts.tpl is the one source of the rules; this renders it offline with
helm-python-sdk, so plain-Prometheus users get exactly what the chart installs.

    python scripts/render_alerts.py          # rewrite the file
    python scripts/render_alerts.py --check  # exit 1 if the file is out of date
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
HEADER = """\
# Alert rules for agent-runs-exporter, for a plain Prometheus (rule_files: [alerts.yaml]).
# Generated from helm/agent-runs-exporter/templates/_alerts.tpl by scripts/render_alerts.py with
# the chart's default thresholds and every alert on (the chart leaves AgentRunsCostBurnHigh off
# by default). The scrape job must be named "agent-runs-exporter". Tests: alerts.test.yaml.
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


def render() -> str:
    """Return the text of the plain rule file."""
    body = yaml.dump({"groups": rule_groups()}, Dumper=_Dumper, sort_keys=False, width=200)
    return HEADER + body


def main(argv: list[str]) -> int:
    """Write the file, or with --check only compare it."""
    text = render()
    if "--check" in argv:
        if TARGET.read_text(encoding="utf-8") != text:
            print(f"{TARGET} is out of date: run python scripts/render_alerts.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
