"""End to end: `agent-runs-exporter run` with `metrics.otlp` on pushes to a real OTLP/HTTP receiver
the same run counts and durations that /metrics serves, and pushes once more on SIGTERM."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
import yaml

from tests.e2e.otlp_receiver import MetricPoint, OtlpReceiver, latest
from tests.e2e.processes import free_port, wait_until
from tests.e2e.test_end_to_end import (
    HTTP_TIMEOUT_S,
    SOURCE,
    AgentStatus,
    Simulator,
    check_counts,
    configure,
    exported_counts,
    pause_until_finished,
    simulator,
    start_exporter,
    wait_ready,
)

pytestmark = pytest.mark.e2e
__all__ = ["simulator"]  # the fixture, used by name

PUSH_INTERVAL = "0.5s"
RUN_S = 4.0
PUSH_TIMEOUT_S = 15.0


def pushed_counts(points: list[MetricPoint]) -> Counter[AgentStatus]:
    """Sum the latest pushed `agent_runs` of our source per (agent_id, status), zeros left out."""
    counts: Counter[AgentStatus] = Counter()
    for point in latest(points).values():
        if point.name == "agent_runs" and point.attributes["source"] == SOURCE:
            counts[(point.attributes["agent_id"], point.attributes["status"])] += int(point.value)
    return +counts


def durations(points: list[MetricPoint]) -> Counter[AgentStatus]:
    """Count the latest pushed duration histograms' runs per (agent_id, status)."""
    counts: Counter[AgentStatus] = Counter()
    for point in latest(points).values():
        if point.name == "agent_run_duration_seconds":
            assert point.unit == "s"
            assert point.temporality == 2
            assert sum(point.buckets) == point.count
            counts[(point.attributes["agent_id"], point.attributes["status"])] += point.count
    return +counts


def test_pushed_metrics_equal_the_scraped_ones(
    tmp_path: Path, simulator: Simulator, otlp_receiver: OtlpReceiver
) -> None:
    port = free_port()
    config = configure(tmp_path, port, simulator, otlp_receiver)
    settings = yaml.safe_load(config.read_text())
    settings["metrics"] = {
        "otlp": {"enabled": True, "endpoint": otlp_receiver.url, "interval": PUSH_INTERVAL}
    }
    config.write_text(yaml.safe_dump(settings, sort_keys=False))
    base_url = f"http://127.0.0.1:{port}"
    with (
        httpx.Client(base_url=base_url, timeout=HTTP_TIMEOUT_S) as http,
        start_exporter("exporter-otlp", config, tmp_path) as exporter,
    ):
        wait_ready(http, exporter)
        time.sleep(RUN_S)
        truth = pause_until_finished(simulator)
        exposition = check_counts(http, truth, exporter)
        expected = exported_counts(exposition)
        wait_until(
            lambda: pushed_counts(otlp_receiver.metric_points()) == expected or None,
            timeout=PUSH_TIMEOUT_S,
            interval=0.1,
            what="the pushed counts to reach the scraped ones",
        )
        received = len(otlp_receiver.metric_points())
        assert exporter.stop() == 0, exporter.describe()
    points = otlp_receiver.metric_points()
    assert len(points) > received, "no last push on SIGTERM"
    assert pushed_counts(points) == expected
    assert durations(points) == expected
    exemplars = [
        e for p in latest(points).values() if p.name == "agent_run_duration_seconds"
        for e in p.exemplars
    ]  # fmt: skip
    assert exemplars
    assert all(len(e["trace_id"]) == 32 for e in exemplars)
