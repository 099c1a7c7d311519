"""Tests for the fake ACP (Computer Agents) app: one page, duplicated arrays, events, auth."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.unit.simclient import SimClient

RUN_FIELDS = {
    "id", "serverId", "threadId", "title", "input", "output", "error", "mode", "status",
    "metadata", "createdAt", "completedAt", "sessionProtocol", "threadBacked", "threadStatus",
    "threadTitle",
}  # fmt: skip
TERMINAL = {"completed", "failed", "cancelled"}


def runs_path(sim: SimClient, server_id: str | None = None) -> str:
    return f"/v1/servers/{server_id or sim.agent_id}/runtime/agent/runs"


def test_list_has_the_same_items_in_data_and_runs() -> None:
    sim = SimClient("acp", history=600, rate=1.0, failure_ratio=0.4)
    body = sim.json(runs_path(sim))
    assert set(body) == {"serverId", "agentRuntimeId", "object", "data", "runs"}
    assert (body["serverId"], body["object"]) == (sim.agent_id, "list")
    assert re.fullmatch(r"art_[0-9a-z]{24}", body["agentRuntimeId"])
    assert body["data"] == body["runs"]
    assert len(body["data"]) == 20
    statuses = set()
    for item in body["data"]:
        assert set(item) == RUN_FIELDS
        assert not {"tokens", "cost", "duration", "durationMs"} & set(item)
        assert item["serverId"] == sim.agent_id
        statuses.add(item["status"])
        assert (item["completedAt"] is None) == (item["status"] not in TERMINAL)
        assert (item["error"] is not None) == (item["status"] == "failed")
    assert "running" in statuses or "queued" in statuses
    created = [item["createdAt"] for item in body["data"]]
    assert created == sorted(created, reverse=True)


def test_only_the_newest_page_is_reachable() -> None:
    sim = SimClient("acp", history=600, rate=1.0)
    ids = [item["id"] for item in sim.json(runs_path(sim), limit=100)["data"]]
    newest = [run.id for run in reversed(sim.world.runs(sim.agent_id))][:100]
    assert ids == newest
    assert len(sim.world.runs(sim.agent_id)) > 100
    again = sim.json(runs_path(sim), limit=100, cursor="anything", offset=100)["data"]
    assert [item["id"] for item in again] == ids  # unknown parameters change nothing


@pytest.mark.parametrize("limit", ["0", "101", "x"])
def test_bad_limit_is_400(limit: str) -> None:
    sim = SimClient("acp")
    response = sim.get(runs_path(sim), limit=limit)
    assert response.status_code == 400
    assert {"error", "message", "code"} <= set(response.json())


def test_events_are_log_lines_that_appear_over_time() -> None:
    sim = SimClient("acp", history=300, rate=1.0, failure_ratio=0.5, agents=1)
    sim.world.pause_arrivals()
    run = sim.world.runs(sim.agent_id)[-1]
    path = f"{runs_path(sim)}/{run.id}/events"
    sim.clock.now = run.times.created_ms / 1000
    early = sim.json(path)
    assert set(early) == {"serverId", "agentRuntimeId", "run", "thread", "events"}
    assert early["run"]["status"] == "queued"
    assert early["thread"]["id"] == run.thread_id
    assert [e["role"] for e in early["events"]] == ["user"]
    sim.clock.now = run.times.completed_ms / 1000
    late = sim.json(path)
    assert late["run"]["status"] in TERMINAL
    for event in late["events"]:
        assert set(event) == {"id", "role", "content", "logType", "logLevel", "createdAt"}
    assert len(late["events"]) > len(early["events"])
    detail = sim.json(f"{runs_path(sim)}/{run.id}")
    assert detail["run"] == late["run"]


def test_unknown_server_and_run_are_404() -> None:
    sim = SimClient("acp")
    response = sim.get(runs_path(sim, "srv_nope"))
    assert response.status_code == 404
    assert response.json()["error"] == "Resource not found"
    assert sim.get(f"{runs_path(sim)}/run_nope/events").status_code == 404


@pytest.mark.parametrize("headers", [{"Authorization": "Bearer tb_key"}, {"X-API-Key": "tb_key"}])
def test_bearer_or_x_api_key(headers: dict[str, str]) -> None:
    sim = SimClient("acp", token="tb_key")
    assert sim.get(runs_path(sim), headers=headers).status_code == 200
    response = sim.get(runs_path(sim), headers={"X-API-Key": "wrong"})
    assert response.status_code == 401
    body: dict[str, Any] = response.json()
    assert body["code"] == "unauthorized"
    assert isinstance(body["error"], str)


def test_truth_ids_are_the_run_ids_and_servers_the_agents() -> None:
    sim = SimClient("acp", history=30, rate=1.0)
    truth = sim.json("/_simulator/truth")
    assert truth["platform"] == "acp"
    assert [a["id"] for a in truth["agents"]] == [s.id for s in sim.world.agents]
    listed = {
        item["id"]
        for server in sim.world.agents
        for item in sim.json(runs_path(sim, server.id), limit=100)["data"]
    }
    assert listed == {row["id"] for row in truth["runs"]}
    done = [row for row in truth["runs"] if row["terminal"]]
    assert all(row["status"] in TERMINAL for row in done)
