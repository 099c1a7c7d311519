"""The chart's ci/*-values.yaml (the chart-testing convention, one per mode): each renders, every
built-in resource validates strictly, and the rendered config loads with the exporter's loader."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.charts import CHART, kinds, one, pod_spec, render, validate
from tests.deploy.test_chart import config_of

CI = sorted((CHART / "ci").glob("*-values.yaml"))
WORKLOAD = {"deployment": "Deployment", "statefulset-sharded": "StatefulSet", "tls": "Deployment"}


def values_of(path: Path) -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load(path.read_text())
    return values


def test_every_mode_has_ci_values() -> None:
    assert [path.name for path in CI] == [
        "deployment-values.yaml",
        "sidecar-values.yaml",
        "statefulset-sharded-values.yaml",
        "tls-values.yaml",
    ]


@pytest.mark.parametrize("path", CI, ids=[p.name.removesuffix("-values.yaml") for p in CI])
def test_ci_values_render_valid_manifests_and_config(path: Path, tmp_path: Path) -> None:
    values = values_of(path)
    docs = render(values)
    validate(docs)
    env = {f"SOURCE_TOKEN_{source['name'].upper()}": "tok-ci-1" for source in values["sources"]}
    settings = config_of(docs, tmp_path, env)
    assert [s.name for s in settings.sources] == [s["name"] for s in values["sources"]]
    mode = path.name.removesuffix("-values.yaml")
    if mode == "sidecar":
        assert kinds(docs) == ["ConfigMap", "Secret"]
        return
    workload = one(docs, WORKLOAD[mode])
    assert pod_spec(workload)["containers"][0]["name"] == "agent-runs-exporter"
    if mode == "statefulset-sharded":
        assert workload["spec"]["replicas"] == 3
        assert "PodMonitor" in kinds(docs)
    if mode == "tls":
        probe = pod_spec(workload)["containers"][0]["readinessProbe"]["httpGet"]
        assert probe["scheme"] == "HTTPS"
        assert settings.web.config_file is not None
    if mode == "deployment":
        assert {"PrometheusRule", "Service", "PersistentVolumeClaim"} <= set(kinds(docs))
