"""End to end against a real ElizaOS 1.7.2 server, not a fake built from its docs.

The test drives the agent through the server's public messaging API (normal messages and messages
whose model call fails), then runs `agent-runs-exporter run` on it and compares what the exporter
counted and traced with what the server itself recorded: every run the server ended is counted
exactly once, with the status the server means (1.7.2 records a failed run `completed`, the error in
its detail's `RUN_ENDED` event), its duration is the server's, and it has exactly one root span.

The last test leaves runs the server never ends (replies superseded by a newer message) and runs it
ends only in their detail (`muted`, `self`), then polls the server with the exporter in process on
a clock it can move past the stuck threshold (no waiting two minutes): requests per poll with the
stuck runs present, with the stuck rule and without it (the logic before it), and what stays in
progress. It runs last: its runs end `unknown` minutes later, which the other tests do not expect.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from exporter.app import Exporter
from exporter.config.models import load_settings
from exporter.sources.elizaos import ElizaSource
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


def write_config(
    path: Path, eliza: ElizaServer, listen: str, *, traces: bool = True, **source: Any
) -> Path:
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
            | source
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


N_STUCK = 3
PAGE_SIZE = 5  # ~30 runs on 6 pages: the shape of the busy agent (118 runs, 7 pages)
STEADY_POLLS = 20
STEP_S = 30.0  # the steady polls span 10 minutes of the exporter's clock


class MovableClock:
    """The wall clock plus an offset the test moves: minutes pass without waiting for them."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@dataclass
class Figures:
    """What one exporter made of the server: its counts and its requests, poll by poll."""

    counted: Counter[str]
    in_progress: int
    first_poll: Counter[str]  # requests by endpoint
    steady: list[Counter[str]]  # requests by endpoint of each steady poll

    def per_poll(self, endpoint: str | None = None) -> float:
        """Return the steady polls' mean requests (of one endpoint, or all)."""
        total = sum(n for poll in self.steady for e, n in poll.items() if endpoint in (None, e))
        return total / len(self.steady)


def leave_stuck_and_quietly_ended_runs(eliza: ElizaServer) -> None:
    """Leave N_STUCK runs that never end, 2 that end `muted` and 1 `self`, then fresh runs."""
    for _ in range(N_STUCK):
        eliza.superseded(eliza.session())
    room = eliza.session()
    eliza.send(room, "please PLEASE_MUTE this room")
    eliza.send(room, "hello again")  # the agent muted the room: `muted`
    eliza.send(room, "anyone there?")
    eliza.send(eliza.session(user_id=eliza.agent_id), "a note to myself")  # `self`
    fresh = eliza.session()
    for text in ("hi", "how are you?", "tell me more", "ok", "great", "bye"):
        eliza.send(fresh, text)  # newer runs push the stuck ones down to older pages


def server_truth(eliza: ElizaServer) -> Counter[str]:
    """Count the server's runs as it means them: failed when RUN_ENDED carries an error, the end
    status of a run the list shows `started` from its detail (unknown), `in progress` if none."""
    found: Counter[str] = Counter()
    for run in eliza.runs():
        detail = eliza.detail(run["runId"])
        if run.get("endedAt") is not None:
            ended = [e for e in detail["events"] if e.get("type") == "RUN_ENDED"]
            failed = any((e.get("data") or {}).get("error") for e in ended)
            found["failed" if failed else str(run["status"])] += 1
        elif detail["summary"].get("status") == "started":
            found["in progress"] += 1
        else:
            found["unknown"] += 1
    return found


def measure(eliza: ElizaServer, workdir: Path) -> Figures:
    """Poll the real server with an in-process exporter: a first poll, one past the stuck
    threshold (120 s), then STEADY_POLLS polls STEP_S apart; return what it counted and sent."""
    workdir.mkdir()
    path = write_config(
        workdir / "config.yaml",
        eliza,
        "127.0.0.1:0",
        traces=False,
        page_size=PAGE_SIZE,
        max_requests_per_minute=0,
    )
    clock = MovableClock()
    exporter = Exporter(load_settings(path, environ={"E2E_TOKEN": TOKEN}), clock=clock, environ={})
    (runtime,) = exporter.runtimes

    async def poll() -> Counter[str]:
        before = requests(exporter)
        await exporter.poller.poll_once(runtime)
        return requests(exporter) - before

    async def go() -> Figures:
        first = await poll()
        clock.offset += 130.0  # every run left in flight is now stuck
        await poll()
        steady = []
        for _ in range(STEADY_POLLS):
            clock.offset += STEP_S
            steady.append(await poll())
        await runtime.source.aclose()
        return Figures(exported_counts(exporter), in_progress(exporter), first, steady)

    try:
        return asyncio.run(go())
    finally:
        exporter.store.close()


def requests(exporter: Exporter) -> Counter[str]:
    """Return the upstream requests sent so far, by endpoint."""
    found: Counter[str] = Counter()
    for family in exporter.registry.collect():
        for sample in family.samples:
            if sample.name == "agent_runs_exporter_api_requests_total":
                found[sample.labels["endpoint"]] += int(sample.value)
    return found


def exported_counts(exporter: Exporter) -> Counter[str]:
    found: Counter[str] = Counter()
    for family in exporter.registry.collect():
        for sample in family.samples:
            if sample.name == "agent_runs_total":
                found[sample.labels["status"]] += int(sample.value)
    return +found


def in_progress(exporter: Exporter) -> int:
    return int(
        sum(
            sample.value
            for family in exporter.registry.collect()
            for sample in family.samples
            if sample.name == "agent_runs_in_progress"
        )
    )


def test_stuck_runs_cost_one_list_request_per_poll_and_no_ended_run_stays_in_progress(
    eliza: ElizaServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    leave_stuck_and_quietly_ended_runs(eliza)
    truth = server_truth(eliza)
    assert (truth["in progress"], truth["unknown"]) == (N_STUCK, 3)
    with monkeypatch.context() as before_rule:  # the logic before the stuck rule
        before_rule.setattr(ElizaSource, "stuck_after_s", None)
        before = measure(eliza, tmp_path / "before")
    after = measure(eliza, tmp_path / "after")
    ended = +Counter({s: n for s, n in truth.items() if s != "in progress"})
    for name, fig in (("before", before), ("after", after)):
        print(
            f"real ElizaOS, {sum(truth.values())} runs ({dict(truth)}), {name} the stuck rule: "
            f"counted {dict(fig.counted)}, in progress {fig.in_progress}, first poll "
            f"{dict(fig.first_poll)}, steady {fig.per_poll():.2f} requests/poll "
            f"({fig.per_poll('list_runs'):.2f} list, {fig.per_poll('get_run'):.2f} detail)"
        )
    assert after.counted == ended  # muted and self as status="unknown", failures failed
    assert after.in_progress == N_STUCK  # only what the server never ended
    assert [poll["list_runs"] for poll in after.steady] == [1] * STEADY_POLLS
    # Stuck runs are re-checked on a backoff (1, 2, 4 minutes...), not every poll.
    assert after.per_poll("get_run") * STEADY_POLLS <= 3 * N_STUCK
    # Without the rule every poll pages back to the oldest stuck run and confirms each run the
    # list shows `started` on an older page through its detail.
    assert before.per_poll() > 3 * after.per_poll()
