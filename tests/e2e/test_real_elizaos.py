"""End to end against a real ElizaOS 1.7.2 server, not a fake built from its docs.

The test drives the agent through the server's public messaging API (normal messages and messages
whose model call fails), then runs `agent-runs-exporter run` on it and compares what the exporter
counted and traced with what the server itself recorded: every run the server ended is counted
exactly once, with the status the server means (1.7.2 records a failed run `completed`, the error in
its detail's `RUN_ENDED` event), its duration is the server's, and it has exactly one root span.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.elizaos_server import TOKEN, ElizaServer
from tests.e2e.otlp_receiver import read_span_file
from tests.e2e.processes import CliProcess, free_port, wait_until

pytestmark = pytest.mark.e2e

SOURCE = "eliza"
MESSAGES = ["hello", "what can you do?", "please FAIL_MODEL now", "thanks", "FAIL_MODEL again"]
TIMEOUT_S = 60.0


@pytest.fixture(scope="module")
def eliza(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Run one real ElizaOS server for this module's tests (it takes ~30 s to start)."""
    with ElizaServer.start(tmp_path_factory.mktemp("elizaos")) as server:
        yield server


def drive(eliza: ElizaServer) -> tuple[dict[str, dict[str, Any]], Counter[str]]:
    """Send MESSAGES in a new session; return every run the server ended, and their true statuses.

    The server is shared by the module's tests, so its truth holds the earlier tests' runs too:
    each test's exporter starts with fresh state and must count all of them.
    """
    before = len(ended_runs(eliza, 0) or {})
    session = eliza.session()
    for text in MESSAGES:
        eliza.send(session, text)
    truth = wait_until(
        lambda: ended_runs(eliza, before + len(MESSAGES)),
        timeout=TIMEOUT_S,
        what="the server's runs",
    )
    return truth, true_statuses(eliza, truth)


def run_exporter(
    eliza: ElizaServer, workdir: Path, truth: dict[str, Any], *, traces: bool
) -> dict[tuple[str, str], float]:
    """Run `agent-runs-exporter run` on the server until it counted (and traced) every run."""
    port = free_port()
    config = write_config(workdir / "config.yaml", eliza, f"127.0.0.1:{port}", traces=traces)
    args = ["run", "--config", str(config), "--log-format", "json"]
    url = f"http://127.0.0.1:{port}/metrics"
    with (
        CliProcess.start("exporter", args, workdir, env={"E2E_TOKEN": TOKEN}) as exporter,
        httpx.Client(timeout=5) as http,
    ):
        wait_until(
            lambda: _get(http, url) and counted(samples(http, url)) >= len(truth),
            timeout=TIMEOUT_S,
            interval=0.5,
            what=f"{len(truth)} runs counted",
        )
        if traces:
            wait_until(
                lambda: set(root_spans(workdir)) >= set(truth),
                timeout=TIMEOUT_S,
                interval=0.5,
                what="a root span for every run",
            )
        time.sleep(3.0)  # three more polls: nothing may be counted twice
        values = samples(http, url)
        assert exporter.stop() == 0, exporter.describe()
    return values


def ended_runs(eliza: ElizaServer, expected: int) -> dict[str, dict[str, Any]] | None:
    """Return the server's runs by id once at least `expected` have ended, else None."""
    runs = {run["runId"]: run for run in eliza.runs() if run.get("endedAt") is not None}
    return runs if len(runs) >= expected else None


def true_statuses(eliza: ElizaServer, runs: dict[str, dict[str, Any]]) -> Counter[str]:
    """Count the ended runs by what the server means: failed when RUN_ENDED carries an error."""
    found: Counter[str] = Counter()
    for run_id, run in runs.items():
        ended = [e for e in eliza.detail(run_id)["events"] if e.get("type") == "RUN_ENDED"]
        failed = any((e.get("data") or {}).get("error") for e in ended)
        found["failed" if failed else str(run["status"])] += 1
    return found


def by_status(values: dict[tuple[str, str], float]) -> Counter[str]:
    """Return `agent_runs_total` by status label (zero series left out)."""
    found = Counter({s: int(v) for (name, s), v in values.items() if name == "agent_runs_total"})
    return +found


def write_config(path: Path, eliza: ElizaServer, listen: str, *, traces: bool = True) -> Path:
    spans = {"exporter": "file", "file": str(path.parent / "spans.jsonl")}
    config = {
        "listen": listen,
        "poll_interval": "1s",
        "lookback": "1h",
        "state": {"path": str(path.parent / "state.db")},
        "traces": spans if traces else {"exporter": "none"},
        "sources": [
            {
                "name": SOURCE,
                "platform": "elizaos",
                "base_url": eliza.base_url,
                "token": "${E2E_TOKEN}",
                "agents": [eliza.agent_id],
            }
        ],
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def samples(http: httpx.Client, url: str) -> dict[tuple[str, str], float]:
    """Return {(sample name, status): value} summed over the source's series."""
    found: Counter[tuple[str, str]] = Counter()
    for family in text_string_to_metric_families(http.get(url).text):
        for sample in family.samples:
            if sample.labels.get("source") == SOURCE:
                found[(sample.name, sample.labels.get("status", ""))] += sample.value
    return dict(found)


def counted(values: dict[tuple[str, str], float]) -> int:
    return int(sum(v for (name, _), v in values.items() if name == "agent_runs_total"))


def test_every_run_the_real_server_ended_is_counted_once_and_traced(
    eliza: ElizaServer, tmp_path: Path
) -> None:
    truth, statuses = drive(eliza)
    assert statuses["failed"] >= 2  # the two FAIL_MODEL messages, listed `completed`
    values = run_exporter(eliza, tmp_path, truth, traces=True)
    assert counted(values) == len(truth)
    print(f"real ElizaOS: {len(truth)} runs, server {dict(statuses)}, counted {by_status(values)}")
    assert by_status(values) == statuses
    server_seconds = sum((run["endedAt"] - run["startedAt"]) / 1000 for run in truth.values())
    exported_seconds = sum(
        v for (name, _), v in values.items() if name == "agent_run_duration_seconds_sum"
    )
    assert exported_seconds == pytest.approx(server_seconds, abs=0.01)
    roots = root_spans(tmp_path)
    assert set(roots) == set(truth)
    assert set(roots.values()) == {1}


def root_spans(workdir: Path) -> Counter[str]:
    """Count the root spans in the exporter's span file, by run id."""
    path = workdir / "spans.jsonl"
    spans = read_span_file(path) if path.exists() else []
    return Counter(str(s.attributes["agent_run.id"]) for s in spans if s.parent_span_id is None)


def _get(http: httpx.Client, url: str) -> bool:
    try:
        return http.get(url).status_code == 200
    except httpx.TransportError:  # not listening yet
        return False


def test_with_traces_off_failures_are_still_counted_failed(
    eliza: ElizaServer, tmp_path: Path
) -> None:
    truth, statuses = drive(eliza)
    values = run_exporter(eliza, tmp_path, truth, traces=False)
    assert counted(values) == len(truth)
    assert by_status(values) == statuses
    assert statuses["failed"] >= 2
