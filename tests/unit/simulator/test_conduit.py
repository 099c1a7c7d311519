"""Tests for the fake Conduit app, driven in-process through httpx.ASGITransport."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from collections import Counter
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from exporter.simulator import catalogue
from exporter.simulator.conduit import create_app
from exporter.simulator.world import SimulatorSettings, World
from exporter.web.server import serve_in_loop
from tests.unit.fakeclock import FakeClock

START = 1_775_186_055.0  # 2026-04-03T03:14:15Z
TERMINAL = ("completed", "failed")
ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
LIST_FIELDS = {
    "id",
    "run_id",
    "agent_id",
    "workspace_id",
    "status",
    "disposition",
    "contact_id",
    "conversation_id",
    "trigger_id",
    "error",
    "duration_ms",
    "token_usage",
    "total_cost",
    "trace_id",
    "created_at",
    "completed_at",
}
DETAIL_FIELDS = LIST_FIELDS | {
    "session_id",
    "disposition_reason",
    "trigger_event_id",
    "response",
    "reflection",
    "tool_trace",
}


class Sim:
    """A world, its app and a fake clock, with one-call synchronous requests."""

    def __init__(self, **knobs: Any) -> None:
        knobs.setdefault("rate_limit", None)
        self.clock = FakeClock(START)
        self.world = World(SimulatorSettings(**knobs), self.clock)
        self.app: Starlette = create_app(self.world)
        self.agent_id = self.world.agents[0].id

    def get(self, path: str, token: str | None = None, **params: Any) -> httpx.Response:
        return asyncio.run(self._send("GET", path, token, params=params))

    def statuses(self, path: str, count: int) -> list[int]:
        async def send_all() -> list[int]:
            return [(await self._send("GET", path, None)).status_code for _ in range(count)]

        return asyncio.run(send_all())

    def post(self, path: str, body: Any = None) -> httpx.Response:
        return asyncio.run(self._send("POST", path, None, json=body))

    async def _send(self, method: str, path: str, token: str | None, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        transport = httpx.ASGITransport(app=self.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
            return await client.request(method, path, headers=headers, **kw)

    def runs_path(self, agent_id: str | None = None) -> str:
        return f"/v1/agents/{agent_id or self.agent_id}/runs"

    def walk(self, limit: int, between_pages: float = 0.0, **params: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            query = dict(params, limit=limit) | ({"cursor": cursor} if cursor else {})
            body = self.get(self.runs_path(), **query).json()
            items.extend(body["data"])
            if not body["has_more"]:
                assert body["next_cursor"] is None
                return items
            cursor = body["next_cursor"]
            self.clock.advance(between_pages)


def test_list_runs_has_every_schema_field() -> None:
    sim = Sim(history=120, rate=1.0)
    body = sim.get(sim.runs_path(), limit=100).json()
    assert set(body) == {"data", "next_cursor", "has_more"}
    assert body["data"]
    statuses = set()
    for item in body["data"]:
        assert set(item) == LIST_FIELDS
        assert ISO.fullmatch(item["created_at"])
        statuses.add(item["status"])
        if item["status"] in TERMINAL:
            assert ISO.fullmatch(item["completed_at"])
            assert isinstance(item["duration_ms"], int)
        else:
            assert item["completed_at"] is None
            assert item["duration_ms"] is None
            assert item["disposition"] is None
    assert "completed" in statuses
    assert statuses & {"accepted", "running"}


def test_list_runs_defaults_to_twenty_newest_first() -> None:
    sim = Sim(history=600, rate=1.0)
    body = sim.get(sim.runs_path()).json()
    assert len(body["data"]) == 20
    assert body["has_more"] is True
    keys = [(item["created_at"], item["id"]) for item in body["data"]]
    assert keys == sorted(keys, reverse=True)


def test_paging_walks_every_run_once_while_new_runs_arrive() -> None:
    sim = Sim(history=300, rate=1.0)
    before = {row.id for row in sim.world.truth() if row.agent_id == sim.agent_id}
    walked = sim.walk(limit=7, between_pages=5.0)
    ids = [item["id"] for item in walked]
    assert len(ids) == len(set(ids))
    assert set(ids) == before
    keys = [(item["created_at"], item["id"]) for item in walked]
    assert keys == sorted(keys, reverse=True)
    after = {row.id for row in sim.world.truth() if row.agent_id == sim.agent_id}
    assert len(after) > len(before)  # runs did arrive during the walk


def test_status_filter_matches_ground_truth() -> None:
    sim = Sim(history=300, rate=2.0, failure_ratio=0.3)
    truth = Counter(row.status for row in sim.world.truth() if row.agent_id == sim.agent_id)
    for status in ("accepted", "running", "completed", "failed"):
        walked = sim.walk(limit=50, status=status)
        assert {item["status"] for item in walked} <= {status}
        assert len(walked) == truth[status]


def test_walk_after_pause_counts_exactly() -> None:
    sim = Sim(history=200, rate=1.0)
    assert sim.post("/_simulator/pause").json() == {"paused": True}
    sim.clock.advance(3600)
    truth = sim.get("/_simulator/truth").json()
    assert all(run["status"] in TERMINAL for run in truth["runs"])
    walked = sim.walk(limit=100)
    assert len(walked) == sum(truth["counts"][sim.agent_id].values())
    assert sim.post("/_simulator/resume").json() == {"paused": False}


@pytest.mark.parametrize("limit", ["0", "101", "-1", "abc", "1.5", ""])
def test_bad_limit_is_400(limit: str) -> None:
    sim = Sim()
    response = sim.get(sim.runs_path(), limit=limit)
    assert response.status_code == 400
    assert "limit" in response.json()["error"]


@pytest.mark.parametrize("limit", ["1", "100"])
def test_limit_bounds_are_accepted(limit: str) -> None:
    sim = Sim(history=600)
    body = sim.get(sim.runs_path(), limit=limit).json()
    assert len(body["data"]) == int(limit)


def test_bad_status_is_400() -> None:
    sim = Sim()
    response = sim.get(sim.runs_path(), status="queued")
    assert response.status_code == 400
    assert set(response.json()) == {"error"}


@pytest.mark.parametrize(
    "cursor",
    [
        "!!!not-base64!!!",
        base64.urlsafe_b64encode(b"no-colon").decode(),
        base64.urlsafe_b64encode(b"123:").decode(),
        base64.urlsafe_b64encode(b"abc:ar123").decode(),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    ],
)
def test_garbage_cursor_is_400(cursor: str) -> None:
    sim = Sim()
    response = sim.get(sim.runs_path(), cursor=cursor)
    assert response.status_code == 400
    assert response.json() == {"error": "Invalid cursor"}


def test_token_is_required_when_configured() -> None:
    sim = Sim(token="s3cret")
    for token in (None, "wrong"):
        response = sim.get(sim.runs_path(), token=token)
        assert response.status_code == 401
        assert response.json() == {"error": "Invalid or missing API token"}
    assert sim.get(sim.runs_path(), token="s3cret").status_code == 200
    assert sim.get("/v1/agents", token="s3cret").status_code == 200
    assert sim.get("/_simulator/truth").status_code == 200  # control endpoints need no token


def test_other_workspace_is_403() -> None:
    sim = Sim()
    for path in ("/v1/agents", f"/v1/agents/{sim.agent_id}", sim.runs_path()):
        response = sim.get(path, workspace_id="j57someoneelse")
        assert response.status_code == 403
        assert response.json() == {"error": "Invalid workspace id"}
    assert sim.get(sim.runs_path(), workspace_id=sim.world.workspace_id).status_code == 200


def test_unknown_agent_and_run_are_404() -> None:
    sim = Sim()
    run_id = sim.world.runs(sim.agent_id)[0].id
    other_agent = sim.world.agents[1].id
    cases = [
        ("/v1/agents/agunknown", "Agent not found"),
        ("/v1/agents/agunknown/runs", "Agent not found"),
        (f"/v1/agents/agunknown/runs/{run_id}", "Agent not found"),
        (f"/v1/agents/{sim.agent_id}/runs/arunknown", "Run not found"),
        (f"/v1/agents/{other_agent}/runs/{run_id}", "Run not found"),
    ]
    for path, message in cases:
        response = sim.get(path)
        assert response.status_code == 404
        assert response.json() == {"error": message}
    assert sim.get("/v2/nothing").json() == {"error": "Not Found"}


def test_agents_list_and_get() -> None:
    sim = Sim(agents=5)
    seen = []
    cursor = None
    while True:
        body = sim.get("/v1/agents", limit=2, **({"cursor": cursor} if cursor else {})).json()
        seen.extend(body["data"])
        if not body["has_more"]:
            break
        cursor = body["next_cursor"]
    assert sorted(agent["id"] for agent in seen) == sorted(a.id for a in sim.world.agents)
    for agent in seen:
        assert agent["version"] == "v2"
        assert agent["workspace_id"] == sim.world.workspace_id
        assert {"name", "description", "enabled", "created_at", "updated_at"} <= set(agent)
    one = sim.get(f"/v1/agents/{sim.agent_id}").json()["data"]
    assert one["id"] == sim.agent_id
    assert one["name"] == "Support Concierge"


def test_run_detail_shape() -> None:
    sim = Sim(history=600, rate=1.0)
    summary = sim.get(sim.runs_path(), status="completed", limit=1).json()["data"][0]
    detail = sim.get(f"{sim.runs_path()}/{summary['id']}").json()["data"]
    assert set(detail) == DETAIL_FIELDS
    assert {key: detail[key] for key in LIST_FIELDS} == summary
    again = sim.get(f"{sim.runs_path()}/{summary['id']}").json()["data"]
    assert again == detail


def test_tool_traces_cover_steps_nulls_and_errors() -> None:
    sim = Sim(history=1200, rate=0.5, agents=1, failure_ratio=0.5)
    sim.world.pause_arrivals()
    sim.clock.advance(3600)
    truth = {row.id: row for row in sim.world.truth()}
    traces = [
        sim.get(f"{sim.runs_path()}/{run_id}").json()["data"]["tool_trace"] for run_id in truth
    ]
    steps = [step for trace in traces if trace for step in trace]
    assert any(trace is None for trace in traces)
    assert None in steps
    real = [step for step in steps if step is not None]
    assert all(set(step) == {"name", "input", "output"} for step in real)
    assert {step["name"] for step in real} <= set(catalogue.TOOL_NAMES)
    assert any("error" in step["output"] for step in real)
    for run_id, trace in zip(truth, traces, strict=True):
        assert len([step for step in trace or [] if step]) == truth[run_id].tool_steps


def test_in_flight_detail_has_no_outcome() -> None:
    sim = Sim(history=0, rate=1.0, agents=1)
    sim.clock.advance(5)
    sim.world.pause_arrivals()
    run = sim.world.runs(sim.agent_id)[-1]
    sim.clock.now = run.created_ms / 1000
    accepted = sim.get(f"{sim.runs_path()}/{run.id}").json()["data"]
    assert accepted["status"] == "accepted"
    assert accepted["tool_trace"] is None
    for key in ("disposition", "error", "duration_ms", "token_usage", "response", "reflection"):
        assert accepted[key] is None
    sim.clock.now = run.completed_ms / 1000
    done = sim.get(f"{sim.runs_path()}/{run.id}").json()["data"]
    assert done["status"] in TERMINAL
    assert done["completed_at"] is not None


def test_injected_errors_and_throttling() -> None:
    failing = Sim(error_ratio=1.0)
    response = failing.get(failing.runs_path())
    assert response.status_code in (500, 502, 503)
    assert set(response.json()) == {"error"}
    throttled = Sim(throttle_ratio=1.0, retry_after=7)
    response = throttled.get(throttled.runs_path())
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    assert response.json() == {"error": "Rate limit exceeded"}


def test_fault_ratios_are_seeded_and_roughly_honoured() -> None:
    def statuses(seed: int) -> list[int]:
        sim = Sim(seed=seed, error_ratio=0.2, throttle_ratio=0.1)
        return sim.statuses("/v1/agents", 300)

    first = statuses(3)
    assert first == statuses(3)
    counts = Counter(first)
    assert counts[429] / 300 == pytest.approx(0.1, abs=0.06)
    assert sum(counts[code] for code in (500, 502, 503)) / 300 == pytest.approx(0.2, abs=0.07)


def test_workspace_quota_answers_429_until_the_next_minute() -> None:
    sim = Sim(rate_limit=3)
    sim.clock.now = 1_775_186_040.0  # 03:14:00, so the minute ends in 60 s
    assert [sim.get("/v1/agents").status_code for _ in range(3)] == [200, 200, 200]
    sim.clock.advance(15)
    response = sim.get("/v1/agents")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "45"
    sim.clock.advance(45)
    assert sim.get("/v1/agents").status_code == 200


def test_latency_delays_answers() -> None:
    sim = Sim(latency=0.05)
    started = time.perf_counter()
    assert sim.get("/v1/agents").status_code == 200
    assert time.perf_counter() - started >= 0.05


def test_faults_can_change_at_run_time() -> None:
    sim = Sim()
    assert sim.post("/_simulator/faults", {"throttle_ratio": 1.0, "retry_after": 3}).json()[
        "throttle_ratio"
    ] == pytest.approx(1.0)
    assert sim.get("/v1/agents").status_code == 429
    sim.post("/_simulator/faults", {"throttle_ratio": 0})
    assert sim.get("/v1/agents").status_code == 200
    assert sim.get("/_simulator/faults").json()["retry_after"] == 3


@pytest.mark.parametrize(
    "body", [{"error_ratio": 2}, {"latency": "slow"}, {"bogus": 1}, [1], {"rate_limit": True}]
)
def test_bad_fault_changes_are_400(body: Any) -> None:
    sim = Sim()
    response = sim.post("/_simulator/faults", body)
    assert response.status_code == 400
    assert "error" in response.json()
    assert sim.get("/_simulator/faults").json()["error_ratio"] == 0


def test_truth_endpoint_matches_the_world() -> None:
    sim = Sim(history=120)
    truth = sim.get("/_simulator/truth").json()
    assert truth["workspace_id"] == sim.world.workspace_id
    assert [agent["id"] for agent in truth["agents"]] == [a.id for a in sim.world.agents]
    assert len(truth["runs"]) == len(sim.world.truth())
    first = truth["runs"][0]
    assert {"id", "agent_id", "status", "created_at", "trace_id", "tool_steps"} <= set(first)
    assert truth["paused"] is False


def test_request_counts_by_endpoint_status_and_minute() -> None:
    sim = Sim(token="t")
    sim.get("/v1/agents", token="t")
    sim.get(sim.runs_path(), token="t")
    sim.get(sim.runs_path(), token="t", limit=0)
    sim.get(sim.runs_path())
    sim.clock.advance(60)
    sim.get(f"{sim.runs_path()}/arunknown", token="t")
    log = sim.app.state.requests
    assert log.count() == 5
    assert log.count("/v1/agents/{id}/runs") == 3
    assert log.count("/v1/agents/{id}/runs", 400) == 1
    assert log.count(status=401) == 1
    assert log.count("/v1/agents/{id}/runs/{run_id}", 404) == 1
    snapshot = sim.get("/_simulator/requests").json()
    assert snapshot["total"] == 5
    assert snapshot["per_minute"] == {"2026-04-03T03:14:00.000Z": 4, "2026-04-03T03:15:00.000Z": 1}


def test_real_server_on_loopback() -> None:
    sim = Sim(history=60)

    async def scenario() -> dict[str, Any]:
        server = await serve_in_loop(sim.app, port=0)
        try:
            assert server.port > 0
            async with httpx.AsyncClient(base_url=server.url) as client:
                response = await client.get(sim.runs_path(), params={"limit": 5})
        finally:
            await server.stop()
        assert not server.running
        return dict(response.json())

    body = asyncio.run(scenario())
    assert len(body["data"]) == 5


def test_malformed_answers_are_200_with_a_truncated_body() -> None:
    sim = Sim(malformed_ratio=1.0, history=60)
    response = sim.get(sim.runs_path())
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_slow_answers_come_after_slow_seconds_and_count_when_asked() -> None:
    sim = Sim(slow_ratio=1.0, slow_seconds=0.05)
    started = time.perf_counter()
    assert sim.get("/v1/agents").status_code == 200
    assert time.perf_counter() - started >= 0.05
    assert sum(sim.get("/_simulator/requests").json()["per_minute"].values()) == 1


def test_every_fault_kind_is_seeded_and_settable_at_run_time() -> None:
    sim = Sim(seed=4)
    knobs = {"error_ratio": 0.1, "throttle_ratio": 0.05, "slow_ratio": 0.02, "slow_seconds": 0}
    knobs |= {"malformed_ratio": 0.3}
    assert sim.post("/_simulator/faults", knobs).status_code == 200
    outcomes = Counter()
    for _ in range(300):
        response = sim.get("/v1/agents")
        try:
            response.json()
            outcomes[response.status_code] += 1
        except ValueError:
            outcomes["malformed"] += 1
    assert outcomes["malformed"] / 300 == pytest.approx(0.3, abs=0.08)
    assert outcomes[429] / 300 == pytest.approx(0.05, abs=0.04)
