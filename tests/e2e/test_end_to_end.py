"""End to end, as processes: the simulator, `agent-runs-exporter run` and a real OTLP receiver.

A few minutes of simulated Conduit traffic (two minutes of history, then a high arrival rate of
short runs) flow through the exporter, which is stopped with SIGTERM and restarted on the same
state file in the middle. Once arrivals are paused and every run has finished:

- `agent_runs_total`, per (agent, status) and summed, equals the simulator's terminal runs;
- every terminal run has exactly one root span under its expected trace id, and one child span
  per non-null tool step;
- the API token appears in no log line and not on /metrics.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from exporter.sinks.traces import ids
from tests.e2e.otlp_receiver import OtlpReceiver, SpanRecord
from tests.e2e.processes import CliProcess, free_port, run_cli, start_simulator, wait_until

pytestmark = pytest.mark.e2e

SOURCE = "e2e"
TOKEN = "e2e-secret"
SIMULATOR_ARGS = [
    "--seed", "11",
    "--agents", "3",
    "--rate", "4",  # new runs per second per agent
    "--duration-scale", "0.1",  # runs last ~0.5 s (median), so all finish soon after a pause
    "--history", "120",  # two minutes of runs exist before the exporter starts
    "--rate-limit", "0",  # Conduit's 120 requests/minute would throttle a 0.5 s poll
    "--token", TOKEN,
]  # fmt: skip
POLL_INTERVAL_S = 0.5
LOOKBACK_S = 3600.0
TERMINAL = ("completed", "failed")
HTTP_TIMEOUT_S = 5.0
READY_TIMEOUT_S = 45.0  # the first cycle reads the whole history's details
FIRST_RUN_S = 12.0
DOWNTIME_S = 4.0
SECOND_RUN_S = 10.0
FINISH_TIMEOUT_S = 30.0
SETTLE_TIMEOUT_S = 30.0
SPANS_TIMEOUT_S = 30.0

AgentStatus = tuple[str, str]


@dataclass
class Simulator:
    """The `simulate` process and a client for its Conduit and control endpoints."""

    process: CliProcess
    url: str
    http: httpx.Client

    @classmethod
    @contextlib.contextmanager
    def running(cls, args: list[str], workdir: Path) -> Iterator[Simulator]:
        """Run `simulate ARGS` as a process with a client for it; stop it afterwards."""
        process, url = start_simulator(args, workdir)
        with process, httpx.Client(base_url=url, timeout=HTTP_TIMEOUT_S) as http:
            yield cls(process, url, http)

    def truth(self) -> dict[str, Any]:
        """Return the ground truth: every run with its current status."""
        response = self.http.get("/_simulator/truth")
        response.raise_for_status()
        return dict(response.json())

    def pause(self) -> None:
        """Stop new arrivals; runs in flight still finish."""
        self.http.post("/_simulator/pause").raise_for_status()

    def answered_statuses(self) -> set[int]:
        """Return the status codes the Conduit endpoints answered with so far."""
        response = self.http.get("/_simulator/requests")
        response.raise_for_status()
        return {row["status"] for row in response.json()["by_endpoint"]}

    def agent_ids(self) -> list[str]:
        """List the agents through the Conduit API, as a user configuring the exporter would."""
        response = self.http.get("/v1/agents", headers={"Authorization": f"Bearer {TOKEN}"})
        response.raise_for_status()
        return [agent["id"] for agent in response.json()["data"]]


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[Simulator]:
    """Run the fake Conduit API as a process; stop it afterwards."""
    with Simulator.running(SIMULATOR_ARGS, tmp_path) as simulator:
        yield simulator


def write_config(
    path: Path, *, listen: str, simulator_url: str, otlp_url: str, agents: list[str]
) -> Path:
    """Write the exporter's YAML config; the token comes from `${E2E_TOKEN}`."""
    config = {
        "listen": listen,
        "poll_interval": f"{POLL_INTERVAL_S}s",
        "lookback": "1h",
        "state": {"path": str(path.parent / "state.db")},
        "traces": {
            "exporter": "otlp",
            "endpoint": otlp_url,
            "protocol": "http/protobuf",
        },
        "sources": [
            {
                "name": SOURCE,
                "platform": "conduit",
                "base_url": simulator_url,
                "token": "${E2E_TOKEN}",
                "agents": agents,
                "max_requests_per_minute": 0,  # a 0.5 s poll needs more than Conduit allows
            }
        ],
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def start_exporter(name: str, config: Path, workdir: Path) -> CliProcess:
    """Start `agent-runs-exporter run` on `config`, logging JSON to `<name>.*.log`."""
    args = ["run", "--config", str(config), "--log-format", "json"]
    return CliProcess.start(name, args, workdir, env={"E2E_TOKEN": TOKEN})


def wait_for_answer(http: httpx.Client, exporter: CliProcess, path: str) -> httpx.Response:
    """Poll `path` until it answers 200 (bounded) and return that response."""

    def answer() -> httpx.Response | None:
        assert exporter.returncode is None, exporter.describe()
        try:
            response = http.get(path)
        except httpx.TransportError:
            return None
        return response if response.status_code == 200 else None

    try:
        return wait_until(answer, timeout=READY_TIMEOUT_S, interval=0.05, what=path)
    except TimeoutError as exc:
        raise AssertionError(f"{exporter.name}: {exc}\n{exporter.describe()}") from None


def wait_ready(http: httpx.Client, exporter: CliProcess) -> None:
    """Wait until /readyz answers 200: the first poll cycle of every source succeeded."""
    wait_for_answer(http, exporter, "/readyz")


def scrape(http: httpx.Client) -> str:
    """Return the /metrics exposition text."""
    response = http.get("/metrics")
    response.raise_for_status()
    return response.text


def exported_counts(exposition: str) -> Counter[AgentStatus]:
    """Sum `agent_runs_total` of our source per (agent_id, status), zeros left out."""
    counts: Counter[AgentStatus] = Counter()
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == "agent_runs_total" and sample.labels["source"] == SOURCE:
                assert sample.value == int(sample.value), sample
                counts[(sample.labels["agent_id"], sample.labels["status"])] += int(sample.value)
    return +counts


def _epoch(stamp: str) -> float:
    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def terminal_runs(truth: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the truth's terminal runs created within the exporter's lookback."""
    floor = _epoch(truth["now"]) - LOOKBACK_S
    return [
        run
        for run in truth["runs"]
        if run["status"] in TERMINAL and _epoch(run["created_at"]) >= floor
    ]


def truth_counts(truth: dict[str, Any]) -> Counter[AgentStatus]:
    """Count the truth's terminal runs in the lookback per (agent_id, status)."""
    return Counter((run["agent_id"], run["status"]) for run in terminal_runs(truth))


def expected_trace_id(run: dict[str, Any]) -> str:
    """Return the trace id the exporter must give a truth run's spans."""
    return ids.run_trace_id(SOURCE, run["id"], run["trace_id"])


def all_finished(simulator: Simulator) -> dict[str, Any] | None:
    """Return the truth once no run is in flight, else None."""
    truth = simulator.truth()
    return truth if all(run["status"] in TERMINAL for run in truth["runs"]) else None


def settle(http: httpx.Client, expected: Counter[AgentStatus]) -> Counter[AgentStatus]:
    """Scrape until the exported counts equal `expected` or the timeout; return the last ones."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    counts = exported_counts(scrape(http))
    while counts != expected and time.monotonic() < deadline:
        time.sleep(POLL_INTERVAL_S)
        counts = exported_counts(scrape(http))
    return counts


def roots_by_trace(spans: list[SpanRecord]) -> dict[str, list[SpanRecord]]:
    """Group the root `invoke_agent` spans (no parent) by trace id."""
    roots: dict[str, list[SpanRecord]] = defaultdict(list)
    for span in spans:
        if span.parent_span_id is None and span.name.startswith("invoke_agent"):
            roots[span.trace_id].append(span)
    return roots


def covers(spans: list[SpanRecord], traces: set[str]) -> bool:
    """Say whether every trace in `traces` has received its root span."""
    return traces <= roots_by_trace(spans).keys()


def check_spans(spans: list[SpanRecord], runs: list[dict[str, Any]]) -> None:
    """Assert one root span per run, under its trace id, with one child per tool step."""
    by_trace = {expected_trace_id(run): run for run in runs}
    assert len(by_trace) == len(runs), "two runs share a trace id"
    roots = roots_by_trace(spans)
    missing = sorted(run["id"] for trace, run in by_trace.items() if trace not in roots)
    assert not missing, f"{len(missing)} of {len(runs)} terminal runs have no root span"
    unexpected = sorted(roots.keys() - by_trace.keys())
    assert not unexpected, f"{len(unexpected)} root spans belong to no terminal run"
    for trace, run in by_trace.items():
        root_ids = {span.span_id for span in roots[trace]}
        assert root_ids == {ids.span_id(SOURCE, run["id"], "root")}, (run["id"], root_ids)
        assert {span.attributes.get("agent_run.id") for span in roots[trace]} == {run["id"]}
    children: dict[str, set[str]] = defaultdict(set)
    for span in spans:
        assert span.trace_id in by_trace, f"span {span.name} in unknown trace {span.trace_id}"
        if span.parent_span_id is not None:
            assert span.name.startswith("execute_tool"), span
            assert span.parent_span_id == roots[span.trace_id][0].span_id, span
            children[span.trace_id].add(span.span_id)
    wrong = {
        run["id"]: (len(children[trace]), run["tool_steps"])
        for trace, run in by_trace.items()
        if len(children[trace]) != run["tool_steps"]
    }
    assert not wrong, f"tool spans (received, expected) differ for {len(wrong)} runs: {wrong}"


def check_logs(exporters: list[CliProcess], metrics_text: str) -> None:
    """Assert JSON log lines, no errors, and the token nowhere in logs or metrics."""
    assert TOKEN not in metrics_text
    for exporter in exporters:
        assert TOKEN not in exporter.stdout() + exporter.stderr(), exporter.name
        for line in filter(None, exporter.stderr().splitlines()):
            record = json.loads(line)
            assert record["level"] not in ("ERROR", "CRITICAL"), (exporter.name, record)


def configure(workdir: Path, port: int, simulator: Simulator, receiver: OtlpReceiver) -> Path:
    """Write the exporter's config for the simulator's agents and check it with `check-config`."""
    agents = simulator.agent_ids()
    assert sorted(agents) == sorted(agent["id"] for agent in simulator.truth()["agents"])
    config = write_config(
        workdir / "config.yaml",
        listen=f"127.0.0.1:{port}",
        simulator_url=simulator.url,
        otlp_url=receiver.url,
        agents=agents,
    )
    checked = run_cli(["check-config", "--config", str(config)], workdir, {"E2E_TOKEN": TOKEN})
    assert checked.returncode == 0, checked.stderr
    assert TOKEN not in checked.stdout + checked.stderr
    return config


def run_then_stop(
    name: str, config: Path, http: httpx.Client, seconds: float
) -> tuple[CliProcess, Counter[AgentStatus]]:
    """Run an exporter `seconds` past readiness, scrape it, stop it with SIGTERM (exit code 0)."""
    with start_exporter(name, config, config.parent) as exporter:
        wait_ready(http, exporter)
        time.sleep(seconds)
        counts = exported_counts(scrape(http))
        assert exporter.stop() == 0, exporter.describe()
    assert sum(counts.values()) > 0, exporter.describe()
    return exporter, counts


def pause_until_finished(simulator: Simulator) -> dict[str, Any]:
    """Pause arrivals and return the ground truth once every run has finished."""
    simulator.pause()
    return wait_until(
        lambda: all_finished(simulator),
        timeout=FINISH_TIMEOUT_S,
        interval=POLL_INTERVAL_S,
        what="every simulated run to finish",
    )


def check_counts(http: httpx.Client, truth: dict[str, Any], exporter: CliProcess) -> str:
    """Assert the exported run counts settle on the truth's and stay; return the exposition."""
    expected = truth_counts(truth)
    counts = settle(http, expected)
    assert counts == expected, exporter.describe()
    assert sum(counts.values()) == len(terminal_runs(truth)) == len(truth["runs"])
    time.sleep(3 * POLL_INTERVAL_S)
    exposition = scrape(http)
    assert exported_counts(exposition) == expected, "counts moved after settling"
    return exposition


def wait_for_roots(receiver: OtlpReceiver, runs: list[dict[str, Any]]) -> None:
    """Wait (bounded) until every run's root span arrived; `check_spans` names what is missing."""
    traces = {expected_trace_id(run) for run in runs}
    with contextlib.suppress(TimeoutError):
        receiver.wait_for(lambda spans: covers(spans, traces), SPANS_TIMEOUT_S)


def test_counts_and_spans_match_the_truth_across_a_restart(
    tmp_path: Path, simulator: Simulator, otlp_receiver: OtlpReceiver
) -> None:
    """Count every terminal run once and trace it once, with a stop and restart in between."""
    port = free_port()
    config = configure(tmp_path, port, simulator, otlp_receiver)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=HTTP_TIMEOUT_S) as http:
        first, before_stop = run_then_stop("exporter-1", config, http, FIRST_RUN_S)
        finished_at_stop = len(terminal_runs(simulator.truth()))
        time.sleep(DOWNTIME_S)  # runs keep arriving and finishing while no exporter watches
        finished_at_restart = len(terminal_runs(simulator.truth()))
        assert finished_at_restart > finished_at_stop, "no run finished during the downtime"

        with start_exporter("exporter-2", config, tmp_path) as second:
            # Scraped as soon as it serves, most likely before its first poll: restored counters.
            restored = exported_counts(wait_for_answer(http, second, "/metrics").text)
            assert not before_stop - restored, "a counter went down across the restart"
            wait_ready(http, second)
            time.sleep(SECOND_RUN_S)
            truth = pause_until_finished(simulator)
            exposition = check_counts(http, truth, second)
            wait_for_roots(otlp_receiver, terminal_runs(truth))
            assert second.stop() == 0, second.describe()  # flushes the last tool spans

    check_spans(otlp_receiver.spans(), terminal_runs(truth))
    assert simulator.answered_statuses() == {200}, "refused requests: token or rate limit?"
    check_logs([first, second], exposition)
