"""Tests for every platform's world and app together: truth contract, determinism, `all` mount."""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

import pytest

from exporter.simulator.platforms import PLATFORMS, build, simulate
from exporter.simulator.server import announce
from exporter.simulator.settings import SimulatorSettings
from tests.unit.fakeclock import FakeClock
from tests.unit.simclient import START, SimClient

STATUSES = {
    "conduit": ({"accepted", "running"}, {"completed", "failed"}),
    "runtype": (
        {"queued", "running", "paused"},
        {"completed", "failed", "cancelled", "interrupted"},
    ),
    "elizaos": ({"started"}, {"completed", "timeout", "error"}),
    "acp": ({"queued", "running"}, {"completed", "failed", "cancelled"}),
}
ROUTES = {  # each platform's runs list, as its route template (the request log's key)
    "conduit": "/v1/agents/{id}/runs",
    "runtype": "/v1/agents/{id}/executions",
    "elizaos": "/api/agents/{agentId}/runs",
    "acp": "/v1/servers/{serverId}/runtime/agent/runs",
}


def list_path(platform: str, agent_id: str) -> str:
    return re.sub(r"\{\w+\}", agent_id, ROUTES[platform])


@pytest.mark.parametrize("platform", PLATFORMS)
def test_truth_contract(platform: str) -> None:
    sim = SimClient(platform, history=900, rate=1.0, failure_ratio=0.4)
    truth = sim.json("/_simulator/truth")
    assert truth["platform"] == platform
    assert truth["agents"] == [{"id": a.id, "name": a.name} for a in sim.world.agents]
    assert truth["runs"]
    in_flight, terminal = STATUSES[platform]
    seen = set()
    for row in truth["runs"]:
        assert {"id", "agent_id", "status", "terminal"} <= set(row)
        assert row["status"] in (terminal if row["terminal"] else in_flight)
        seen.add(row["status"])
    assert seen == in_flight | terminal
    counts = truth["counts"]
    assert sum(sum(by.values()) for by in counts.values()) == len(truth["runs"])


@pytest.mark.parametrize("platform", PLATFORMS)
def test_same_seed_gives_the_same_world_however_often_the_clock_is_read(platform: str) -> None:
    def run(steps: int, seed: int = 5) -> list[dict[str, Any]]:
        clock = FakeClock(START)
        part = simulate(platform, SimulatorSettings(seed=seed, history=60), clock)
        for _ in range(steps):
            clock.advance(100 / steps)
            part.world.now_ms()
        return part.world.truth_rows()

    assert run(100) == run(1)
    assert {row["id"] for row in run(1)}.isdisjoint(row["id"] for row in run(1, seed=6))


@pytest.mark.parametrize("platform", PLATFORMS)
def test_pause_lets_every_run_finish(platform: str) -> None:
    sim = SimClient(platform, history=120, rate=1.0)
    assert sim.post("/_simulator/pause").json() == {"paused": True}
    sim.clock.advance(3600)
    rows = sim.json("/_simulator/truth")["runs"]
    assert rows
    assert all(row["terminal"] for row in rows)
    assert sim.post("/_simulator/resume").json() == {"paused": False}


@pytest.mark.parametrize("platform", PLATFORMS)
def test_faults_and_request_counts_per_platform(platform: str) -> None:
    sim = SimClient(platform)
    path = list_path(platform, sim.agent_id)
    assert sim.get(path).status_code == 200
    sim.post("/_simulator/faults", {"error_ratio": 1.0})
    assert sim.get(path).status_code in (500, 502, 503)
    counts = sim.json("/_simulator/requests")
    assert counts["total"] == 2
    assert {row["endpoint"] for row in counts["by_endpoint"]} == {ROUTES[platform]}


def test_platforms_draw_different_worlds_from_one_seed() -> None:
    settings = SimulatorSettings(seed=3)
    agents = [simulate(name, settings, FakeClock(START)).world.agents for name in PLATFORMS]
    ids = [agent.id for group in agents for agent in group]
    assert len(ids) == len(set(ids))


def test_unknown_platform_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown platform"):
        simulate("bogus", SimulatorSettings())


def test_all_mounts_every_platform_under_its_prefix() -> None:
    sim = SimClient("all", history=60, rate=1.0, token="tok")
    bearer = {"Authorization": "Bearer tok"}
    assert [part.prefix for part in sim.parts] == [f"/{name}" for name in PLATFORMS]
    for part in sim.parts:
        truth = sim.json(f"{part.prefix}/_simulator/truth")
        assert truth["platform"] == part.platform
        alone = simulate(part.platform, part.world.settings, sim.clock).world
        assert [a.id for a in part.world.agents] == [a.id for a in alone.agents]
        path = part.prefix + list_path(part.platform, part.world.agents[0].id)
        headers = {"X-API-KEY": "tok"} if part.platform == "elizaos" else bearer
        assert sim.get(path, headers=headers).status_code == 200
    assert sim.get("/conduit/v1/agents", headers=bearer).json()["data"]
    assert sim.get("/runtype/v1/agents", headers=bearer).json()["data"]
    assert sim.get("/elizaos/api/agents", headers={"X-API-KEY": "tok"}).json()["success"]
    assert sim.get("/conduit/api/agents", headers=bearer).json() == {"error": "Not Found"}
    assert sim.get("/v1/agents").status_code == 404
    assert set(sim.app.state.platforms) == set(PLATFORMS)


def test_announce_prints_each_base_url_and_agent(capsys: pytest.CaptureFixture[str]) -> None:
    _, parts = build("all", SimulatorSettings(agents=2), FakeClock(START))
    announce(SimpleNamespace(url="http://127.0.0.1:8080"), parts)  # type: ignore[arg-type]
    out = capsys.readouterr().out
    for name, title in (("conduit", "Conduit"), ("runtype", "Runtype"), ("elizaos", "ElizaOS")):
        assert f"{title} simulator listening on http://127.0.0.1:8080/{name}" in out
    assert "ACP simulator listening on http://127.0.0.1:8080/acp" in out
    assert "workspace_id j57" in out
    for part in parts:
        for agent in part.world.agents:
            assert f"{agent.id}  {agent.name}" in out
    assert out.count("  server srv_") == 2
