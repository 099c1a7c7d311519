"""Tests for the simulator's quirks of the real platforms: unlisted statuses, drifting fields,
ElizaOS runs that never end or file model calls late; each from the run's own seed."""

from __future__ import annotations

from typing import Any

import pytest

from exporter.simulator import conduit_runs, elizaos_runs, quirks, runtype_runs
from exporter.simulator.platforms import PLATFORMS
from exporter.simulator.settings import SimulatorSettings
from tests.unit.simclient import SimClient

ALL_QUIRKS = {
    "unknown_status_ratio": 0.2,
    "drift_ratio": 0.3,
    "never_ending_ratio": 0.1,
    "late_event_ratio": 0.3,
}


def truth(sim: SimClient) -> list[dict[str, Any]]:
    return list(sim.json("/_simulator/truth")["runs"])


def eliza_runs(sim: SimClient, agent_id: str) -> list[dict[str, Any]]:
    body = sim.json(f"/api/agents/{agent_id}/runs", limit=100, to=int(sim.clock() * 1000))
    return list(body["data"]["runs"])


def eliza_detail(sim: SimClient, run: dict[str, Any]) -> dict[str, Any]:
    return dict(sim.json(f"/api/agents/{run['agent_id']}/runs/{run['id']}")["data"])


@pytest.mark.parametrize("platform", PLATFORMS)
def test_quirks_change_no_other_draw_and_repeat_from_the_seed(platform: str) -> None:
    plain = truth(SimClient(platform, history=300, rate=0.5))
    quirky = truth(SimClient(platform, history=300, rate=0.5, **ALL_QUIRKS))
    assert quirky == truth(SimClient(platform, history=300, rate=0.5, **ALL_QUIRKS))
    assert [(run["id"], run["agent_id"]) for run in quirky] == [
        (run["id"], run["agent_id"]) for run in plain
    ]
    assert any(run["invalid_fields"] for run in quirky)
    assert not any(run["invalid_fields"] for run in plain)
    assert all(run["documented"] for run in plain)


@pytest.mark.parametrize("name", ["unknown_status_ratio", "drift_ratio", "late_event_ratio"])
def test_a_quirk_ratio_outside_zero_to_one_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match=name):
        SimulatorSettings(**{name: 1.5})


def test_elizaos_lists_an_unlisted_end_as_started_and_its_detail_tells_it() -> None:
    sim = SimClient("elizaos", history=600, rate=0.5, unknown_status_ratio=0.3)
    runs = [run for run in truth(sim) if run["agent_id"] == sim.agent_id]
    unlisted = [run for run in runs if not run["documented"]]
    assert {run["status"] for run in unlisted} <= set(elizaos_runs.UNLISTED)
    assert len(unlisted) >= 5
    assert all(run["terminal"] and run["ended_at"] for run in unlisted)
    listed = {item["runId"]: item for item in eliza_runs(sim, sim.agent_id)}
    shown = [listed[run["id"]] for run in unlisted if run["id"] in listed]
    assert shown
    assert {(item["status"], item["endedAt"]) for item in shown} == {("started", None)}
    for run in unlisted[:3]:  # as the real server's detail-muted.json: status and end time
        detail = eliza_detail(sim, run)
        summary = detail["summary"]
        assert (summary["status"], summary["endedAt"]) == (run["status"], run["ended_at"])
        ended = [e for e in detail["events"] if e["type"] == "RUN_ENDED"]
        assert [e["data"]["status"] for e in ended] == [run["status"]]


def test_an_elizaos_run_that_never_ends_stays_started_everywhere() -> None:
    sim = SimClient("elizaos", history=150, rate=0.5, never_ending_ratio=0.3)
    endless = [run for run in truth(sim) if run["never_ends"] and run["agent_id"] == sim.agent_id]
    assert len(endless) >= 5
    sim.settle(6 * 3600)
    listed = {item["runId"]: item for item in eliza_runs(sim, sim.agent_id)}
    for run in endless:
        assert listed[run["id"]]["status"] == "started"
        detail = eliza_detail(sim, run)
        assert (detail["summary"]["status"], detail["summary"]["endedAt"]) == ("started", None)
        assert detail["events"][0]["type"] == "RUN_STARTED"
        assert all(event["type"] != "RUN_ENDED" for event in detail["events"])
    assert all(not run["terminal"] for run in truth(sim) if run["never_ends"])


def test_elizaos_late_model_calls_appear_seconds_after_the_end() -> None:
    sim = SimClient("elizaos", history=300, rate=0.5, late_event_ratio=0.5)
    sim.world.pause_arrivals()
    late = [run for run in truth(sim) if run["late_model_calls"] and run["terminal"]]
    assert late
    run = late[0]
    world_run = sim.world.find_run(run["id"])
    at_end = elizaos_runs.events_of(world_run, run["ended_at"])
    later = elizaos_runs.events_of(world_run, run["ended_at"] + 4000)
    assert at_end[-1]["type"] == "RUN_ENDED"
    after = later[len(at_end) :]
    assert [event["type"] for event in after] == ["MODEL_USED"] * run["late_model_calls"]
    assert all(0 < event["timestamp"] - run["ended_at"] <= 4000 for event in after)
    assert after[0]["data"]["modelType"] == "TEXT_EMBEDDING"  # the message's memory


def value_at(payload: dict[str, Any], field: str) -> Any:
    """Return the value of a dotted field (`token_usage.input`) of a payload."""
    for key in field.split("."):
        payload = payload[key]
    return payload


def test_a_drifting_field_is_spoiled_alike_in_the_list_and_the_detail() -> None:
    sim = SimClient("conduit", history=600, rate=0.5, drift_ratio=0.5)
    sim.settle()
    truth_key = {"total_cost": "total_cost", "token_usage.input": "input_tokens"}
    listed = sim.json(f"/v1/agents/{sim.agent_id}/runs", limit=100)["data"]
    rows = {run["id"]: run for run in truth(sim)}
    drifted = [item for item in listed if rows[item["id"]]["invalid_fields"]]
    assert len(drifted) >= 10
    for item in drifted:
        row = rows[item["id"]]
        (field,) = row["invalid_fields"]
        spoiled = conduit_runs.DRIFTS[field](row[truth_key.get(field, field)])
        detail = sim.json(f"/v1/agents/{sim.agent_id}/runs/{item['id']}")["data"]
        assert value_at(item, field) == value_at(detail, field) == spoiled


def test_spoil_leaves_an_absent_field_alone() -> None:
    payload: dict[str, Any] = {"token_usage": None, "totalTokens": None}
    assert quirks.spoil(payload, "token_usage.input", conduit_runs.DRIFTS) == payload
    assert quirks.spoil(payload, "totalTokens", runtype_runs.DRIFTS) == payload
    assert quirks.spoil({"totalTokens": 10}, "totalTokens", runtype_runs.DRIFTS) == {
        "totalTokens": {"input": 8, "output": 2}
    }
