"""A real Prometheus server (Debian's `prometheus` package) for end-to-end tests, on 127.0.0.1.

    with PrometheusServer.start(workdir, targets=["127.0.0.1:9464"], rule_files=[ALERTS]) as prom:
        prom.wait_until_up(timeout=30)
        vector = prom.query('agent_runs_total{source="e2e"}')

It scrapes once a second, evaluates rules once a second and keeps exemplars
(`--enable-feature=exemplar-storage`), so a test sees data within seconds. Output goes to
`<workdir>/prometheus.log`; every wait is bounded.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.e2e.processes import StopsOnExit, free_port, terminate, wait_until

JOB = "agent-runs-exporter"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
HTTP_TIMEOUT_S = 10.0


def prometheus_binary() -> str:
    """Return the prometheus executable; fail (never skip) when it is not installed."""
    found = shutil.which("prometheus")
    assert found, "prometheus is not installed: run .ci/run (apt-get install prometheus)"
    return found


def write_config(path: Path, targets: Sequence[str], rule_files: Sequence[Path]) -> None:
    """Write a prometheus.yml scraping `targets` as job agent-runs-exporter every second."""
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
        "rule_files": [str(path) for path in rule_files],
        "scrape_configs": [{"job_name": JOB, "static_configs": [{"targets": list(targets)}]}],
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")


class PrometheusError(AssertionError):
    """Prometheus answered a query with an error."""


class PrometheusServer(StopsOnExit):
    """One prometheus process and an HTTP client for its API."""

    def __init__(self, popen: subprocess.Popen[bytes], url: str, log: Path) -> None:
        self.popen = popen
        self.url = url
        self.log = log
        self.http = httpx.Client(base_url=url, timeout=HTTP_TIMEOUT_S)

    @classmethod
    def start(
        cls, workdir: Path, targets: Sequence[str], rule_files: Sequence[Path] = ()
    ) -> PrometheusServer:
        """Start Prometheus on a free loopback port and wait until it is ready."""
        config = workdir / "prometheus.yml"
        write_config(config, targets, rule_files)
        port = free_port()
        log = workdir / "prometheus.log"
        argv = [
            prometheus_binary(),
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--enable-feature=exemplar-storage",
            "--storage.tsdb.retention.time=1h",
            f"--web.console.templates={workdir}",
            f"--web.console.libraries={workdir}",
        ]
        with log.open("wb") as out:
            popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        server = cls(popen, f"http://127.0.0.1:{port}", log)
        try:
            wait_until(server._ready, timeout=START_TIMEOUT_S, what="prometheus /-/ready")
        except BaseException:
            server.stop()
            raise
        return server

    def _ready(self) -> bool:
        assert self.popen.poll() is None, "prometheus exited:\n" + self.describe()
        try:
            return self.http.get("/-/ready").status_code == 200
        except httpx.TransportError:
            return False

    def describe(self) -> str:
        """Return the tail of Prometheus' log, for assertion messages."""
        return self.log.read_text(encoding="utf-8", errors="replace")[-6000:]

    def api(self, path: str, **params: str) -> Any:
        """GET `/api/v1/<path>` and return its `data`, raising PrometheusError on an error."""
        body = self.http.get(f"/api/v1/{path}", params=params).json()
        if body.get("status") != "success":
            raise PrometheusError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Evaluate an instant query now and return its vector (or scalar as one sample)."""
        data = self.api("query", query=expr)
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        return list(data["result"])

    def exemplars(self, expr: str, seconds: float) -> list[dict[str, Any]]:
        """Return the exemplars of the series `expr` selects over the last `seconds`."""
        now = time.time()
        return list(self.api("query_exemplars", query=expr, start=str(now - seconds), end=str(now)))

    def rules(self) -> list[dict[str, Any]]:
        """Return every loaded alerting and recording rule with its health and state."""
        groups = self.api("rules")["groups"]
        return [rule for group in groups for rule in group["rules"]]

    def wait_for_data(self, expr: str, timeout: float) -> list[dict[str, Any]]:
        """Query `expr` until it returns a non-empty vector (bounded) and return it."""
        try:
            return wait_until(lambda: self.query(expr) or None, timeout=timeout, what=expr)
        except TimeoutError as exc:
            raise AssertionError(f"{exc}\n{self.describe()}") from None

    def stop(self) -> None:
        """Stop Prometheus (SIGTERM, then SIGKILL after a bound) and close the client."""
        self.http.close()
        terminate(self.popen, STOP_TIMEOUT_S)
