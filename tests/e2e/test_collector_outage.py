"""A collector that is unreachable, then up, then down and up again, as real processes.

The exporter starts with nothing listening on its OTLP endpoint: it polls, counts and stays
ready, and its span queue keeps retrying. A real OTLP/HTTP receiver then comes up on that port,
goes down for a while and comes back. At the end every terminal run has its root span at one of
the receivers, and the run counts equal the simulator's ground truth.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.otlp_receiver import OtlpReceiver, SpanRecord
from tests.e2e.processes import free_port, wait_until
from tests.e2e.test_end_to_end import (
    SIMULATOR_ARGS,
    SOURCE,
    Simulator,
    expected_trace_id,
    exported_counts,
    pause_until_finished,
    start_exporter,
    terminal_runs,
    truth_counts,
    wait_ready,
)

pytestmark = pytest.mark.e2e

OUTAGE_S = 4.0
SETTLE_TIMEOUT_S = 45.0


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[Simulator]:
    """Run the fake Conduit API (no faults, no rate limit) as a process; stop it afterwards."""
    with Simulator.running(SIMULATOR_ARGS, tmp_path) as simulator:
        yield simulator


def write_config(workdir: Path, port: int, otlp_port: int, simulator: Simulator) -> Path:
    config = {
        "listen": f"127.0.0.1:{port}",
        "poll_interval": "0.5s",
        "lookback": "1h",
        "state": {"path": str(workdir / "state.db")},
        "traces": {
            "exporter": "otlp",
            "endpoint": f"http://127.0.0.1:{otlp_port}",
            "timeout": "1s",
        },
        "sources": [
            {
                "name": SOURCE,
                "platform": "conduit",
                "base_url": simulator.url,
                "token": "${E2E_TOKEN}",
                "agents": [agent["id"] for agent in simulator.truth()["agents"]],
                "max_requests_per_minute": 0,
            }
        ],
    }
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def sample(http: httpx.Client, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(http.get("/metrics").text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0


def roots(receivers: list[OtlpReceiver]) -> set[str]:
    spans: list[SpanRecord] = [span for r in receivers for span in r.spans()]
    return {span.trace_id for span in spans if span.parent_span_id is None}


def test_spans_survive_an_unreachable_then_flapping_collector(
    tmp_path: Path, simulator: Simulator
) -> None:
    port, otlp_port = free_port(), free_port()
    config = write_config(tmp_path, port, otlp_port, simulator)
    receivers: list[OtlpReceiver] = []
    with (
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as http,
        start_exporter("exporter", config, tmp_path) as exporter,
    ):
        try:
            wait_ready(http, exporter)
            time.sleep(OUTAGE_S)  # nothing listens on the OTLP port
            assert sample(http, "agent_runs_exporter_spans_exported_total", result="failure") > 0
            counted = sum(exported_counts(http.get("/metrics").text).values())
            assert counted > 0, "polling stalled behind the unreachable collector"
            assert http.get("/readyz").status_code == 200

            receivers.append(OtlpReceiver(otlp_port))  # up
            # The span queue backs off up to 30 s between retries: wait past one whole backoff.
            receivers[0].wait_for(lambda spans: len(spans) > 0, timeout=SETTLE_TIMEOUT_S)
            receivers[0].stop()  # down again
            # Counting goes on while the collector is down again (a cycle's trace phase may take
            # up to 10 s of it, so wait for a count rather than for a fixed time).
            wait_until(
                lambda: sum(exported_counts(http.get("/metrics").text).values()) > counted,
                timeout=SETTLE_TIMEOUT_S,
                what="runs counted while the collector is down again",
            )
            receivers.append(OtlpReceiver(otlp_port))  # and back

            truth = pause_until_finished(simulator)
            runs = terminal_runs(truth)
            expected = {expected_trace_id(run) for run in runs}
            wait_until(
                lambda: expected <= roots(receivers),
                timeout=SETTLE_TIMEOUT_S,
                what="every run's root span at one of the receivers",
            )
            assert exported_counts(http.get("/metrics").text) == truth_counts(truth)
            assert exporter.stop() == 0, exporter.describe()
        finally:
            for receiver in receivers:
                receiver.stop()
    missing: Any = expected - roots(receivers)
    assert not missing
