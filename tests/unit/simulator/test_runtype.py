"""Tests for the fake Runtype app, driven in-process through httpx.ASGITransport."""

from __future__ import annotations

import datetime as dt
import importlib
import re
from collections import Counter
from typing import Any

import pytest

from exporter.simulator.runtype_payloads import TRUNCATE_BYTES
from tests.unit.simclient import SimClient

TERMINAL = {"completed", "failed", "cancelled", "interrupted"}
REQUIRED = {"id", "executionId", "createdAt", "status", "agentTargetResolution", "executionMode"}
PAGINATION = {"nextCursor", "prevCursor", "hasMore", "hasPrev", "limit", "currentOffset"}


def ms(stamp: str) -> int:
    return round(dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000)


def executions_path(sim: SimClient, agent_id: str | None = None) -> str:
    return f"/v1/agents/{agent_id or sim.agent_id}/executions"


def walk(sim: SimClient, limit: int, between: float = 0.0, **params: Any) -> list[dict[str, Any]]:
    items, cursor = [], None
    while True:
        query = dict(params, limit=limit) | ({"cursor": cursor} if cursor else {})
        body = sim.json(executions_path(sim), **query)
        assert set(body["pagination"]) >= PAGINATION
        items.extend(body["data"])
        if not body["pagination"]["hasMore"]:
            assert body["pagination"]["nextCursor"] is None
            return items
        cursor = body["pagination"]["nextCursor"]
        sim.clock.advance(between)


def test_executions_have_runtype_shapes() -> None:
    sim = SimClient("runtype", history=600, rate=1.0, failure_ratio=0.3)
    body = sim.json(executions_path(sim), limit=100)
    assert set(body) == {"data", "pagination"}
    statuses = set()
    for item in body["data"]:
        assert REQUIRED | {"notificationMode"} <= set(item)
        assert re.fullmatch(r"exec_[0-9a-f]{16}", item["id"])
        assert item["executionId"] == item["id"]
        assert item["agentId"] == sim.agent_id
        statuses.add(item["status"])
        if item["status"] in TERMINAL:
            assert item["completedAt"] is not None
            assert item["totalCost"] is None or re.fullmatch(r"\d+\.\d+", item["totalCost"])
            assert item["totalTokens"] is None or isinstance(item["totalTokens"], int)
        else:
            assert item["completedAt"] is None
            assert item["totalCost"] is None
        if item["status"] == "queued":
            assert item["startedAt"] is None
    assert {"completed", "queued", "running"} <= statuses
    assert any(isinstance(item["totalCost"], str) for item in body["data"])


def test_paging_walks_every_execution_once_while_new_ones_arrive() -> None:
    sim = SimClient("runtype", history=300, rate=1.0)
    before = {row["id"] for row in sim.world.truth_rows() if row["agent_id"] == sim.agent_id}
    walked = walk(sim, limit=7, between=5.0)
    ids = [item["id"] for item in walked]
    assert len(ids) == len(set(ids))
    assert set(ids) == before
    created = [item["createdAt"] for item in walked]
    assert created == sorted(created, reverse=True)


def test_include_count_reports_totals_and_offsets() -> None:
    sim = SimClient("runtype", history=300, rate=1.0)
    sim.settle()
    total = len(sim.world.runs(sim.agent_id))
    first = sim.json(executions_path(sim), limit=10, includeCount="true")["pagination"]
    assert first["totalCount"] == total
    assert first["totalPages"] == -(-total // 10)
    assert (first["currentPage"], first["currentOffset"], first["hasPrev"]) == (1, 0, False)
    second = sim.json(executions_path(sim), limit=10, cursor=first["nextCursor"])["pagination"]
    assert (second["currentOffset"], second["hasPrev"]) == (10, True)
    assert "totalCount" not in second


def test_every_status_occurs_and_the_filter_matches_the_truth() -> None:
    sim = SimClient("runtype", history=900, rate=2.0, failure_ratio=0.4, agents=1)
    truth = Counter(row["status"] for row in sim.world.truth_rows())
    assert {"queued", "running", "paused", *TERMINAL} <= set(truth)
    for status in truth:
        walked = walk(sim, limit=100, status=status)
        assert {item["status"] for item in walked} == {status}
        assert len(walked) == truth[status]


def test_a_paused_execution_waits_for_an_approval_and_then_goes_on() -> None:
    sim = SimClient("runtype", history=900, rate=1.0, agents=1)
    sim.world.pause_arrivals()
    run = next(run for run in sim.world.runs(sim.agent_id) if run.times.pause)
    path = f"{executions_path(sim)}/{run.id}"
    sim.clock.now = run.times.pause[0] / 1000
    paused = sim.json(path)
    assert paused["status"] == "paused"
    assert paused["pendingApproval"]["toolCallId"]
    sim.clock.now = run.times.pause[1] / 1000
    assert sim.json(path)["status"] == "running"
    sim.clock.now = run.times.completed_ms / 1000
    assert sim.json(path)["status"] in TERMINAL


def test_sub_agent_executions_point_at_an_existing_parent() -> None:
    sim = SimClient("runtype", history=600, rate=1.0)
    children = [
        item
        for item in sim.json(executions_path(sim), limit=100)["data"]
        if item["parentExecutionId"]
    ]
    assert children
    for child in children:
        parent = sim.world.find_run(child["parentExecutionId"])
        assert parent is not None
        assert child["rootExecutionId"] in (parent.id, parent.root_id)
        only = sim.json(executions_path(sim), parentExecutionId=parent.id)["data"]
        assert child["id"] in {item["id"] for item in only}


def settled_executions(sim: SimClient) -> list[dict[str, Any]]:
    sim.settle()
    return walk(sim, 100)


def test_some_sub_agents_name_the_parents_tool_call_that_started_them() -> None:
    sim = SimClient("runtype", history=3600, rate=1.0, agents=1)
    items = settled_executions(sim)
    by_id = {item["id"]: item for item in items}
    children = [item for item in items if item["parentExecutionId"]]
    nested = [item for item in children if item["parentToolCallId"]]
    assert 0 < len(nested) < len(children)  # the others: a link, not a nesting
    for child in nested:
        calls = sim.json(f"{executions_path(sim)}/{child['parentExecutionId']}/tool-calls")
        (call,) = [c for c in calls["toolCalls"] if c["toolCallId"] == child["parentToolCallId"]]
        assert ms(call["startedAt"]) <= ms(child["createdAt"])
    for child in children:  # a sub-agent that no known call started starts none of its own
        parent = by_id.get(child["parentExecutionId"])
        assert parent is None or not parent["parentExecutionId"] or parent["parentToolCallId"]


def test_ended_executions_tell_budget_error_and_version() -> None:
    sim = SimClient("runtype", history=1800, rate=1.0, failure_ratio=0.4, agents=1)
    items = settled_executions(sim)
    budget = Counter(item["budgetExhausted"] for item in items)
    assert set(budget) == {None, True, False}
    for item in items:
        if item["budgetExhausted"] is not None:
            exhausted = item["stopReason"] == "max_iterations_reached"
            assert item["budgetExhausted"] == exhausted
        assert ("error" in item) == (item["status"] == "failed")
        legacy = item["agentTargetResolution"] == "legacy-live-row"
        assert (item["agentVersion"] is None) == legacy == (item["agentVersionId"] is None)
    assert {type(item["error"]) for item in items if "error" in item} == {str}


def test_in_flight_executions_have_no_budget_or_error_yet() -> None:
    sim = SimClient("runtype", history=600, rate=1.0, failure_ratio=0.4)
    for item in sim.json(executions_path(sim), limit=100)["data"]:
        if item["status"] not in TERMINAL:
            assert item["budgetExhausted"] is None
            assert "error" not in item


def test_detail_is_the_list_item_plus_detail_fields() -> None:
    sim = SimClient("runtype", history=600, rate=1.0)
    item = sim.json(executions_path(sim), status="completed", limit=1)["data"][0]
    detail = sim.json(f"{executions_path(sim)}/{item['id']}")
    assert {key: detail[key] for key in item} == item
    assert {"iterationDetails", "loopConfig", "finalOutput"} <= set(detail)
    compact = sim.json(executions_path(sim), limit=100, view="compact")["data"]
    assert all("finalOutput" not in item for item in compact)
    prompts = [item["inputMessages"][0]["content"] for item in compact]
    assert all(len(prompt) <= 101 for prompt in prompts)
    assert any(prompt.endswith("…") for prompt in prompts)


def tool_calls(sim: SimClient) -> list[dict[str, Any]]:
    return [
        call
        for run in sim.world.runs(sim.agent_id)
        for call in sim.json(f"{executions_path(sim)}/{run.id}/tool-calls")["toolCalls"]
    ]


def test_tool_calls_have_real_timings_ids_errors_and_truncation() -> None:
    sim = SimClient("runtype", history=1200, rate=0.5, failure_ratio=0.4, agents=1)
    sim.settle()
    calls = tool_calls(sim)
    assert len(calls) > 100
    for call in calls:
        assert call["createdAt"] == call["startedAt"]
        assert ms(call["completedAt"]) == ms(call["startedAt"]) + call["executionTimeMs"]
        assert (call["status"] == "failed") == (call["errorMessage"] is not None)
        assert isinstance(call["inputTruncated"], bool)
    assert any(call["toolCallId"] is None for call in calls)
    assert any(call["toolCallId"] for call in calls)
    assert any(call["status"] == "failed" for call in calls)
    cut = [call for call in calls if call["outputTruncated"]]
    assert cut
    assert all(set(call["outputResult"]) == {"truncated", "preview"} for call in cut)


def test_tool_call_detail_has_the_full_payload() -> None:
    sim = SimClient("runtype", history=3000, rate=0.5, agents=1)
    sim.settle()
    run, call = next(
        (run, call)
        for run in sim.world.runs(sim.agent_id)
        for call in sim.json(f"{executions_path(sim)}/{run.id}/tool-calls")["toolCalls"]
        if call["outputTruncated"]
    )
    full = sim.json(f"{executions_path(sim)}/{run.id}/tool-calls/{call['id']}")
    assert len(str(full["outputResult"])) > TRUNCATE_BYTES
    missing = sim.get(f"{executions_path(sim)}/{run.id}/tool-calls/nope")
    assert missing.json() == {"error": "Tool call not found"}


def test_in_flight_tool_calls_show_only_what_started() -> None:
    sim = SimClient("runtype", history=600, rate=1.0, agents=1)
    sim.world.pause_arrivals()
    run = next(run for run in sim.world.runs(sim.agent_id) if run.tool_calls >= 2)
    path = f"{executions_path(sim)}/{run.id}/tool-calls"
    sim.clock.now = run.times.created_ms / 1000
    assert sim.json(path) == {"toolCalls": []}
    sim.clock.now = run.times.completed_ms / 1000
    assert len(sim.json(path)["toolCalls"]) == run.tool_calls


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"limit": "0"}, "limit must be an integer between 1 and 100"),
        ({"limit": "abc"}, "limit must be an integer between 1 and 100"),
        ({"status": "accepted"}, "status must be one of"),
        ({"cursor": "!!!"}, "Invalid cursor"),
    ],
)
def test_bad_queries_are_400_with_an_error_string(query: dict[str, str], message: str) -> None:
    sim = SimClient("runtype")
    response = sim.get(executions_path(sim), **query)
    assert response.status_code == 400
    assert set(response.json()) == {"error"}
    assert response.json()["error"].startswith(message)


def test_unknown_agent_and_execution_are_404() -> None:
    sim = SimClient("runtype")
    assert sim.get("/v1/agents/agent_nope/executions").json() == {"error": "Agent not found"}
    response = sim.get(f"{executions_path(sim)}/exec_0000000000000000/tool-calls")
    assert (response.status_code, response.json()) == (404, {"error": "Execution not found"})


def test_bearer_token_and_throttling() -> None:
    sim = SimClient("runtype", token="rt_secret")
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "rt_secret"}):
        response = sim.get("/v1/agents", headers=headers)
        assert (response.status_code, response.json()) == (401, {"error": "Unauthorized"})
    assert sim.get("/v1/agents", headers={"Authorization": "Bearer rt_secret"}).status_code == 200
    throttled = SimClient("runtype", throttle_ratio=1.0, retry_after=4)
    response = throttled.get("/v1/agents")
    assert (response.status_code, response.headers["Retry-After"]) == (429, "4")
    assert response.json() == {"error": "Rate limit exceeded"}


def test_agents_list_and_detail() -> None:
    sim = SimClient("runtype", agents=4)
    body = sim.json("/v1/agents", limit=3)
    assert len(body["data"]) == 3
    assert body["pagination"]["hasMore"] is True
    rest = sim.json("/v1/agents", limit=3, cursor=body["pagination"]["nextCursor"])["data"]
    ids = {agent["id"] for agent in body["data"] + rest}
    assert ids == {agent.id for agent in sim.world.agents}
    detail = sim.json(f"/v1/agents/{sim.agent_id}")
    assert (detail["id"], detail["agentType"]) == (sim.agent_id, "runtype")
    assert re.fullmatch(r"agent_[0-9a-z]{20}", sim.agent_id)


@pytest.mark.parametrize("quirks", [{}, {"unknown_status_ratio": 0.3, "drift_ratio": 0.5}])
def test_payloads_validate_against_the_official_sdk_models(quirks: dict[str, float]) -> None:
    # Quirks included: the SDK types `status` as an open enum and `totalTokens` as "any".
    agents = "runtype._generated.agents.types"  # runtype-sdk, a dev dependency

    def model(name: str) -> Any:
        module = importlib.import_module(f"{agents}.{name}")
        return next(v for k, v in vars(module).items() if k.lower() == name.replace("_", ""))

    sim = SimClient("runtype", history=600, rate=1.0, failure_ratio=0.3, **quirks)
    model("get_v1agents_response").model_validate(sim.json("/v1/agents"))
    page = sim.json(executions_path(sim), limit=100)
    model("get_v1agents_id_executions_response").model_validate(page)
    tokens = [item["totalTokens"] for item in page["data"]]
    assert any(isinstance(value, dict) for value in tokens) == bool(quirks)
    for item in page["data"]:
        path = f"{executions_path(sim)}/{item['id']}"
        model("get_v1agents_id_executions_execution_id_response").model_validate(sim.json(path))
        calls = sim.json(path + "/tool-calls")
        model("get_v1agents_id_executions_execution_id_tool_calls_response").model_validate(calls)
