"""Chaos, as processes: a faulty upstream and an exporter SIGKILLed over and over.

The simulator answers 10% of requests with a 5xx, 5% with a 429 and `Retry-After`, 2% too late
for the client's timeout and 1% with a truncated body, and keeps Conduit's 120 requests/minute
quota. `agent-runs-exporter run` (default request budget: 100/minute) is SIGKILLed at seeded
random moments at least 20 times, each time restarted on the same state file and span file. Then
arrivals stop, one last exporter runs undisturbed, and against the simulator's ground truth:

- every terminal run within lookback is counted exactly once in `agent_runs_total`;
- every one has its root span under its trace id, and its tool spans; a span written twice (a run
  re-sent after a kill) is identical both times;
- no clock minute saw more requests than the budget (the simulator counts them as they arrive).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import random
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from exporter.sinks.traces import ids
from tests.e2e.otlp_receiver import SpanRecord, parse_json_request, records_from_request
from tests.e2e.processes import CliProcess, free_port, wait_until
from tests.e2e.test_end_to_end import (
    SOURCE,
    TOKEN,
    Simulator,
    expected_trace_id,
    exported_counts,
    pause_until_finished,
    start_exporter,
    terminal_runs,
    truth_counts,
)

pytestmark = pytest.mark.e2e

SEED = 23
BUDGET = 100  # requests per minute: the Conduit default of max_requests_per_minute
KILLS = 21
LIFETIME_S = (0.5, 4.5)  # how long each exporter lives before its SIGKILL
SIMULATOR_ARGS = [
    "--seed", str(SEED),
    "--agents", "5",
    "--rate", "0.06",  # new runs per second per agent
    "--duration-scale", "0.1",  # runs last ~0.5 s, so all finish soon after a pause
    "--history", "60",
    "--error-ratio", "0.10",
    "--throttle-ratio", "0.05",
    "--retry-after", "1",
    "--slow-ratio", "0.02",
    "--slow-seconds", "2.5",  # past the exporter's 1 s request timeout
    "--malformed-ratio", "0.01",
    "--token", TOKEN,
]  # fmt: skip
SETTLE_TIMEOUT_S = 75.0


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[Simulator]:
    """Run the faulty fake Conduit API as a process; stop it afterwards."""
    with Simulator.running(SIMULATOR_ARGS, tmp_path) as simulator:
        yield simulator


def write_config(workdir: Path, port: int, simulator: Simulator) -> Path:
    """Write the exporter's config: file spans, 1 s request timeout, the default budget."""
    agents = [agent["id"] for agent in simulator.truth()["agents"]]  # uncounted, unlike /v1/agents
    config = {
        "listen": f"127.0.0.1:{port}",
        "poll_interval": "1s",
        "lookback": "1h",
        "state": {"path": str(workdir / "state.db")},
        "traces": {"exporter": "file", "file": str(workdir / "spans.jsonl")},
        "sources": [
            {
                "name": SOURCE,
                "platform": "conduit",
                "base_url": simulator.url,
                "token": "${E2E_TOKEN}",
                "agents": agents,
                "request_timeout": "1s",
            }
        ],
    }
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def kill_repeatedly(config: Path, workdir: Path) -> list[CliProcess]:
    """Start the exporter and SIGKILL it at seeded random moments, KILLS times."""
    rng = random.Random(SEED)
    killed = []
    for number in range(KILLS):
        exporter = start_exporter(f"killed-{number:02d}", config, workdir)
        time.sleep(rng.uniform(*LIFETIME_S))
        assert exporter.returncode is None, exporter.describe()  # it never dies by itself
        exporter.kill()
        killed.append(exporter)
    return killed


def read_spans(path: Path) -> list[SpanRecord]:
    """Read the span file, skipping a line torn by a kill (its run was never marked done)."""
    records: list[SpanRecord] = []
    if not path.exists():
        return records
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            document = json.loads(line)
        except ValueError:
            continue
        records.extend(records_from_request(parse_json_request(document)))
    return records


def roots_cover(path: Path, runs: list[dict[str, Any]]) -> bool:
    """Say whether every run's root span is in the file."""
    roots = {s.trace_id for s in read_spans(path) if s.parent_span_id is None}
    return {expected_trace_id(run) for run in runs} <= roots


def scrape_counts(http: httpx.Client) -> Any:
    try:
        return exported_counts(http.get("/metrics").text)
    except httpx.TransportError:
        return None


def check_spans(spans: list[SpanRecord], runs: list[dict[str, Any]]) -> int:
    """Assert each run's root and tool spans, duplicates identical; return how many were resent."""
    by_id: dict[tuple[str, str], set[str]] = defaultdict(set)
    for span in spans:
        content = json.dumps(dataclasses.asdict(span), sort_keys=True, default=str)
        by_id[(span.trace_id, span.span_id)].add(content)
    differing = [key for key, versions in by_id.items() if len(versions) > 1]
    assert not differing, f"spans re-sent with different content: {differing[:3]}"
    for run in runs:
        trace = expected_trace_id(run)
        in_trace = [key for key in by_id if key[0] == trace]
        root = ids.span_id(SOURCE, run["id"], "root")
        assert (trace, root) in by_id, f"run {run['id']} has no root span"
        assert len(in_trace) == 1 + run["tool_steps"], (run["id"], len(in_trace), run)
    known = {expected_trace_id(run) for run in runs}
    assert {trace for trace, _ in by_id} <= known, "spans of runs the truth does not have"
    return len(spans) - len(by_id)


def test_sigkills_and_faults_lose_nothing_count_nothing_twice_and_keep_the_budget(
    tmp_path: Path, simulator: Simulator
) -> None:
    started = time.monotonic()
    port = free_port()
    config = write_config(tmp_path, port, simulator)
    killed = kill_repeatedly(config, tmp_path)
    truth = pause_until_finished(simulator)
    runs = terminal_runs(truth)
    expected = truth_counts(truth)
    spans_file = tmp_path / "spans.jsonl"

    with (
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as http,
        start_exporter("final", config, tmp_path) as final,
    ):
        with contextlib.suppress(TimeoutError):  # the assertions below say what is missing
            wait_until(
                lambda: scrape_counts(http) == expected and roots_cover(spans_file, runs),
                timeout=SETTLE_TIMEOUT_S,
                interval=0.5,
                what="every terminal run counted and traced",
            )
        counts = scrape_counts(http)
        assert final.stop() == 0, final.describe()

    assert len(killed) >= 20
    assert counts == expected, final.describe()
    resent = check_spans(read_spans(spans_file), runs)
    per_minute = simulator.http.get("/_simulator/requests").json()["per_minute"]
    assert max(per_minute.values()) <= BUDGET, per_minute
    statuses = simulator.answered_statuses()
    assert {429, 200} <= statuses, statuses
    assert statuses & {500, 502, 503}, statuses
    print(  # the figures, for the record (pytest -s)
        f"chaos: {len(killed)} kills, {len(runs)} runs, {resent} spans re-sent, "
        f"max {max(per_minute.values())} requests/minute (budget {BUDGET}), "
        f"{time.monotonic() - started:.0f}s"
    )
