"""End to end, as processes: the API token never leaks, and a rotated token file is picked up.

The simulator requires a recognisable token. The exporter starts with a token file holding a
wrong (equally recognisable) token, logs at debug level as JSON, captures tool content, writes
spans to a file and serves /metrics over TLS with basic auth. Once its source is refused, the
file is rotated the way Kubernetes does it (a symlink swap) to the right token, and the exporter
recovers without a restart. Afterwards neither token (nor the basic-auth password) appears in any
log line, the /metrics body, any exported span or the `check-config` output.
"""

from __future__ import annotations

import base64
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bcrypt
import httpx
import pytest
import yaml

from tests.e2e.processes import CliProcess, free_port, run_cli, start_simulator, wait_until
from tests.unit.certs import Pki, make_pki

pytestmark = pytest.mark.e2e

TOKEN = "tok-LEAKCANARY-7d3f09b1c2"
WRONG_TOKEN = "tok-WRONGCANARY-51ae6f0d"
PASSWORD = "pw-LEAKCANARY-scrape-93b1"
SIMULATOR_ARGS = [
    "--seed", "23",
    "--agents", "2",
    "--rate", "2",
    "--duration-scale", "0.1",
    "--history", "60",
    "--rate-limit", "0",
    "--token", TOKEN,
]  # fmt: skip
TIMEOUT_S = 45.0


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[tuple[CliProcess, str]]:
    process, url = start_simulator(SIMULATOR_ARGS, tmp_path)
    with process:
        yield process, url


def rotate(directory: Path, version: str, token: str) -> None:
    """Point `<directory>/token` at a new version, as the kubelet does: one atomic rename."""
    (directory / version).mkdir()
    (directory / version / "token").write_text(token + "\n", encoding="utf-8")
    link = directory / "..data.tmp"
    link.symlink_to(version)
    link.replace(directory / "..data")
    if not (directory / "token").is_symlink():
        (directory / "token").symlink_to("..data/token")


def write_configs(workdir: Path, pki: Pki, port: int, simulator_url: str) -> Path:
    web = {
        "tls_server_config": {"cert_file": str(pki.server_cert), "key_file": str(pki.server_key)},
        "basic_auth_users": {
            "prometheus": bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
        },
    }
    (workdir / "web.yml").write_text(yaml.safe_dump(web), encoding="utf-8")
    with httpx.Client(base_url=simulator_url, timeout=5) as http:
        agents = http.get("/v1/agents", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    config = {
        "listen": f"127.0.0.1:{port}",
        "poll_interval": "0.5s",
        "state": {"path": str(workdir / "state.db")},
        "traces": {
            "exporter": "file",
            "file": str(workdir / "spans.jsonl"),
            "capture_content": True,
        },
        "web": {"config_file": str(workdir / "web.yml"), "health_without_auth": True},
        "sources": [
            {
                "name": "leak",
                "platform": "conduit",
                "base_url": simulator_url,
                "token_file": str(workdir / "secret" / "token"),
                "agents": [agent["id"] for agent in agents["data"]],
            }
        ],
    }
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def readiness(http: httpx.Client, exporter: CliProcess) -> dict[str, Any] | None:
    assert exporter.returncode is None, exporter.describe()
    try:
        return dict(http.get("/readyz").json())
    except httpx.TransportError:
        return None


def test_tokens_never_leak_and_a_rotated_token_file_is_used(
    tmp_path: Path, simulator: tuple[CliProcess, str]
) -> None:
    pki = make_pki(tmp_path)
    (tmp_path / "secret").mkdir()
    rotate(tmp_path / "secret", "v1", WRONG_TOKEN)
    port = free_port()
    config = write_configs(tmp_path, pki, port, simulator[1])
    checked = run_cli(["check-config", "--config", str(config)], tmp_path)
    assert checked.returncode == 0, checked.stderr
    args = ["run", "--config", str(config), "--log-format", "json", "--log-level", "debug"]
    auth = base64.b64encode(f"prometheus:{PASSWORD}".encode()).decode()
    with (
        CliProcess.start("exporter", args, tmp_path) as exporter,
        httpx.Client(
            base_url=f"https://127.0.0.1:{port}",
            verify=ssl.create_default_context(cafile=pki.ca),
            headers={"Authorization": f"Basic {auth}"},
            timeout=5,
        ) as http,
    ):
        refused = wait_until(
            lambda: (
                (body := readiness(http, exporter))
                and body["sources"]["leak"]["reason"] == "unauthorized"
                and body
            ),
            timeout=TIMEOUT_S,
            what="the wrong token to be refused",
        )
        assert refused["status"] == "not ready"
        rotate(tmp_path / "secret", "v2", TOKEN)
        wait_until(
            lambda: (body := readiness(http, exporter)) and body["status"] == "ready",
            timeout=TIMEOUT_S,
            what="readiness after the token file rotated",
        )
        spans = tmp_path / "spans.jsonl"
        wait_until(
            lambda: spans.exists() and spans.stat().st_size > 0, timeout=TIMEOUT_S, what="spans"
        )
        assert http.get("/metrics", headers={"Authorization": ""}).status_code == 401
        metrics = http.get("/metrics").text
        assert exporter.stop() == 0, exporter.describe()
    assert 'agent_runs_exporter_web_auth_failures_total{reason="missing"} 1.0' in metrics
    assert 'poll_errors_total{reason="unauthorized",source="leak"}' in metrics
    places = {
        "logs": exporter.stdout() + exporter.stderr(),
        "metrics": metrics,
        "spans": spans.read_text(encoding="utf-8"),
        "check-config": checked.stdout + checked.stderr,
    }
    assert '"level": "DEBUG"' in places["logs"]
    assert "changed: using the new token" in places["logs"]
    assert "gen_ai.tool.call.arguments" in places["spans"]
    for secret in (TOKEN, WRONG_TOKEN, PASSWORD, auth):
        for place, text in places.items():
            assert secret not in text, f"{secret} leaked into {place}"
