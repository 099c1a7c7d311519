"""End to end with a real Prometheus: the simulator, `agent-runs-exporter run`, a real OTLP
receiver and Debian's Prometheus (exemplar storage on) loading the shipped alert rules.

One stack is started for the module; each test asks it one question: is the target up, do the
series carry the contract labels, do the rules load and the failure-ratio alert evaluate, do the
exemplars name traces the receiver got, and does every dashboard query answer with data.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.deploy.charts import dashboard_expressions
from tests.deploy.test_dashboard import substitute
from tests.e2e.otlp_receiver import OtlpReceiver
from tests.e2e.processes import CliProcess, free_port, start_simulator, wait_until
from tests.e2e.prometheus import JOB, PrometheusServer
from tests.e2e.test_end_to_end import (
    HTTP_TIMEOUT_S,
    SOURCE,
    TOKEN,
    covers,
    start_exporter,
    wait_ready,
    write_config,
)

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yaml"
RULES = [ALERTS, *(ROOT / "deploy" / "prometheus" / f for f in ("slo.yaml", "recording.yaml"))]
SIMULATOR_ARGS = [
    "--seed", "23",
    "--agents", "3",
    "--rate", "2",
    "--failure-ratio", "0.5",  # far above the alert's 20%, so its expression returns data
    "--duration-scale", "0.1",
    "--history", "120",
    "--rate-limit", "0",
    "--token", TOKEN,
]  # fmt: skip
FAILURE = "AgentRunsFailureRatioHigh"
DATA_TIMEOUT_S = 60.0
SPANS_TIMEOUT_S = 30.0
LABELS = {"__name__", "job", "instance", "source", "platform", "agent_id", "status", "disposition"}
# Grafana's variables as a user looking at the last minutes of this source would have them.
GRAFANA = {"$__rate_interval": "15s", "$__range": "5m", "$source": SOURCE, "$agent": ".*"}
RECORDED = 'recording_rules!~"$rules"'  # a query that reads the recording rules


@dataclass
class Stack:
    """The running processes and what the tests need to reach them."""

    prometheus: PrometheusServer
    exporter: CliProcess
    receiver: OtlpReceiver
    agents: list[str]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Start simulator, OTLP receiver, exporter and Prometheus; stop them all afterwards."""
    workdir = tmp_path_factory.mktemp("prometheus-e2e")
    with contextlib.ExitStack() as stop:
        simulator, url = start_simulator(SIMULATOR_ARGS, workdir)
        stop.enter_context(simulator)
        receiver = stop.enter_context(OtlpReceiver())
        http = stop.enter_context(httpx.Client(base_url=url, timeout=HTTP_TIMEOUT_S))
        response = http.get("/v1/agents", headers={"Authorization": f"Bearer {TOKEN}"})
        agents = [agent["id"] for agent in response.json()["data"]]
        listen = f"127.0.0.1:{free_port()}"
        config = write_config(
            workdir / "config.yaml",
            listen=listen,
            simulator_url=url,
            otlp_url=receiver.url,
            agents=agents,
        )
        exporter = stop.enter_context(start_exporter("exporter", config, workdir))
        with httpx.Client(base_url=f"http://{listen}", timeout=HTTP_TIMEOUT_S) as metrics:
            wait_ready(metrics, exporter)
        prometheus = stop.enter_context(PrometheusServer.start(workdir, [listen], RULES))
        yield Stack(prometheus, exporter, receiver, agents)


def test_target_is_up(stack: Stack) -> None:
    (sample,) = stack.prometheus.wait_for_data(f'up{{job="{JOB}"}} == 1', DATA_TIMEOUT_S)
    assert sample["metric"]["job"] == JOB


def test_runs_arrive_with_the_contract_labels(stack: Stack) -> None:
    series = stack.prometheus.wait_for_data(
        f'agent_runs_total{{source="{SOURCE}"}} > 0', DATA_TIMEOUT_S
    )
    assert {label for sample in series for label in sample["metric"]} == LABELS
    assert {sample["metric"]["agent_id"] for sample in series} == set(stack.agents)
    assert {sample["metric"]["status"] for sample in series} >= {"completed", "failed"}
    (shards,) = stack.prometheus.query("agent_runs_exporter_total_shards")
    assert shards["value"][1] == "1"


def test_rules_load_and_the_failure_ratio_alert_evaluates(stack: Stack) -> None:
    shipped = yaml.safe_load(ALERTS.read_text())["groups"][0]["rules"]
    expr = next(r["expr"] for r in shipped if r["alert"] == FAILURE)

    def every_agent() -> list[dict[str, Any]] | None:
        vector = stack.prometheus.query(expr)
        agents = {sample["metric"]["agent_id"] for sample in vector}
        return vector if agents == set(stack.agents) else None

    ratios = wait_until(every_agent, timeout=DATA_TIMEOUT_S, what="a failure ratio per agent")
    assert all(0.2 < float(sample["value"][1]) < 0.8 for sample in ratios)

    def states() -> dict[str, str] | None:
        rules = stack.prometheus.rules()
        ok = [rule for rule in rules if rule["health"] == "ok" and rule["type"] == "alerting"]
        found = {rule["name"]: rule["state"] for rule in ok}
        names = {rule["alert"] for rule in shipped}
        return found if names <= set(found) and found.get(FAILURE) != "inactive" else None

    found = wait_until(states, timeout=DATA_TIMEOUT_S, what="rules evaluated")
    assert found[FAILURE] in ("pending", "firing")
    for quiet in ("AgentRunsExporterDown", "AgentRunsExporterAbsent", "AgentRunsShardMissing"):
        assert found[quiet] == "inactive", quiet


def test_exemplars_are_the_trace_ids_of_received_spans(stack: Stack) -> None:
    selector = f'agent_run_duration_seconds_bucket{{source="{SOURCE}"}}'

    def trace_ids() -> set[str] | None:
        groups = stack.prometheus.exemplars(selector, seconds=600)
        found = {e["labels"]["trace_id"] for group in groups for e in group["exemplars"]}
        return found or None

    traces = wait_until(trace_ids, timeout=DATA_TIMEOUT_S, what="exemplars of " + selector)
    assert all(len(trace) == 32 and int(trace, 16) for trace in traces)
    stack.receiver.wait_for(lambda spans: covers(spans, traces), timeout=SPANS_TIMEOUT_S)


def test_every_dashboard_query_returns_data(stack: Stack) -> None:
    stack.prometheus.wait_for_data('sum(agent_tool_calls_total{source="e2e"}) > 0', DATA_TIMEOUT_S)
    stack.prometheus.wait_for_data(
        f'sum(count_over_time(agent_runs_total{{source="{SOURCE}"}}[15s])) > 20', DATA_TIMEOUT_S
    )
    stack.prometheus.wait_for_data("source_agent_id_status:agent_runs:rate5m", DATA_TIMEOUT_S)
    empty = []
    for expr in dashboard_expressions():  # each with "Queries" set to what it reads
        rules = {"$rules": "on" if RECORDED in expr else ".*"}
        if not stack.prometheus.query(substitute(expr, GRAFANA | rules)):  # raises on an error
            empty.append(expr)
    assert empty == []
