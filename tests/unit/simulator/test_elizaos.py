"""Tests for the fake ElizaOS app: envelope, log folding under from/to, cache, detail, auth."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from exporter.simulator.elizaos_runs import RECORDED, ElizaRun
from tests.unit.simclient import SimClient

TERMINAL = {"completed", "timeout", "error"}
SUMMARY = {"runId", "status", "startedAt", "endedAt", "durationMs", "messageId", "roomId"}


def runs_path(sim: SimClient, agent_id: str | None = None) -> str:
    return f"/api/agents/{agent_id or sim.agent_id}/runs"


def runs(sim: SimClient, **params: Any) -> dict[str, Any]:
    body = sim.json(runs_path(sim), **params)
    assert body["success"] is True
    assert set(body["data"]) == {"runs", "total", "hasMore"}
    return dict(body["data"])


def finished(sim: SimClient) -> ElizaRun:
    now_ms = sim.world.now_ms()
    return next(r for r in reversed(sim.world.runs(sim.agent_id)) if r.terminal(now_ms - 60_000))


def test_agents_are_uuids_in_the_envelope() -> None:
    sim = SimClient("elizaos", agents=3)
    body = sim.json("/api/agents")
    assert body["success"] is True
    agents = body["data"]["agents"]
    assert [a["name"] for a in agents] == sorted(a["name"] for a in agents)
    for agent in agents:
        assert set(agent) == {"id", "name", "characterName", "bio", "status"}
        assert uuid.UUID(agent["id"]).version == 4
        assert agent["status"] == "active"
    one = sim.json(f"/api/agents/{sim.agent_id}")["data"]
    assert (one["id"], one["status"]) == (sim.agent_id, "active")


def test_runs_list_shapes_and_default_limit() -> None:
    sim = SimClient("elizaos", history=600, rate=1.0, failure_ratio=0.3)
    data = runs(sim)
    assert len(data["runs"]) == 20
    assert data["hasMore"] is True
    assert data["total"] > 20
    statuses = set()
    for run in data["runs"]:
        assert SUMMARY | {"entityId", "metadata", "counts"} <= set(run)
        assert set(run["counts"]) == {"actions", "modelCalls", "errors", "evaluators"}
        assert isinstance(run["startedAt"], int)
        statuses.add(run["status"])
        if run["status"] == "started":
            assert run["endedAt"] is None
            assert run["durationMs"] is None
        else:
            assert run["durationMs"] == run["endedAt"] - run["startedAt"]
    assert "started" in statuses
    started = [run["startedAt"] for run in data["runs"]]
    assert started == sorted(started, reverse=True)


@pytest.mark.parametrize(
    ("limit", "count"), [("abc", 20), ("0", 20), ("", 20), ("500", 100), ("-3", 1), ("7", 7)]
)
def test_limit_is_parsed_like_the_server(limit: str, count: int) -> None:
    sim = SimClient("elizaos", history=600, rate=1.0)
    assert len(runs(sim, limit=limit)["runs"]) == count


def one_run(sim: SimClient, run: ElizaRun, lo: int, hi: int) -> dict[str, Any] | None:
    found = [r for r in runs(sim, **{"from": lo, "to": hi, "limit": 100})["runs"]]
    return next((r for r in found if r["runId"] == run.id), None)


def test_from_and_to_fold_only_the_logs_inside_the_bounds() -> None:
    sim = SimClient("elizaos", history=600, rate=0.2, agents=1)
    run = finished(sim)
    start, end = run.times.started_ms, run.times.completed_ms
    whole = one_run(sim, run, start, end)
    assert whole is not None
    assert (whole["status"], whole["durationMs"]) == (run.times.outcome, end - start)
    no_start = one_run(sim, run, start + 1, end)
    assert no_start is not None
    assert no_start["status"] in TERMINAL
    assert (no_start["startedAt"], no_start["durationMs"], no_start["endedAt"]) == (None, None, end)
    no_end = one_run(sim, run, start, end - 1)
    assert no_end is not None
    assert (no_end["status"], no_end["startedAt"], no_end["endedAt"]) == ("started", start, None)
    assert one_run(sim, run, end, end) is not None  # inclusive
    assert one_run(sim, run, start + 1, end - 1) is None


def test_runs_without_a_start_sort_last() -> None:
    sim = SimClient("elizaos", history=600, rate=1.0, agents=1)
    run = finished(sim)
    data = runs(sim, **{"from": run.times.started_ms + 1, "limit": 100})
    started = [r["startedAt"] for r in data["runs"]]
    assert None in started
    assert started == sorted(started, key=lambda at: at or 0, reverse=True)


def test_paging_with_to_reaches_every_run() -> None:
    sim = SimClient("elizaos", history=900, rate=1.0, agents=1)
    sim.settle()
    seen: dict[str, dict[str, Any]] = {}
    to = None
    while True:
        query = {"limit": 50} | ({"to": to} if to is not None else {})
        page = runs(sim, **query)["runs"]
        complete = [r for r in page if r["startedAt"] is not None]
        if not complete:
            break
        seen.update((r["runId"], r) for r in complete)
        to = min(r["startedAt"] for r in complete) - 1
    truth = {row["id"]: row for row in sim.world.truth_rows()}
    assert set(seen) == set(truth)
    # A run whose end log lies above a page's `to` shows up there as still `started`.
    # A failure is recorded `completed` (ElizaOS 1.7.2); the truth says `error`.
    recorded = {key: RECORDED.get(row["status"], row["status"]) for key, row in truth.items()}
    assert all(seen[key]["status"] in (recorded[key], "started") for key in truth)


def test_the_log_scan_is_capped() -> None:
    sim = SimClient("elizaos", history=1200, rate=1.0, agents=1)
    data = runs(sim, limit=1)
    assert data["hasMore"] is True
    assert 100 <= data["total"] <= 200  # max(limit*20, 200) logs: two per finished run


def test_unbounded_requests_are_cached_for_15_seconds() -> None:
    sim = SimClient("elizaos", history=60, rate=2.0, agents=1)
    first = runs(sim, limit=5)
    sim.clock.advance(14)
    assert runs(sim, limit=5) == first
    assert runs(sim, limit=6)["runs"][:5] != first["runs"]  # another key
    assert runs(sim, limit=5, to=10**13) != first  # with a bound: never cached
    sim.clock.advance(1)
    assert runs(sim, limit=5) != first


def test_status_filter_and_ignored_values() -> None:
    sim = SimClient("elizaos", history=600, rate=1.0, failure_ratio=0.5, agents=1)
    for status in ("started", "completed", "timeout"):
        got = runs(sim, status=status, limit=100)["runs"]
        assert got
        assert {r["status"] for r in got} == {status}
    assert runs(sim, status="error", limit=100)["runs"] == []  # 1.7.2 never writes `error`
    everything = runs(sim, limit=100, to=10**13)
    assert runs(sim, limit=100, status="bogus", to=10**13) == everything
    assert runs(sim, limit=100, status="all", to=10**13) == everything


def test_room_filter() -> None:
    sim = SimClient("elizaos", history=600, rate=1.0, agents=1)
    room = sim.world.runs(sim.agent_id)[0].room_id
    got = runs(sim, roomId=room, limit=100)["runs"]
    assert got
    assert {r["roomId"] for r in got} == {room}


def detail(sim: SimClient, run_id: str) -> dict[str, Any]:
    body = sim.json(f"{runs_path(sim)}/{run_id}")
    assert body["success"] is True
    return dict(body["data"])


def test_run_detail_has_paired_actions_and_model_calls() -> None:
    sim = SimClient("elizaos", history=1800, rate=0.5, failure_ratio=0.3, agents=1)
    sim.settle()
    events = []
    for run in sim.world.runs(sim.agent_id):
        data = detail(sim, run.id)
        assert data["summary"]["runId"] == run.id
        assert data["summary"]["status"] == RECORDED.get(run.times.outcome, run.times.outcome)
        kinds = [e["type"] for e in data["events"]]
        assert (kinds[0], kinds[-1]) == ("RUN_STARTED", "RUN_ENDED")
        ended = data["events"][-1]["data"]
        assert bool(ended.get("error")) == (run.times.outcome != "completed")
        stamps = [e["timestamp"] for e in data["events"]]
        assert stamps == sorted(stamps)
        started = {e["data"]["actionId"] for e in data["events"] if e["type"] == "ACTION_STARTED"}
        done = {e["data"]["actionId"] for e in data["events"] if e["type"] == "ACTION_COMPLETED"}
        assert started == done
        events += data["events"]
    models = [e["data"] for e in events if e["type"] == "MODEL_USED"]
    assert all({"modelType", "provider", "executionTime"} <= set(m) for m in models)
    with_tokens = [m for m in models if "inputTokens" in m]
    assert 0 < len(with_tokens) < len(models) / 4
    assert all({"outputTokens", "cost"} <= set(m) for m in with_tokens)
    outcomes = [e["data"]["success"] for e in events if e["type"] == "ACTION_COMPLETED"]
    assert False in outcomes
    assert "EVALUATOR_COMPLETED" in {e["type"] for e in events}


def test_in_flight_detail_has_no_end() -> None:
    sim = SimClient("elizaos", history=600, rate=1.0, agents=1)
    sim.world.pause_arrivals()
    run = sim.world.runs(sim.agent_id)[-1]
    sim.clock.now = run.times.started_ms / 1000
    data = detail(sim, run.id)
    assert data["summary"]["status"] == "started"
    assert data["summary"]["endedAt"] is None
    assert [e["type"] for e in data["events"]] == ["RUN_STARTED"]


def test_unknown_run_detail_is_200_started_with_no_events() -> None:
    sim = SimClient("elizaos")
    run_id = str(uuid.uuid4())
    data = detail(sim, run_id)
    assert data["events"] == []
    assert data["summary"]["runId"] == run_id
    assert data["summary"]["status"] == "started"
    assert data["summary"]["startedAt"] is None
    assert data["summary"]["entityId"] == sim.agent_id


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/api/agents/not-a-uuid", 400, "INVALID_ID"),
        ("/api/agents/not-a-uuid/runs", 400, "INVALID_ID"),
        ("/api/agents/{agent}/runs/not-a-uuid", 400, "INVALID_ID"),
        (f"/api/agents/{uuid.UUID(int=1)}", 404, "NOT_FOUND"),
        (f"/api/agents/{uuid.UUID(int=1)}/runs", 404, "NOT_FOUND"),
    ],
)
def test_errors_use_the_coded_envelope(path: str, status: int, code: str) -> None:
    sim = SimClient("elizaos")
    response = sim.get(path.format(agent=sim.agent_id))
    assert response.status_code == status
    body = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == code
    if status == 404:
        assert body["error"]["message"] == "Agent not found"


def test_a_non_uuid_room_is_invalid() -> None:
    sim = SimClient("elizaos")
    response = sim.get(runs_path(sim), roomId="nope")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "INVALID_ID"


def test_auth_only_when_a_token_is_configured() -> None:
    assert SimClient("elizaos").get("/api/agents").status_code == 200
    sim = SimClient("elizaos", token="eliza-key")
    for headers in ({}, {"X-API-KEY": "wrong"}, {"Authorization": "Bearer eliza-key"}):
        response = sim.get("/api/agents", headers=headers)
        assert response.status_code == 401
        assert response.json() == {  # as the real 1.7.2 server (401-no-key.body): JSON
            "error": "API key required",
            "message": "Missing or invalid X-API-KEY header",
        }
    assert sim.get("/api/agents", headers={"X-API-KEY": "eliza-key"}).status_code == 200


def test_throttling_answers_the_rate_limit_body() -> None:
    sim = SimClient("elizaos", throttle_ratio=1.0, retry_after=9)
    response = sim.get("/api/agents")
    assert (response.status_code, response.headers["Retry-After"]) == (429, "9")
    assert response.json()["error"]["code"] == "RATE_LIMIT_EXCEEDED"


def test_truth_ids_are_the_run_ids() -> None:
    sim = SimClient("elizaos", history=60, rate=1.0, agents=1)
    truth = sim.json("/_simulator/truth")
    listed = {r["runId"] for r in runs(sim, limit=100, to=10**13)["runs"]}
    assert listed == {row["id"] for row in truth["runs"]}
    assert truth["platform"] == "elizaos"
