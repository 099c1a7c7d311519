"""Conduit source: parsing on fixtures built from the spec examples, paging and errors."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from exporter.errors import (
    AuthError,
    MalformedPageError,
    NotFoundError,
    ParseError,
    TransportError,
)
from exporter.model import Status
from exporter.sources.base import Page
from exporter.sources.conduit import ConduitSource, parse_detail, parse_list_page, parse_run
from exporter.sources.http import HttpClient, RetryPolicy

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
AGENT = "ag77c0dy0mgdpzmqz6tesry8w184002s"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def test_parse_run_from_spec_example() -> None:
    run = parse_run(fixture("conduit_list_runs.json")["data"][0])
    assert run.id == "ar77c0dy0mgdpzmqz6tesry8w184002s"
    assert run.status is Status.COMPLETED
    assert run.raw_status == "completed"
    assert run.duration_s == pytest.approx(4.213)
    assert run.completed_at is not None
    assert run.completed_at - run.created_at == pytest.approx(4.213)
    assert (run.input_tokens, run.output_tokens, run.cost_usd) == (1820, 342, 0.0121)
    assert run.trace_id == "0f9c2b1d8a7e4f36"
    assert run.conversation_id == "cv77c0dy0mgdpzmqz6tesry8w184002s"
    assert run.attributes["agent_run.backend_run_id"] == "run_9f3a1c7e"


def test_every_nullable_field_null_is_absent_not_zero() -> None:
    run = parse_run(fixture("conduit_list_runs.json")["data"][1])
    assert run.status is Status.FAILED
    assert run.error == "Tool timeout"
    for name in ("disposition", "duration_s", "input_tokens", "output_tokens", "cost_usd"):
        assert getattr(run, name) is None, name
    assert (run.trace_id, run.conversation_id, run.completed_at) == (None, None, None)
    assert run.effective_duration_s is None


def test_accepted_maps_to_queued() -> None:
    run = parse_run(fixture("conduit_list_runs.json")["data"][2])
    assert (run.status, run.raw_status) == (Status.QUEUED, "accepted")


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"id": None}, "'id'"),
        ({"status": None}, "'status'"),
        ({"created_at": "yesterday"}, "ISO 8601"),
    ],
)
def test_malformed_item_raises_parse_error(patch: dict[str, Any], message: str) -> None:
    item = fixture("conduit_list_runs.json")["data"][0] | patch
    with pytest.raises(ParseError, match=message):
        parse_run(item)


@pytest.mark.parametrize(
    ("patch", "field", "attr"),
    [
        ({"token_usage": [1, 2]}, "token_usage", "input_tokens"),
        ({"total_cost": "lots"}, "total_cost", "cost_usd"),
        ({"duration_ms": -5}, "duration_ms", "duration_s"),
        ({"duration_ms": True}, "duration_ms", "duration_s"),
        ({"disposition": {"x": 1}}, "disposition", "disposition"),
        ({"total_cost": 1e300}, "total_cost", "cost_usd"),
        ({"total_cost": "1e300"}, "total_cost", "cost_usd"),
        (
            {"token_usage": {"input": float("nan"), "output": 7}},
            "token_usage.input",
            "input_tokens",
        ),
        (
            {"token_usage": {"input": 3, "output": float("inf")}},
            "token_usage.output",
            "output_tokens",
        ),
    ],
)
def test_a_malformed_or_out_of_range_optional_field_is_dropped_alone_and_named(
    patch: dict[str, Any], field: str, attr: str
) -> None:
    item = fixture("conduit_list_runs.json")["data"][0] | patch
    run = parse_run(item)
    assert getattr(run, attr) is None
    assert run.invalid_fields == (field,)
    assert run.status is Status.COMPLETED
    assert run.id == item["id"]  # the run itself is kept


def test_an_unknown_status_is_unknown_when_the_run_ended_else_in_flight() -> None:
    item = fixture("conduit_list_runs.json")["data"][0] | {"status": "exploded"}
    assert item["completed_at"]
    assert (parse_run(item).status, parse_run(item).raw_status) == (Status.UNKNOWN, "exploded")
    pending = item | {"completed_at": None, "duration_ms": None}
    assert parse_run(pending).status is Status.RUNNING
    assert parse_run(pending).raw_status == "exploded"


def test_list_page_skips_and_counts_bad_items() -> None:
    body = fixture("conduit_list_runs.json")
    body["data"] += [None, {"id": "x", "status": "exploded"}, "junk"]
    page = parse_list_page(body)
    assert len(page.runs) == 3
    assert page.skipped == {"malformed_item": 3}  # "x" lacks agent_id and created_at
    assert page.has_more


@pytest.mark.parametrize("body", [None, [], {"data": None}, {"data": {}}, {"error": "x"}])
def test_malformed_page_raises(body: Any) -> None:
    with pytest.raises(MalformedPageError):
        parse_list_page(body)


def test_detail_tool_trace_tolerates_null_and_nameless_items() -> None:
    run = parse_detail(fixture("conduit_get_run.json"))
    assert run.tool_steps is not None
    assert [s.name for s in run.tool_steps] == ["get_reservation", "update_booking"]
    assert run.tool_steps[0].input == {"reservation_id": "res_123"}
    assert not run.tool_steps[0].failed
    assert run.tool_steps[1].error == "booking locked"


def test_detail_with_null_tool_trace_has_no_steps() -> None:
    body = fixture("conduit_get_run.json")
    body["data"]["tool_trace"] = None
    assert parse_detail(body).tool_steps == ()


# --- the source over HTTP, with httpx.MockTransport --------------------------------------------


def source(
    handler: Callable[[httpx.Request], httpx.Response],
    *,
    workspace: str | None = None,
    calls: list[tuple[str, str]] | None = None,
    sleeps: list[float] | None = None,
) -> ConduitSource:
    async def sleep(seconds: float) -> None:
        if sleeps is not None:
            sleeps.append(seconds)

    def on_response(endpoint: str, code: str) -> None:
        if calls is not None:
            calls.append((endpoint, code))

    client = HttpClient(
        base_url="https://conduit.test",
        headers={"Authorization": "Bearer tok"},
        timeout_s=5,
        on_response=on_response,
        transport=httpx.MockTransport(handler),
        sleep=sleep,
        retry=RetryPolicy(attempts=3, base_delay_s=0.5, deadline_s=30),
    )
    return ConduitSource("support", client, page_size=2, workspace_id=workspace)


def item(run_id: str, minute: int) -> dict[str, Any]:
    base = fixture("conduit_list_runs.json")["data"][0]
    return base | {"id": run_id, "created_at": f"2026-04-03T03:{minute:02d}:00.000Z"}


def collect(src: ConduitSource, agent: str = AGENT) -> list[Page]:
    async def go() -> list[Page]:
        return [page async for page in src.pages(agent)]

    return asyncio.run(go())


def test_pages_follow_the_cursor_with_auth_limit_and_workspace() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.params.get("cursor") is None:
            return httpx.Response(
                200,
                json={"data": [item("a", 5), item("b", 4)], "next_cursor": "c2", "has_more": True},
            )
        return httpx.Response(
            200, json={"data": [item("c", 3)], "next_cursor": None, "has_more": False}
        )

    pages = collect(source(handler, workspace="ws1"))
    assert [[r.id for r in p.runs] for p in pages] == [["a", "b"], ["c"]]
    assert seen[0].url.path == f"/v1/agents/{AGENT}/runs"
    assert seen[0].headers["authorization"] == "Bearer tok"
    assert dict(seen[0].url.params) == {"limit": "2", "workspace_id": "ws1"}
    assert dict(seen[1].url.params) == {"limit": "2", "workspace_id": "ws1", "cursor": "c2"}


def test_a_repeated_cursor_stops_paging() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, json={"data": [item("a", 5)], "next_cursor": "same", "has_more": True}
        )

    pages = collect(source(handler))
    assert len(pages) == 2
    assert not pages[-1].has_more


def test_has_more_without_cursor_stops_paging() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"data": [item("a", 5)], "has_more": True})

    assert len(collect(source(handler))) == 1


@pytest.mark.parametrize(
    ("status", "error", "reason"),
    [
        (401, AuthError, "unauthorized"),
        (403, AuthError, "forbidden"),
        (404, NotFoundError, "not_found"),
    ],
)
def test_permanent_errors_are_not_retried(status: int, error: type[Exception], reason: str) -> None:
    calls: list[tuple[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json={"error": "Invalid workspace id"})

    with pytest.raises(error, match="Invalid workspace id") as raised:
        collect(source(handler, calls=calls))
    assert raised.value.reason == reason  # type: ignore[attr-defined]
    assert calls == [("list_runs", str(status))]


def test_429_waits_as_long_as_retry_after_says_then_succeeds() -> None:
    answers = iter(
        [
            httpx.Response(
                429, headers={"Retry-After": "7"}, json={"error": "Rate limit exceeded"}
            ),
            httpx.Response(503, json={"error": "down"}),
            httpx.Response(
                200, json={"data": [item("a", 5)], "next_cursor": None, "has_more": False}
            ),
        ]
    )
    sleeps: list[float] = []
    calls: list[tuple[str, str]] = []
    pages = collect(source(lambda _r: next(answers), sleeps=sleeps, calls=calls))
    assert [r.id for r in pages[0].runs] == ["a"]
    assert sleeps[0] == 7.0
    assert 0 <= sleeps[1] <= 1.0  # jittered backoff, second attempt: up to 2 x 0.5 s
    assert [code for _, code in calls] == ["429", "503", "200"]


def test_timeouts_and_bad_bodies_are_translated() -> None:
    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(TransportError, match="timed out") as raised:
        collect(source(timeout))
    assert raised.value.reason == "timeout"

    def not_json(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>gateway</html>")

    with pytest.raises(MalformedPageError, match="not JSON"):
        collect(source(not_json))


def test_fetch_detail_adds_tool_steps() -> None:
    list_run = parse_run(fixture("conduit_list_runs.json")["data"][0])

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == f"/v1/agents/{AGENT}/runs/{list_run.id}"
        return httpx.Response(200, json=fixture("conduit_get_run.json"))

    detailed = asyncio.run(source(handler).fetch_detail(list_run))
    assert detailed.tool_steps is not None
    assert len(detailed.tool_steps) == 2
    assert detailed.id == list_run.id


def test_a_listed_run_belongs_to_the_agent_polled_whatever_its_item_says() -> None:
    body = json.loads(json.dumps(fixture("conduit_list_runs.json")))
    for item in body["data"]:
        item["agent_id"] = "ag_invented_\x00" + "x" * 200
    runs = parse_list_page(body, "ag_polled").runs
    assert runs
    assert {run.agent_id for run in runs} == {"ag_polled"}
