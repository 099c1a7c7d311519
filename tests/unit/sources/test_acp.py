"""ACP source: duplicated arrays read once, the single visible page, absent usage."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest

from exporter.errors import MalformedPageError
from exporter.model import Status
from exporter.sources.acp import AcpSource, parse_list, parse_run
from tests.unit.sourcekit import collect_pages, fixture, mock_client, run_async

SERVER = "srv_7f3a9c"


def body() -> dict[str, Any]:
    data: dict[str, Any] = copy.deepcopy(fixture("acp_list_runs.json"))
    return data


def test_items_in_both_data_and_runs_are_read_once() -> None:
    page = parse_list(body(), SERVER, limit=20)
    assert [run.id for run in page.runs] == ["run_003", "run_002", "run_001"]
    running, done, failed = page.runs
    assert (running.status, done.status, failed.status) == (
        Status.RUNNING,
        Status.COMPLETED,
        Status.FAILED,
    )
    assert done.effective_duration_s == pytest.approx(12.5)  # createdAt -> completedAt
    assert failed.error == "runtime exited with code 137"
    assert (done.agent_id, done.conversation_id) == (SERVER, "thr_8")
    assert (done.input_tokens, done.total_tokens, done.cost_usd) == (None, None, None)
    assert (page.has_more, page.history_cut) == (False, False)


def test_a_full_page_says_older_runs_are_hidden() -> None:
    assert parse_list(body(), SERVER, limit=3).history_cut


def test_either_array_alone_is_enough() -> None:
    only_runs = {"runs": body()["runs"]}
    assert len(parse_list(only_runs, SERVER, limit=20).runs) == 3
    with pytest.raises(MalformedPageError):
        parse_list({"object": "list"}, SERVER, limit=20)
    with pytest.raises(MalformedPageError):
        parse_list(["not", "an", "object"], SERVER, limit=20)


def test_bad_items_are_skipped_and_counted_once() -> None:
    data = body()
    data["data"][0]["status"] = "exploded"
    data["runs"][0]["status"] = "exploded"
    data["data"].append({"id": "run_x"})
    page = parse_list(data, SERVER, limit=20)
    assert [run.id for run in page.runs] == ["run_003", "run_002", "run_001"]
    assert page.skipped == {"malformed_item": 1}
    unknown = parse_run(data["data"][0], SERVER)  # kept: in flight without an end time
    assert (unknown.raw_status, unknown.status) == ("exploded", Status.RUNNING)


def test_the_source_reads_one_page_and_fetches_no_detail() -> None:
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, json=body())

    client = mock_client(handler, headers={"Authorization": "Bearer tb_key"})
    source = AcpSource("acp", client, page_size=3, clock=lambda: 1_800_000_000.0)
    (page,) = collect_pages(source, SERVER)
    assert page.history_cut
    assert not page.has_more
    assert requests[0].url.path == f"/v1/servers/{SERVER}/runtime/agent/runs"
    assert requests[0].url.params["limit"] == "3"
    detailed = run_async(source.fetch_detail(page.runs[1]))
    assert detailed.tool_steps == ()
    assert len(requests) == 1
    assert run_async(source.list_agents()) is None
