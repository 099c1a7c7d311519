"""Render the Helm chart offline (helm-python-sdk) and validate what it renders.

docs = render({"sources": [SOURCE]})
deployment = one(docs, "Deployment")
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "agent-runs-exporter"
EXAMPLE = ROOT / "examples" / "otel-collector-sidecar"
KUBE_VERSION = "1.32.0"
OPERATOR_KINDS = ("ServiceMonitor", "PodMonitor", "PrometheusRule")
SOURCE: dict[str, Any] = {
    "name": "support",
    "platform": "conduit",
    "base_url": "https://api.conduit.ai",
    "agents": ["ag77c0dy0mgdpzmqz6tesry8w184002s", "ag2"],
}

LABEL_VALUES = re.compile(r"label_values\((.+), \w+\)")
QUERY_RESULT = re.compile(r"query_result\((.+)\)")

Doc = dict[str, Any]


def render(values: dict[str, Any], chart: Path = CHART, release: str = "are") -> list[Doc]:
    """Render `chart` with `values` and return every manifest (NOTES excluded)."""
    manifests = helm.Chart.load(chart).render(values, name=release, namespace="monitoring")
    docs: list[Doc] = []
    for path, text in sorted(manifests.items()):
        if path.endswith(".yaml"):
            docs.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return docs


def notes(values: dict[str, Any]) -> str:
    """Return the rendered NOTES.txt."""
    manifests = helm.Chart.load(CHART).render(values, name="are", namespace="monitoring")
    return manifests["agent-runs-exporter/templates/NOTES.txt"]


def kinds(docs: list[Doc]) -> list[str]:
    """Return the kinds of `docs`, sorted."""
    return sorted(doc["kind"] for doc in docs)


def one(docs: list[Doc], kind: str, name: str | None = None) -> Doc:
    """Return the only manifest of `kind` (and `name`), or fail."""
    found = [d for d in docs if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def validate(docs: list[Doc]) -> None:
    """Validate every built-in resource with kubernetes-validate (strict); raise on a problem."""
    for doc in docs:
        if doc["kind"] in OPERATOR_KINDS:
            assert doc["apiVersion"] == "monitoring.coreos.com/v1"
            continue  # no schema ships for CRDs: test_chart checks their shape
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)


def pod_spec(workload: Doc) -> Doc:
    """Return the pod spec of a Deployment or StatefulSet."""
    spec: Doc = workload["spec"]["template"]["spec"]
    return spec


def container(spec: Doc, name: str = "agent-runs-exporter") -> Doc:
    """Return the named container of a pod spec."""
    (found,) = [c for c in spec["containers"] if c["name"] == name]
    return dict(found)


def example_chart(tmp_path: Path) -> Path:
    """Copy the sidecar example with this chart as its vendored dependency; return its path."""
    chart = tmp_path / "my-agent-app"
    shutil.copytree(EXAMPLE, chart)
    shutil.copytree(CHART, chart / "charts" / "agent-runs-exporter")
    return chart


def dashboard_expressions() -> list[str]:
    """Return every PromQL expression of the shipped dashboard, variable queries included."""
    dashboard = json.loads((CHART / "files" / "dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":  # label_values(EXPR, label) or query_result(EXPR)
            definition = variable["definition"]
            match = LABEL_VALUES.fullmatch(definition) or QUERY_RESULT.fullmatch(definition)
            assert match is not None, definition
            exprs.append(match[1])
    return exprs
