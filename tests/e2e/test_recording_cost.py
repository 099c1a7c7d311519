"""End to end with a real Prometheus: what the dashboard's heavy panels cost at 1,000 agents, read
from the raw series and from the recording rules (deploy/prometheus/recording.yaml).

A fleet target serves the run metrics of 1,000 agents (the exporter's own `RunMetrics` and
renderer, runs added at every scrape); Prometheus scrapes it and evaluates the rules every second.
Each heavy panel's two queries (raw and recorded) run as range queries over the same window with
`stats=all`; the recorded ones must touch several times fewer samples. The figures are printed
(`pytest -s`).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from exporter.config.models import MetricsSettings
from exporter.model import Status
from exporter.sinks.metrics.exposition import render
from exporter.sinks.metrics.runs import RunMetrics
from tests.deploy.charts import dashboard_expressions
from tests.deploy.test_dashboard import substitute
from tests.e2e.processes import StopsOnExit
from tests.e2e.prometheus import PrometheusServer
from tests.e2e.test_prometheus import RECORDED
from tests.unit.runs import make_run

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
RECORDING = ROOT / "deploy" / "prometheus" / "recording.yaml"
AGENTS = 1000
RUNS_PER_SCRAPE = 200
WINDOW_S = 20  # seconds of data the compared queries read
DATA_TIMEOUT_S = 120.0
# Grafana's rate interval is four scrape intervals: 4s here, as 1m is at a 15s scrape.
GRAFANA = {"$__rate_interval": "4s", "$__range": "1h", "$source": ".*", "$agent": ".*"}
RAW = 'recording_rules=~"$rules"'


class FleetTarget(StopsOnExit):
    """Serve /metrics for 1,000 agents, adding runs before each scrape."""

    def __init__(self) -> None:
        buckets = MetricsSettings()
        self.metrics = RunMetrics(
            {
                "duration": buckets.duration_buckets,
                "tokens": buckets.token_buckets,
                "cost": buckets.cost_buckets,
            }
        )
        self.registry = CollectorRegistry()
        self.registry.register(self.metrics)
        for index in range(AGENTS):
            self.metrics.declare_agent(
                "fleet", "conduit", f"ag{index}", statuses=("completed", "failed"), dispositions=()
            )
        self.metrics.publish()
        self._lock = threading.Lock()
        self._count = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}"

    def body(self) -> bytes:
        """Add a few runs, publish them and return the exposition."""
        with self._lock:
            for _ in range(RUNS_PER_SCRAPE):
                self._count += 1
                status = Status.FAILED if self._count % 7 == 0 else Status.COMPLETED
                agent = f"ag{self._count % AGENTS}"
                run = make_run(f"r{self._count}", agent_id=agent, status=status, disposition=None)
                self.metrics.record_run("fleet", "conduit", run, "0" * 32, time.time())
            self.metrics.publish()
            return render(self.registry, "text/plain").body

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        target = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = target.body()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    workdir = tmp_path_factory.mktemp("recording-cost")
    with contextlib.ExitStack() as stop:
        target = stop.enter_context(FleetTarget())
        yield stop.enter_context(PrometheusServer.start(workdir, [target.address], [RECORDING]))


def samples_touched(prometheus: PrometheusServer, expr: str, end: float) -> tuple[int, float]:
    """Return the samples a range query over the window touches, and its wall time."""
    started = time.perf_counter()
    data = prometheus.api(
        "query_range",
        query=expr,
        start=str(end - WINDOW_S),
        end=str(end),
        step="1",
        stats="all",
    )
    elapsed = time.perf_counter() - started
    assert data["result"], expr
    return int(data["stats"]["samples"]["totalQueryableSamples"]), elapsed


def test_recorded_panels_touch_far_fewer_samples(prometheus: PrometheusServer) -> None:
    prometheus.wait_for_data(
        f"count(source_agent_id_status:agent_runs:rate5m) >= {2 * AGENTS}", DATA_TIMEOUT_S
    )
    time.sleep(WINDOW_S)  # a full window of raw and recorded samples
    series = prometheus.query('count({__name__=~"agent_run.*"})')[0]["value"][1]
    end = time.time() - 2
    exprs = dashboard_expressions()
    raws, twins = [e for e in exprs if RAW in e], [e for e in exprs if RECORDED in e]
    pairs = list(zip(raws, twins, strict=True))  # each raw query, then its recorded twin
    assert len(pairs) == 7  # runs, failure ratio, p50/p95/p99, tokens, cost
    raw_total = recorded_total = 0
    raw_time = recorded_time = 0.0
    for raw, recorded in pairs:
        raw_samples, raw_s = samples_touched(
            prometheus, substitute(raw, GRAFANA | {"$rules": ".*"}), end
        )
        rec_samples, rec_s = samples_touched(
            prometheus, substitute(recorded, GRAFANA | {"$rules": "on"}), end
        )
        raw_total, recorded_total = raw_total + raw_samples, recorded_total + rec_samples
        raw_time, recorded_time = raw_time + raw_s, recorded_time + rec_s
    print(
        f"\n{AGENTS} agents, {series} raw run series; heavy panels over {WINDOW_S}s at 1s steps:"
        f" raw {raw_total} samples in {raw_time * 1000:.0f} ms,"
        f" recorded {recorded_total} samples in {recorded_time * 1000:.0f} ms"
    )
    assert recorded_total * 4 < raw_total  # 6x fewer when measured
