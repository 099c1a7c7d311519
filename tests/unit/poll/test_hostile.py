"""Hostile upstreams against the whole poll path: bounded series, bad items cost themselves only.

Each test puts a fake Conduit (httpx.MockTransport) in front of a real `Exporter` that polls it
with a fake clock, like the simulator's fault modes, but for attacks.
"""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import string
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.exposition import generate_latest

from exporter.app import Exporter
from exporter.config.models import load_settings
from exporter.errors import ConfigError, InvalidUrlError
from exporter.sinks.metrics.series import MAX_DISPOSITIONS_PER_AGENT
from tests.unit.fakeclock import START, FakeClock
from tests.unit.sourcekit import mock_client

Handler = Callable[[httpx.Request], httpx.Response]


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat().replace("+00:00", "Z")


def run_item(run_id: str, created: float, **fields: Any) -> dict[str, Any]:
    """Return a Conduit list item of a completed run."""
    item = {
        "id": run_id,
        "agent_id": "ag1",
        "status": "completed",
        "disposition": "resolved",
        "duration_ms": 1000,
        "created_at": iso(created),
        "completed_at": iso(created + 1),
    }
    return item | fields


def page(items: list[dict[str, Any]]) -> httpx.Response:
    return httpx.Response(200, json={"data": items, "has_more": False, "next_cursor": None})


class Hostile:
    """An exporter polling a fake Conduit whose answers a test chooses."""

    def __init__(self, tmp_path: Path, handler: Handler, **source: Any) -> None:
        self.tmp_path = tmp_path
        self.clock = FakeClock(START)
        self.handler = handler
        self.source = {"agents": ["ag1"]} | source
        self.exporter = self.start()

    def start(self) -> Exporter:
        config = {
            "listen": "127.0.0.1:0",
            "lookback": "1h",
            "state": {"path": str(self.tmp_path / "state.db")},
            "traces": {"exporter": "none"},
            "sources": [
                {
                    "name": "evil",
                    "platform": "conduit",
                    "base_url": "https://evil.test",
                    "token": "tok-hostile-test",
                    "max_requests_per_minute": 0,
                }
                | self.source
            ],
        }
        path = self.tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(config))
        settings = load_settings(path, environ={})
        transport = httpx.MockTransport(self.handler)
        return Exporter(settings, clock=self.clock, transport=transport, environ={})

    def poll(self, times: int = 1) -> None:
        async def go() -> None:
            for _ in range(times):
                self.clock.now += 5
                for runtime in self.exporter.runtimes:
                    await self.exporter.poller.poll_once(runtime)

        asyncio.run(go())

    def restart(self) -> None:
        self.close()
        self.exporter = self.start()

    def close(self) -> None:
        asyncio.run(self.exporter.close())

    def series(self, metric: str) -> list[dict[str, str]]:
        return [
            sample.labels
            for family in self.exporter.registry.collect()
            for sample in family.samples
            if sample.name == metric
        ]

    def sample(self, name: str, **labels: str) -> float:
        value = self.exporter.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value


def random_text(rng: random.Random, size: int) -> str:
    return "".join(rng.choice(string.ascii_letters + "\x00\x01\n\x7f") for _ in range(size))


def test_a_flood_of_new_agent_ids_and_dispositions_keeps_series_bounded(tmp_path: Path) -> None:
    rng = random.Random(14)
    polls = 0

    def flood(_request: httpx.Request) -> httpx.Response:
        nonlocal polls
        polls += 1
        now = START + 5 * polls
        return page(
            [
                run_item(
                    f"r{polls}-{index}",
                    now - index,
                    agent_id=random_text(rng, 210),
                    disposition=rng.choice(
                        [f"disp-{polls}-{index}", random_text(rng, 20), "x\x00y"]
                    ),
                )
                for index in range(100)
            ]
        )

    hostile = Hostile(tmp_path, flood)
    hostile.poll(10)
    runs = hostile.series("agent_runs_total")
    assert sum(hostile.sample("agent_runs_total", **labels) for labels in runs) == 1000
    assert {labels["agent_id"] for labels in runs} == {"ag1"}  # the agent polled, never the item's
    dispositions = {labels["disposition"] for labels in runs}
    assert len(dispositions) <= MAX_DISPOSITIONS_PER_AGENT + 2  # + none and other
    assert "other" in dispositions
    assert len(runs) <= 2 * (MAX_DISPOSITIONS_PER_AGENT + 2)  # completed and failed
    exposition = generate_latest(hostile.exporter.registry)
    assert b"\x00" not in exposition
    assert b"\x01" not in exposition
    hostile.restart()  # the cap holds across a restart: restored values count against it
    hostile.poll(5)
    assert len(hostile.series("agent_runs_total")) == len(runs)
    hostile.close()


def test_discovered_agent_names_lose_their_control_characters(tmp_path: Path) -> None:
    def upstream(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/agents":
            agents = [{"id": "ag1", "name": "Con\x00cierge\n\x1b[31m"}]
            return httpx.Response(200, json={"data": agents, "has_more": False})
        return page([])

    hostile = Hostile(tmp_path, upstream, agents=None)
    hostile.poll()
    infos = hostile.series("agent_runs_exporter_agent_info")
    assert [labels["agent_name"] for labels in infos] == ["Concierge[31m"]
    hostile.close()


class Growing:
    """An upstream where 10 runs end between polls; it lists all of them, newest first."""

    def __init__(self) -> None:
        self.clock: FakeClock | None = None
        self.items: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert self.clock is not None
        if not request.url.path.endswith("/runs"):  # the agent's name
            return httpx.Response(200, json={"data": {"id": "ag1", "name": "Growing"}})
        now = self.clock()
        start = len(self.items)
        self.items[:0] = [run_item(f"g{start + i}", now - 1 - i / 100) for i in range(10)][::-1]
        return page(list(self.items))


def counted(hostile: Hostile) -> float:
    series = hostile.series("agent_runs_total")
    return sum(hostile.sample("agent_runs_total", **labels) for labels in series)


def test_counters_never_go_back_when_the_state_cannot_be_written(tmp_path: Path) -> None:
    upstream = Growing()
    hostile = Hostile(tmp_path, upstream)
    upstream.clock = hostile.clock
    seen = []
    hostile.poll(2)
    seen.append(counted(hostile))
    hostile.exporter.store._db.execute("PRAGMA query_only = 1")  # every write now fails
    hostile.poll(3)
    seen.append(counted(hostile))
    assert hostile.exporter.store.problem is not None
    hostile.restart()  # a kill while the disk is full, then a start with room again
    seen.append(counted(hostile))
    hostile.poll()
    seen.append(counted(hostile))
    assert seen == [20, 20, 20, 60]  # held while uncommitted, then everything, never less
    assert len(upstream.items) == 60
    hostile.close()


def test_held_counts_are_published_by_the_next_commit_that_works(tmp_path: Path) -> None:
    upstream = Growing()
    hostile = Hostile(tmp_path, upstream)
    upstream.clock = hostile.clock
    hostile.poll()
    db = hostile.exporter.store._db
    db.execute("PRAGMA query_only = 1")
    hostile.poll(2)
    assert counted(hostile) == 10
    db.execute("PRAGMA query_only = 0")
    hostile.poll()
    assert counted(hostile) == 40
    assert hostile.exporter.store.problem is None
    hostile.restart()
    assert counted(hostile) == 40
    hostile.close()


def skipped(hostile: Hostile, reason: str) -> float:
    return hostile.sample("agent_runs_exporter_runs_skipped_total", source="evil", reason=reason)


def errors(hostile: Hostile, reason: str) -> float:
    return hostile.sample("agent_runs_exporter_poll_errors_total", source="evil", reason=reason)


def test_a_bad_discovered_agent_id_costs_that_agent_only(tmp_path: Path) -> None:
    bad_ids = ["ag\x00nul", "ag\nline", "../ag1", "ag#frag"]
    listed: list[str] = []

    def upstream(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/v1/agents":
            agents = [{"id": agent, "name": agent} for agent in ["ag1", *bad_ids]]
            return httpx.Response(200, json={"data": agents, "has_more": False})
        listed.append(path)
        if path == "/v1/agents/ag1/runs":
            return page([run_item("r1", START), run_item("r2", START + 1)])
        return httpx.Response(200, json={"data": {"id": "ag1", "name": "Good"}})

    hostile = Hostile(tmp_path, upstream, agents=None, discovery_interval="5s")
    hostile.poll(3)
    assert counted(hostile) == 2
    assert skipped(hostile, "invalid_id") == 4
    assert errors(hostile, "internal") == 0
    assert hostile.sample("agent_runs_exporter_up", source="evil") == 1
    assert set(listed) == {"/v1/agents/ag1/runs"}  # nothing asked of a bad id
    hostile.close()


def test_a_run_id_no_url_can_hold_is_skipped_and_counted_once(tmp_path: Path) -> None:
    def upstream(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/runs"):
            bad = [run_item(f"r-bad{c}", START) for c in ("\x00", "\n", "/", "?", "#")]
            return page([run_item("r-good", START), *bad])
        return httpx.Response(200, json={"data": {"id": "ag1", "name": "Good"}})

    hostile = Hostile(tmp_path, upstream)
    hostile.poll(3)
    assert counted(hostile) == 1
    assert skipped(hostile, "invalid_id") == 5
    assert errors(hostile, "internal") == 0
    hostile.close()


def test_a_request_no_url_can_hold_is_an_error_of_its_own() -> None:
    client = mock_client(lambda _request: httpx.Response(200, json={}))
    with pytest.raises(InvalidUrlError) as raised:
        asyncio.run(client.get_json("/v1/agents/a\x00b/runs", endpoint="list_runs", params={}))
    assert raised.value.reason == "invalid_id"
    assert "\\x00" in str(raised.value)


@pytest.mark.parametrize("agent", ["a\x00b", "a/b", "a?b"])
def test_a_configured_agent_id_no_url_can_hold_is_a_config_problem(
    tmp_path: Path, agent: str
) -> None:
    with pytest.raises(ConfigError, match="cannot be part of a URL"):
        Hostile(tmp_path, lambda _request: page([]), agents=[agent])


class Drip(httpx.AsyncByteStream):
    """A body that sends one byte at a time, each well under any read timeout, for `bytes`."""

    def __init__(self, count: int, gap_s: float) -> None:
        self.count = count
        self.gap_s = gap_s

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.count):
            yield b" "
            await asyncio.sleep(self.gap_s)


def test_a_dripping_body_is_a_timeout_of_that_agent_alone(tmp_path: Path) -> None:
    def upstream(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/v1/agents/ag2/runs":
            return httpx.Response(200, stream=Drip(count=200, gap_s=0.05))  # 10 s if read whole
        if path == "/v1/agents/ag1/runs":
            return page([run_item("r1", START), run_item("r2", START + 1)])
        return httpx.Response(200, json={"data": {"id": "ag1", "name": "Good"}})

    hostile = Hostile(tmp_path, upstream, agents=["ag1", "ag2"], request_timeout=0.2)
    hostile.poll()
    assert counted(hostile) == 2  # the other agent proceeds
    assert errors(hostile, "timeout") == 1  # the drip ends as that agent's timeout
    assert (
        hostile.sample(
            "agent_runs_exporter_api_requests_total",
            source="evil",
            endpoint="list_runs",
            code="timeout",
        )
        == 3
    )  # every attempt cut at the deadline
    hostile.close()


def test_bad_state_rows_are_dropped_and_counted_not_a_crash_loop(tmp_path: Path) -> None:
    upstream = Growing()
    hostile = Hostile(tmp_path, upstream)
    upstream.clock = hostile.clock
    hostile.poll(2)
    hostile.close()
    with sqlite3.connect(tmp_path / "state.db") as db:
        db.execute("UPDATE runs SET status='bogus' WHERE run_id='g0'")
        bad_payload = ("evil", "p1", "ag1", START, "completed", 1, 1, 0, "{not json")
        db.execute("INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?)", bad_payload)
        db.execute("INSERT INTO cursors VALUES ('evil', 'ag9', 'not a time')")
        db.execute("INSERT INTO series VALUES ('not json', '{}')")
        db.execute("INSERT INTO series VALUES ('[\"agent_runs_total\", []]', 'not json')")
    hostile.exporter = hostile.start()  # no traceback, no exit
    assert hostile.sample("agent_runs_exporter_state_rows_dropped_total") == 5
    assert counted(hostile) == 20  # the good series survive
    hostile.poll()
    assert counted(hostile) == 31  # 10 new runs, and g0 again: its row was the bad one
    assert hostile.exporter.store.problem is None
    hostile.close()


def test_a_state_file_of_the_wrong_shape_is_moved_aside(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "state.db") as db:
        db.execute("CREATE TABLE runs (source TEXT, something_else TEXT)")
        db.execute("INSERT INTO runs VALUES ('a', 'b')")
    hostile = Hostile(tmp_path, Growing())
    assert hostile.sample("agent_runs_exporter_state_resets_total") == 1
    assert list(tmp_path.glob("state.db.corrupt-*"))
    hostile.close()


def test_an_out_of_range_number_drops_the_field_not_the_run(tmp_path: Path) -> None:
    def upstream(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/runs"):
            items = [
                run_item("r-huge", START, total_cost=1e300),
                run_item("r-neg", START + 1, duration_ms=-5, total_cost=0.5),
                run_item("r-nan", START + 2, token_usage={"input": float("nan")}),
                run_item("r-ok", START + 3, total_cost=0.25),
            ]
            body = {"data": items, "has_more": False}
            return httpx.Response(200, content=json.dumps(body))  # NaN as Python writes it
        return httpx.Response(200, json={"data": {"id": "ag1", "name": "Good"}})

    hostile = Hostile(tmp_path, upstream)
    hostile.poll()
    assert counted(hostile) == 4  # every run is counted
    labels = {"source": "evil", "platform": "conduit", "agent_id": "ag1"}
    assert hostile.sample("agent_run_cost_usd_sum", **labels) == 0.75  # the sum still sees cents
    dropped = "agent_runs_exporter_fields_invalid_total"
    assert hostile.sample(dropped, source="evil", field="total_cost") == 1
    assert hostile.sample(dropped, source="evil", field="duration_ms") == 1
    assert hostile.sample(dropped, source="evil", field="token_usage.input") == 1
    assert skipped(hostile, "malformed_item") == 0
    hostile.close()


def test_retry_after_pauses_the_whole_source_when_its_budget_is_off(tmp_path: Path) -> None:
    asked: list[str] = []

    def upstream(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        if request.url.path == "/v1/agents/ag1/runs":
            return httpx.Response(429, headers={"Retry-After": "120"}, json={"error": "slow"})
        if request.url.path.endswith("/runs"):
            return page([])
        return httpx.Response(200, json={"data": {"id": "ag1", "name": "Good"}})

    hostile = Hostile(tmp_path, upstream, agents=["ag1", "ag2"])  # max_requests_per_minute: 0
    hostile.poll()
    assert asked.count("/v1/agents/ag1/runs") == 1  # Retry-After 120 s is past the deadline
    before = len(asked)
    hostile.poll(10)  # 50 s later: still paused
    assert len(asked) == before  # no request at all: 740 429s in 45 s before
    assert errors(hostile, "rate_limited") == 1  # the one 429; the waits are deferrals, not errors
    deferred = "agent_runs_exporter_polls_deferred_total"
    assert hostile.sample(deferred, source="evil", reason="retry_after") >= 10
    hostile.clock.now += 120
    hostile.poll()
    assert len(asked) > before  # the pause ends
    hostile.close()
