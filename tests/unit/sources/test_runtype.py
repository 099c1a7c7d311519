"""Runtype source: parsing on the reference examples, cursor paging, tool calls and quirks."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest

from exporter.errors import MalformedPageError, ParseError
from exporter.model import Status
from exporter.sources.fields import timestamp
from exporter.sources.runtype import (
    RuntypeSource,
    parse_agents,
    parse_list_page,
    parse_run,
)
from exporter.sources.runtype_tools import parse_tool_calls
from tests.unit.sourcekit import collect_pages, fixture, mock_client, run_async

AGENT = "agent_12345abcde"


def execution(**changes: Any) -> dict[str, Any]:
    item: dict[str, Any] = copy.deepcopy(fixture("runtype_list_executions.json")["data"][0])
    return item | changes


def test_parse_run_from_the_reference_example() -> None:
    page, cursor = parse_list_page(fixture("runtype_list_executions.json"), AGENT)
    (run,) = page.runs
    assert (run.id, run.agent_id, run.status, run.raw_status) == (
        "exec_9f8b7c6d5a4e3f21",
        AGENT,
        Status.COMPLETED,
        "completed",
    )
    assert run.cost_usd == pytest.approx(0.023)  # a decimal string on the wire
    assert (run.total_tokens, run.input_tokens, run.output_tokens) == (450, None, None)
    assert run.created_at == timestamp("2024-06-10T14:22:00Z", "t")
    assert run.effective_duration_s == 195.0  # startedAt -> completedAt, not createdAt
    assert run.attributes["agent_run.stop_reason"] == "max_iterations_reached"
    assert (page.has_more, cursor) == (True, "exec_9f8b7c6d5a4e3f22")


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        ("queued", Status.QUEUED),
        ("running", Status.RUNNING),
        ("paused", Status.RUNNING),
        ("completed", Status.COMPLETED),
        ("failed", Status.FAILED),
        ("interrupted", Status.FAILED),
        ("cancelled", Status.CANCELLED),
    ],
)
def test_status_mapping(raw: str, status: Status) -> None:
    run = parse_run(execution(status=raw, completedAt=None), AGENT)
    assert (run.status, run.raw_status) == (status, raw)
    assert run.status.terminal == (raw not in ("queued", "running", "paused"))


def test_nulls_are_absent_not_zero_and_paused_is_in_flight() -> None:
    run = parse_run(
        execution(status="paused", totalCost=None, totalTokens=None, startedAt=None), AGENT
    )
    assert (run.cost_usd, run.total_tokens, run.completed_at) == (None, None, None)
    assert run.effective_duration_s is None


def test_agent_id_falls_back_to_the_polled_agent() -> None:
    item = execution()
    del item["agentId"]
    assert parse_run(item, "agent_x").agent_id == "agent_x"


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"status": None}, ParseError),
        ({"createdAt": "yesterday"}, ParseError),
        ({"id": 7}, ParseError),
    ],
)
def test_bad_items_raise_the_documented_error(changes: dict[str, Any], error: type) -> None:
    with pytest.raises(error):
        parse_run(execution(**changes), AGENT)


def test_page_skips_and_counts_bad_items() -> None:
    body = {"data": [execution(), execution(status="exploded"), "junk"], "pagination": None}
    page, cursor = parse_list_page(body, AGENT)
    assert [run.raw_status for run in page.runs] == ["completed", "exploded"]
    assert page.skipped == {"malformed_item": 1}
    assert (page.has_more, cursor) == (False, None)


@pytest.mark.parametrize("body", [None, [], {"data": {}}, {"error": "nope"}, "text"])
def test_malformed_pages_raise(body: Any) -> None:
    with pytest.raises(MalformedPageError):
        parse_list_page(body, AGENT)


def test_tool_calls_have_reported_times_call_ids_and_errors() -> None:
    weather, booking = parse_tool_calls(fixture("runtype_tool_calls.json"))
    assert weather.name == "Weather Forecast Tool"
    assert weather.call_id == "call_mszuSIzqtI65i1wAUOE8w5H4"
    assert weather.ended_at is not None
    assert weather.started_at is not None
    assert weather.ended_at - weather.started_at == pytest.approx(0.245)
    assert not weather.failed
    assert booking.call_id is None  # no model id: the row id is no call id ...
    assert booking.record_id == "8a9b0c1d-2e3f-4a5b-8c7d-9e0f1a2b3c4d"  # ... only the row's
    assert booking.error == "restaurant API returned 503"
    assert booking.ended_at is not None
    assert booking.started_at is not None
    assert booking.ended_at - booking.started_at == pytest.approx(1.2)  # start + executionTimeMs
    assert booking.input == {"truncated": True, "preview": '{"party": 4, "notes": "aaaa…'}


def test_tool_calls_tolerate_junk_items_and_reject_a_bad_body() -> None:
    body = {"toolCalls": [None, {"toolName": ""}, {"toolName": "ok", "startedAt": "bad"}]}
    assert parse_tool_calls(body) == ()
    with pytest.raises(MalformedPageError):
        parse_tool_calls({"calls": []})


def test_agents_listing() -> None:
    body = {
        "data": [{"id": "agent_a", "name": "Concierge"}, {"id": ""}, {"id": "agent_b"}],
        "pagination": {"nextCursor": "c2", "hasMore": True},
    }
    agents, cursor, more = parse_agents(body)
    assert [(a.id, a.name) for a in agents] == [("agent_a", "Concierge"), ("agent_b", None)]
    assert (cursor, more) == ("c2", True)


# --- over HTTP --------------------------------------------------------------------------------


def paged_handler(pages: dict[str | None, tuple[list[dict[str, Any]], str | None, bool]]) -> Any:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"] == "Bearer rt_key"
        cursor = request.url.params.get("cursor")
        items, next_cursor, more = pages[cursor]
        pagination = {"nextCursor": next_cursor, "hasMore": more, "limit": 2}
        return httpx.Response(200, json={"data": items, "pagination": pagination})

    return handler


def source(handler: Any, calls: list[tuple[str, str]] | None = None) -> RuntypeSource:
    client = mock_client(handler, headers={"Authorization": "Bearer rt_key"}, calls=calls)
    return RuntypeSource("rt", client, page_size=2)


def test_pages_follow_next_cursor_until_has_more_is_false() -> None:
    pages = {
        None: ([execution(id="e3"), execution(id="e2")], "c1", True),
        "c1": ([execution(id="e1")], None, False),
    }
    got = collect_pages(source(paged_handler(pages)), AGENT)
    assert [[run.id for run in page.runs] for page in got] == [["e3", "e2"], ["e1"]]
    assert [page.has_more for page in got] == [True, False]


def test_a_repeated_cursor_and_an_empty_page_with_has_more_stop_paging() -> None:
    repeat = {None: ([execution(id="e2")], "c1", True), "c1": ([execution(id="e1")], "c1", True)}
    assert len(collect_pages(source(paged_handler(repeat)), AGENT)) == 2
    empty = {None: ([], "c1", True), "c1": ([execution()], None, False)}
    (only,) = collect_pages(source(paged_handler(empty)), AGENT)
    assert (only.runs, only.has_more) == ([], False)


def test_fetch_detail_reads_tool_calls_of_the_execution() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(200, json=fixture("runtype_tool_calls.json"))

    run = parse_run(execution(), AGENT)
    detailed = run_async(source(handler).fetch_detail(run))
    assert seen == [f"/v1/agents/{AGENT}/executions/exec_9f8b7c6d5a4e3f21/tool-calls"]
    assert detailed.tool_steps is not None
    assert len(detailed.tool_steps) == 2


def test_error_bodies_are_translated() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"error": "Invalid API key"})

    calls: list[tuple[str, str]] = []
    with pytest.raises(Exception, match="Invalid API key") as caught:
        collect_pages(source(handler, calls), AGENT)
    assert getattr(caught.value, "reason", None) == "unauthorized"
    assert calls == [("list_executions", "401")]


def test_a_run_belongs_to_the_agent_polled_whatever_its_item_says() -> None:
    body = copy.deepcopy(fixture("runtype_list_executions.json"))
    for item in body["data"]:
        item["agentId"] = "agent_invented_" + "x" * 200
    page, _cursor = parse_list_page(body, AGENT)
    assert page.runs
    assert {run.agent_id for run in page.runs} == {AGENT}


# outcome, budget, version and lineage


@pytest.mark.parametrize(
    "changes",
    [
        {"error": "Model provider returned 529"},
        {"error": {"code": "provider_error", "message": "Model provider returned 529"}},
        {"errorMessage": "Model provider returned 529"},
    ],
)
def test_a_failed_run_carries_the_platforms_message(changes: dict[str, Any]) -> None:
    run = parse_run(execution(status="failed", stopReason="error", **changes), AGENT)
    assert run.error == "Model provider returned 529"
    assert run.attributes["agent_run.stop_reason"] == "error"  # the code stays an attribute
    assert run.invalid_fields == ()


def test_a_stop_reason_is_never_the_error_message() -> None:
    run = parse_run(execution(status="interrupted", stopReason="max_iterations_reached"), AGENT)
    assert (run.status, run.error) == (Status.FAILED, None)
    assert run.attributes["agent_run.stop_reason"] == "max_iterations_reached"


def test_a_malformed_error_is_dropped_alone() -> None:
    run = parse_run(execution(status="failed", error=["boom"], errorMessage="boom"), AGENT)
    assert (run.status, run.error, run.invalid_fields) == (Status.FAILED, "boom", ("error",))


@pytest.mark.parametrize(("value", "attribute"), [(True, "true"), (False, "false"), (None, None)])
def test_budget_exhausted(value: bool | None, attribute: str | None) -> None:
    run = parse_run(execution(budgetExhausted=value), AGENT)
    assert run.attributes.get("agent_run.budget_exhausted") == attribute  # null: unknown


def test_agent_version() -> None:
    version = {"id": "agv_7", "label": "prod", "versionNumber": 7}
    run = parse_run(execution(agentVersion=version, agentVersionId="agv_7"), AGENT)
    assert {k: v for k, v in run.attributes.items() if "version" in k} == {
        "gen_ai.agent.version": "7",
        "agent_run.agent_version_id": "agv_7",
        "agent_run.agent_version_label": "prod",
    }


@pytest.mark.parametrize(
    "changes",
    [
        {"budgetExhausted": "yes"},
        {"budgetExhausted": 1},
        {"agentVersion": "v7"},
        {"agentVersion": {"id": "agv_7", "versionNumber": "7"}},
        {"agentVersion": {"id": "agv_7"}},
        {"parentToolCallId": {"id": "toolu_1"}},
    ],
)
def test_a_malformed_budget_version_or_call_is_dropped_alone(changes: dict[str, Any]) -> None:
    page, _ = parse_list_page({"data": [execution(**changes)]}, AGENT)
    (run,) = page.runs
    assert run.invalid_fields == tuple(changes)
    assert "gen_ai.agent.version" not in run.attributes
    assert "agent_run.budget_exhausted" not in run.attributes
    assert run.parent_call_id is None
    assert (run.status, run.total_tokens, run.cost_usd) == (Status.COMPLETED, 450, 0.023)


def test_sub_agent_lineage() -> None:
    item = execution(
        parentExecutionId="exec_p", parentToolCallId="toolu_9", rootExecutionId="exec_r"
    )
    run = parse_run(item, AGENT)
    assert (run.parent_run_id, run.parent_call_id, run.root_run_id) == (
        "exec_p",
        "toolu_9",
        "exec_r",
    )


def test_a_malformed_tool_call_id_is_left_out_not_the_call() -> None:
    body = {"toolCalls": [{"id": "row-1", "toolName": "search", "toolCallId": ["x"]}]}
    (step,) = parse_tool_calls(body)
    assert (step.name, step.call_id, step.record_id) == ("search", None, "row-1")
