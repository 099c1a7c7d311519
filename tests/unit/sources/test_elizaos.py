"""ElizaOS source: the envelope, paging with `to`, startedAt null, event timelines, quirks."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest

from exporter.errors import AuthError, MalformedPageError, NotFoundError
from exporter.model import Run, Status
from exporter.sources.elizaos import (
    FIRST_PAGE_AHEAD_MS,
    ElizaSource,
    parse_agents,
    parse_detail,
    parse_list,
    parse_run,
    unwrap,
)
from exporter.wiring import auth_headers
from tests.unit.sourcekit import FIXTURES, collect_pages, fixture, mock_client, run_async

AGENT = "aa0e8400-e29b-41d4-a716-446655440000"
NOW_MS = 1703001300000


def listed() -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = copy.deepcopy(fixture("elizaos_list_runs.json")["data"]["runs"])
    return runs


def test_parse_list_from_the_reference_example() -> None:
    page = parse_list(fixture("elizaos_list_runs.json"), AGENT)
    done, _cut = page.runs
    assert (done.id, done.status, done.agent_id) == (
        "550e8400-e29b-41d4-a716-446655440001",
        Status.COMPLETED,
        AGENT,
    )
    assert (done.created_at, done.completed_at) == (1703001234.567, 1703001235.89)
    assert done.effective_duration_s == pytest.approx(1.323)
    assert done.conversation_id == "660e8400-e29b-41d4-a716-446655440002"
    assert (done.input_tokens, done.cost_usd) == (None, None)  # the list carries no usage
    assert page.has_more


def test_a_terminal_run_with_started_at_null_has_no_duration_not_zero() -> None:
    cut = parse_list(fixture("elizaos_list_runs.json"), AGENT).runs[1]
    assert (cut.status, cut.raw_status) == (Status.TIMEOUT, "timeout")
    assert cut.created_at == 1703001200.0  # its end is all that is known
    assert (cut.duration_s, cut.effective_duration_s, cut.end_time) == (None, None, None)
    assert cut.attributes["agent_run.start_unknown"] == "true"


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        ("started", Status.RUNNING),
        ("completed", Status.COMPLETED),
        ("timeout", Status.TIMEOUT),
        ("error", Status.FAILED),
    ],
)
def test_status_mapping(raw: str, status: Status) -> None:
    assert parse_run(listed()[0] | {"status": raw}, AGENT).status == status


def test_an_unknown_status_is_kept_unknown_when_ended_else_in_flight() -> None:
    body = {"success": True, "data": {"runs": [listed()[0] | {"status": "zombie"}, 3]}}
    page = parse_list(body, AGENT)
    assert page.skipped == {"malformed_item": 1}
    (run,) = page.runs
    assert (run.status, run.raw_status) == (Status.UNKNOWN, "zombie")
    assert run.completed_at is not None
    open_ended = parse_run(listed()[0] | {"status": "zombie", "endedAt": None}, AGENT)
    assert (open_ended.status, open_ended.completed_at) == (Status.RUNNING, None)


def test_envelope_errors_and_the_documented_bare_shape() -> None:
    with pytest.raises(MalformedPageError, match="RUNS_ERROR"):
        unwrap({"success": False, "error": {"code": "RUNS_ERROR", "message": "db down"}})
    bare = {"runs": listed(), "total": 2, "hasMore": False}  # the docs page omits the envelope
    assert len(parse_list(bare, AGENT).runs) == 2
    for body in ({"success": True, "data": None}, {"success": True, "data": {"runs": {}}}, "x"):
        with pytest.raises(MalformedPageError):
            parse_list(body, AGENT)


def test_agents_listing_keeps_running_agents() -> None:
    body = {
        "success": True,
        "data": {
            "agents": [
                {"id": "a1", "name": "Eliza", "status": "active"},
                {"id": "a2", "name": "Sleepy", "status": "inactive"},
                {"name": "no id"},
            ]
        },
    }
    assert [(a.id, a.name) for a in parse_agents(body)] == [("a1", "Eliza")]


def test_api_key_goes_in_x_api_key() -> None:
    assert auth_headers("elizaos", "k") == {"X-API-KEY": "k"}
    assert auth_headers("elizaos", None) == {}
    assert auth_headers("runtype", "k") == {"Authorization": "Bearer k"}


# --- the event timeline -------------------------------------------------------------------------


def base_run() -> Run:
    return parse_list(fixture("elizaos_list_runs.json"), AGENT).runs[0]


def test_detail_pairs_actions_and_times_model_calls() -> None:
    run = parse_detail(fixture("elizaos_get_run.json"), base_run())
    assert run.tool_steps is not None
    reply, model, email = run.tool_steps
    assert (reply.kind, reply.name, reply.call_id) == ("tool", "REPLY", "act-1")
    assert (reply.started_at, reply.ended_at, reply.failed) == (
        1703001235.067,
        1703001236.567,
        False,
    )
    assert (model.kind, model.name, model.provider) == ("model", "TEXT_LARGE", "openai")
    assert model.ended_at == 1703001235.767
    assert model.started_at == pytest.approx(1703001235.767 - 0.42)
    assert (model.input_tokens, model.output_tokens) == (None, None)
    assert (email.name, email.error) == ("SEND_EMAIL", "SMTP refused")
    assert (run.input_tokens, run.output_tokens, run.cost_usd) == (None, None, None)


def test_detail_sums_usage_only_when_model_calls_report_it() -> None:
    body = fixture("elizaos_get_run.json")
    events = body["data"]["events"]
    model = {"type": "MODEL_USED", "timestamp": 1703001236000, "data": {"modelType": "TEXT_SMALL"}}
    events.append(model | {"data": {"inputTokens": 100, "outputTokens": 20, "cost": 0.002}})
    events.append(model | {"data": {"inputTokens": 50, "outputTokens": 5, "cost": "0.001"}})
    run = parse_detail(body, base_run())
    assert (run.input_tokens, run.output_tokens) == (150, 25)
    assert run.cost_usd == pytest.approx(0.003)


def test_detail_accepts_the_documented_event_spelling() -> None:
    events = [
        {"type": "action:started", "timestamp": 1000, "data": {"actionId": "x", "actionName": "A"}},
        {"type": "action:completed", "timestamp": 3000, "data": {"actionId": "x", "success": True}},
        {"type": "model:used", "timestamp": 2000, "data": {"modelType": "M", "executionTime": 500}},
    ]
    run = parse_detail({"runId": "r", "status": "completed", "events": events}, base_run())
    assert run.tool_steps is not None
    assert [(s.kind, s.started_at, s.ended_at) for s in run.tool_steps] == [
        ("tool", 1.0, 3.0),
        ("model", 1.5, 2.0),
    ]


def test_unknown_run_detail_is_not_a_finished_run() -> None:
    unknown = {
        "success": True,
        "data": {"summary": {"runId": "r", "status": "started"}, "events": []},
    }
    with pytest.raises(NotFoundError):
        parse_detail(unknown, base_run())


def test_detail_fills_the_times_a_cut_list_item_lacked() -> None:
    cut = parse_list(fixture("elizaos_list_runs.json"), AGENT).runs[1]
    body = fixture("elizaos_get_run.json")
    body["data"]["summary"] |= {"runId": cut.id, "status": "timeout"}
    run = parse_detail(body, cut)
    assert (run.created_at, run.completed_at, run.duration_s) == (
        1703001234.567,
        1703001237.567,
        3.0,
    )


# --- over HTTP: paging with `to` ------------------------------------------------------------------


def item(run_id: str, started: int | None, status: str = "completed") -> dict[str, Any]:
    ended = None if status == "started" else (started or NOW_MS) + 500
    return {"runId": run_id, "status": status, "startedAt": started, "endedAt": ended}


class FakeEliza:
    """Answers list requests from `pages` by their `to`, and detail requests from `details`."""

    def __init__(self, pages: dict[int, list[dict[str, Any]]], details: dict[str, Any]) -> None:
        self.pages, self.details = pages, details
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path.endswith("/runs"):
            to = int(request.url.params["to"])
            runs = self.pages[to]
            return httpx.Response(
                200, json={"success": True, "data": {"runs": runs, "hasMore": True}}
            )
        run_id = request.url.path.rsplit("/", 1)[1]
        return httpx.Response(200, json={"success": True, "data": self.details[run_id]})


def source(handler: Any) -> ElizaSource:
    client = mock_client(handler, headers=auth_headers("elizaos", "eliza-key"))
    return ElizaSource("eliza", client, page_size=3, clock=lambda: NOW_MS / 1000)


def test_older_pages_use_to_below_the_oldest_start_and_drop_repeats() -> None:
    first_to = NOW_MS + FIRST_PAGE_AHEAD_MS
    fake = FakeEliza(
        {
            first_to: [item("r5", NOW_MS - 1000), item("r4", NOW_MS - 2000), item("rx", None)],
            NOW_MS - 2001: [item("r3", NOW_MS - 3000), item("rx", None), item("r2", NOW_MS - 4000)],
            NOW_MS - 4001: [],
        },
        {},
    )
    pages = collect_pages(source(fake), AGENT)
    assert [[run.id for run in page.runs] for page in pages] == [
        ["r5", "r4", "rx"],
        ["r3", "r2"],
        [],
    ]
    assert all(r.headers["X-API-KEY"] == "eliza-key" for r in fake.requests)
    assert "Authorization" not in fake.requests[0].headers


def test_a_run_an_older_page_shows_started_is_confirmed_by_its_detail() -> None:
    first_to = NOW_MS + FIRST_PAGE_AHEAD_MS
    ended = {"summary": item("r2", NOW_MS - 4000), "events": [{"type": "RUN_ENDED"}]}
    unknown = {"summary": {"runId": "r1", "status": "started"}, "events": []}
    fake = FakeEliza(
        {
            first_to: [item("r3", NOW_MS - 3000)],
            NOW_MS - 3001: [
                item("r2", NOW_MS - 4000, "started"),
                item("r1", NOW_MS - 5000, "started"),
            ],
            NOW_MS - 5001: [],
        },
        {"r2": ended, "r1": unknown},
    )
    pages = collect_pages(source(fake), AGENT)
    second = {run.id: run.status for run in pages[1].runs}
    assert second == {"r2": Status.COMPLETED, "r1": Status.RUNNING}


def test_paging_stops_when_no_run_has_a_start() -> None:
    first_to = NOW_MS + FIRST_PAGE_AHEAD_MS
    fake = FakeEliza({first_to: [item("rx", None)]}, {})
    (page,) = collect_pages(source(fake), AGENT)
    assert not page.has_more


def test_401_with_the_real_servers_json_body_is_an_auth_error() -> None:
    body = (FIXTURES / "elizaos-1.7.2" / "401-no-key.body").read_bytes()  # JSON, no envelope

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, content=body, headers={"Content-Type": "application/json"})

    with pytest.raises(AuthError, match=r"HTTP 401 .*API key required"):
        collect_pages(source(handler), AGENT)


def test_fetch_detail_of_an_unknown_run_raises_not_found() -> None:
    unknown = {"summary": {"runId": "r1", "status": "started"}, "events": []}
    fake = FakeEliza({}, {base_run().id: unknown})
    with pytest.raises(NotFoundError):
        run_async(source(fake).fetch_detail(base_run()))


def test_detail_requests_name_the_run_room() -> None:
    run = base_run()
    fake = FakeEliza({}, {run.id: fixture("elizaos_get_run.json")["data"]})
    run_async(source(fake).fetch_detail(run))
    (request,) = fake.requests
    assert request.url.params["roomId"] == run.conversation_id
