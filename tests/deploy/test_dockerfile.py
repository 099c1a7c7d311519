"""The Dockerfile: hadolint clean, multi-stage, non-root with the chart's uid, health-checked,
and started through the console script. (scripts/image-smoke.sh builds and runs it for real.)"""

from __future__ import annotations

import json
import re
import tomllib

import yaml

from tests.deploy.charts import CHART
from tests.deploy.tools import ROOT, run, tool

DOCKERFILE = ROOT / "Dockerfile"
TEXT = DOCKERFILE.read_text()
LINES = re.sub(r"\\\n\s*", " ", TEXT).splitlines()


def instructions(name: str) -> list[str]:
    return [line.split(" ", 1)[1] for line in LINES if line.startswith(f"{name} ")]


def test_hadolint_is_clean() -> None:
    result = run(tool("hadolint"), "--format", "json", str(DOCKERFILE))
    assert json.loads(result.stdout or "[]") == [], result.stdout
    assert result.returncode == 0, result.stderr


def test_two_stages_from_a_base_image_argument() -> None:
    first_arg = next(line for line in LINES if line.startswith("ARG "))
    assert first_arg.startswith("ARG BASE_IMAGE=")
    assert LINES.index(first_arg) < LINES.index("FROM ${BASE_IMAGE} AS build")
    assert instructions("FROM") == ["${BASE_IMAGE} AS build", "${BASE_IMAGE}"]
    assert "COPY --from=build /opt/venv /opt/venv" in LINES


def test_runs_as_the_charts_non_root_uid() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    uid = values["podSecurityContext"]["runAsUser"]
    assert f"ARG UID={uid}" in LINES
    assert instructions("USER") == ["${UID}:${GID}"]
    assert uid != 0


def test_state_volume_port_health_and_entrypoint() -> None:
    assert instructions("VOLUME") == ['["/var/lib/agent-runs-exporter"]']
    assert instructions("EXPOSE") == ["9464"]
    (health,) = instructions("HEALTHCHECK")
    assert "http://127.0.0.1:9464/healthz" in health
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    (entrypoint,) = instructions("ENTRYPOINT")
    assert json.loads(entrypoint) == [next(iter(scripts))]
    assert json.loads(instructions("CMD")[0]) == [
        "run",
        "--config",
        "/etc/agent-runs-exporter/config.yaml",
    ]
