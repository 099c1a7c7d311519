"""End to end, as a process: `agent-runs-exporter demo` with all four platforms at once.

The demo runs the four simulators and the exporter (spans to a file). After a while arrivals are
paused on every platform; once every run has finished, each platform's `agent_runs_total` per
(agent, status) must equal that simulator's ground truth, and after a SIGTERM the span file must
hold exactly one root span for every terminal run.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter.simulator.platforms import PLATFORMS
from exporter.sources import acp, conduit, elizaos, runtype
from tests.e2e.otlp_receiver import read_span_file
from tests.e2e.processes import CliProcess, free_port, wait_until

pytestmark = pytest.mark.e2e

STATUS_MAPS = {
    "conduit": conduit.STATUS_MAP,
    "runtype": runtype.STATUS_MAP,
    "elizaos": elizaos.STATUS_MAP,
    "acp": acp.STATUS_MAP,
}
DEMO_ARGS = [
    "--seed", "5",
    "--agents", "2",
    "--rate", "1",  # runs per second per agent: 5 per 5 s poll, well inside ACP's one page
    "--history", "40",
    "--duration-scale", "0.1",  # runs last ~0.4 s (median), so all finish soon after a pause
    "--log-format", "json",
]  # fmt: skip
RUN_S = 8.0
TIMEOUT_S = 45.0

Key = tuple[str, str, str]  # (platform, agent, normalized status)


def truth(http: httpx.Client, base: str, platform: str) -> dict[str, Any]:
    response = http.get(f"{base}/{platform}/_simulator/truth")
    response.raise_for_status()
    return dict(response.json())


def expected(truths: dict[str, dict[str, Any]]) -> Counter[Key]:
    return Counter(
        (platform, run["agent_id"], STATUS_MAPS[platform][run["status"]].value)
        for platform, body in truths.items()
        for run in body["runs"]
        if run["terminal"]
    )


def exported(http: httpx.Client, metrics_url: str) -> Counter[Key]:
    counts: Counter[Key] = Counter()
    for family in text_string_to_metric_families(http.get(metrics_url).text):
        for sample in family.samples:
            if sample.name == "agent_runs_total" and sample.value:
                labels = sample.labels
                key = (labels["platform"], labels["agent_id"], labels["status"])
                counts[key] += int(sample.value)
    return counts


def ready(http: httpx.Client, url: str) -> bool:
    try:
        return http.get(url).status_code == 200
    except httpx.TransportError:  # not listening yet
        return False


def all_finished(http: httpx.Client, base: str) -> dict[str, dict[str, Any]] | None:
    truths = {platform: truth(http, base, platform) for platform in PLATFORMS}
    done = all(run["terminal"] for body in truths.values() for run in body["runs"])
    return truths if done else None


def test_demo_counts_and_traces_every_platform_like_the_truth(tmp_path: Path) -> None:
    port = free_port()
    args = ["demo", "--listen", f"127.0.0.1:{port}", "--dir", str(tmp_path / "demo"), *DEMO_ARGS]
    metrics_url = f"http://127.0.0.1:{port}/metrics"
    with CliProcess.start("demo", args, tmp_path) as demo, httpx.Client(timeout=5) as http:
        base = demo.wait_for_output(r"(http://127\.0\.0\.1:\d+)/conduit", 30)[1]
        wait_until(
            lambda: ready(http, f"http://127.0.0.1:{port}/readyz"),
            timeout=TIMEOUT_S,
            interval=0.5,
            what="every source ready",
        )
        time.sleep(RUN_S)
        for platform in PLATFORMS:
            http.post(f"{base}/{platform}/_simulator/pause").raise_for_status()
        truths = wait_until(
            lambda: all_finished(http, base), timeout=TIMEOUT_S, what="every run to finish"
        )
        want = expected(truths)
        assert {platform for platform, _, _ in want} == set(PLATFORMS)
        got = wait_until(
            lambda: (counts := exported(http, metrics_url)) == want and counts,
            timeout=TIMEOUT_S,
            interval=1.0,
            what=f"agent_runs_total to reach the truth ({sum(want.values())} runs)",
        )
        assert got == want
        # An ElizaOS trace waits until its detail is complete (detail_delay_s after the run's
        # end), so up to one poll (5 s in the demo) after that.
        time.sleep(elizaos.ElizaSource.detail_delay_s + 6.0)
        assert demo.stop() == 0, demo.describe()
    spans = read_span_file(tmp_path / "demo" / "spans.jsonl")
    roots = Counter(  # a run's own span; a nested sub-agent's has its parent's tool call above
        (span.attributes["agent_run.source"], span.attributes["agent_run.id"])
        for span in spans
        if span.attributes.get("gen_ai.operation.name") == "invoke_agent"
    )
    present = {(span.trace_id, span.span_id) for span in spans}
    assert all((s.trace_id, s.parent_span_id) in present for s in spans if s.parent_span_id)
    terminal = {
        (platform, run["id"])
        for platform, body in truths.items()
        for run in body["runs"]
        if run["terminal"]
    }
    assert set(roots) == terminal
    assert set(roots.values()) == {1}
