"""Payloads built to the official SDKs' models (tests/fixtures/sdk-payloads): no run is dropped for
its status or for one malformed or missing optional field.

`runtype-sdk` 5.5.0 types `totalTokens` as "any" and `status` as an open enum; `@elizaos/api-client`
1.7.2 has a detail whose `RUN_ENDED` carries the error and a `started` run without `startedAt`;
ACP (`computer-agents` 2.6.6, the seed doc) makes every field optional, `createdAt` included.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from runtype._generated.agents import types as sdk  # runtype-sdk, a dev dependency

from exporter.app import Exporter
from exporter.model import Run, SourceInfo, Status
from exporter.sinks.traces.sink import TraceSink
from exporter.sources import acp, elizaos, fields, runtype, runtype_tools
from tests.unit.fakeclock import FakeClock
from tests.unit.sourcekit import mock_exporter

PAYLOADS = Path(__file__).parents[2] / "fixtures" / "sdk-payloads"
AGENT = "agent_12345abcde"


def payload(path: str) -> Any:
    return json.loads((PAYLOADS / path).read_text())


def test_runtype_keeps_a_run_whose_total_tokens_is_an_object() -> None:
    page, _cursor = runtype.parse_list_page(
        payload("runtype/list_executions_page2_atypical.json"), AGENT
    )
    assert not page.skips
    tokens_object, tokens_text, expired = page.runs
    assert (tokens_object.status, tokens_object.total_tokens) == (Status.COMPLETED, None)
    assert tokens_object.invalid_fields == ("totalTokens",)
    assert tokens_object.cost_usd == 0.01  # the rest of the run is kept
    assert (tokens_text.total_tokens, tokens_text.invalid_fields) == (1450, ())
    # `expired` is no status the exporter knows, and the run has no end time: still in flight.
    assert (expired.status, expired.raw_status) == (Status.RUNNING, "expired")


def test_runtype_sdk_page_one_reads_every_execution() -> None:
    page, _cursor = runtype.parse_list_page(payload("runtype/list_executions_page1.json"), AGENT)
    assert page.runs
    assert not page.skips


def runtype_page(**changes: dict[str, Any]) -> dict[str, Any]:
    """Page one, with `changes` merged into the execution of each id, validated by the SDK."""
    body = payload("runtype/list_executions_page1.json")
    for item in body["data"]:
        item.update(changes.get(item["id"], {}))
    sdk.GetV1AgentsIdExecutionsResponse.model_validate(body)
    return dict(body)


def test_runtype_sdk_lineage_budget_and_version() -> None:
    page, _ = runtype.parse_list_page(runtype_page(), AGENT)
    runs = {run.id: run for run in page.runs}
    child, parent = runs["exec_0003"], runs["exec_0002"]
    assert (child.status, child.error) == (Status.FAILED, None)  # `stopReason: error` is no message
    assert child.attributes["agent_run.stop_reason"] == "error"
    assert (child.parent_run_id, child.parent_call_id, child.root_run_id) == (
        "exec_0002",
        "call_sub_1",
        "exec_0002",
    )
    assert parent.attributes["agent_run.budget_exhausted"] == "true"
    assert runs["exec_0004"].attributes["agent_run.budget_exhausted"] == "false"
    assert "agent_run.budget_exhausted" not in runs["exec_0003"].attributes  # absent: unknown
    assert {run.attributes["gen_ai.agent.version"] for run in page.runs} == {"7"}
    assert {run.attributes["agent_run.agent_version_label"] for run in page.runs} == {"prod"}


def test_runtype_sdk_failed_run_uses_the_platforms_message() -> None:
    error = {"code": "provider_error", "message": "Model provider returned 529"}
    page, _ = runtype.parse_list_page(runtype_page(exec_0003={"error": error}), AGENT)
    (child,) = [run for run in page.runs if run.id == "exec_0003"]
    assert child.error == "Model provider returned 529"


def test_runtype_sdk_tool_calls_carry_the_models_ids_never_the_row_ids() -> None:
    body = payload("runtype/tool_calls.json")
    sdk.GetV1AgentsIdExecutionsExecutionIdToolCallsResponse.model_validate(body)
    steps = runtype_tools.parse_tool_calls(body)
    assert [step.call_id for step in steps] == ["call_abc", None, "call_def"]
    assert [step.record_id for step in steps] == [call["id"] for call in body["toolCalls"]]


def test_runtype_sdk_sub_agent_nests_under_the_call_that_started_it() -> None:
    page, _ = runtype.parse_list_page(runtype_page(), AGENT)
    runs = {run.id: run for run in page.runs}
    calls = payload("runtype/tool_calls.json")
    calls["toolCalls"][0]["toolCallId"] = "call_sub_1"  # the call exec_0003 names
    parent = replace(runs["exec_0002"], tool_steps=runtype_tools.parse_tool_calls(calls))
    memory = InMemorySpanExporter()
    sink = TraceSink(SimpleSpanProcessor(memory), environ={})
    source = SourceInfo(name="rt", platform="runtype")
    sink.export(source, parent)
    sink.export(source, runs["exec_0003"])
    spans = {span.name: span for span in memory.get_finished_spans()}
    spawn, child = spans["execute_tool web_search"], spans[f"invoke_agent {AGENT}"]
    assert spawn.context is not None
    assert child.context is not None
    assert child.parent is not None
    assert (child.context.trace_id, child.parent.span_id) == (
        spawn.context.trace_id,
        spawn.context.span_id,
    )


def test_elizaos_sdk_detail_error_is_the_run_error() -> None:
    body = payload("elizaos/run_detail_error.json")
    listed = elizaos.parse_run(body["data"]["summary"], "a")
    detailed = elizaos.parse_detail(body, listed)
    assert detailed.status is Status.FAILED
    assert detailed.error


def serve_runtype(executions: dict[str, Any]) -> httpx.MockTransport:
    """Serve one agent whose executions are `executions`, with no tool calls."""

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/executions"):
            return httpx.Response(200, json=executions)
        if path.endswith("/tool-calls"):
            return httpx.Response(200, json={"toolCalls": []})
        return httpx.Response(200, json={"id": AGENT, "name": "Agent"})

    return httpx.MockTransport(handler)


def poll_runtype(tmp_path: Path, executions: dict[str, Any], at: str) -> Exporter:
    clock = FakeClock(datetime.fromisoformat(at).timestamp())
    transport = serve_runtype(executions)
    exporter = mock_exporter(tmp_path, transport, clock, platform="runtype", agent=AGENT, name="rt")

    async def go() -> None:
        for runtime in exporter.runtimes:
            await exporter.poller.poll_once(runtime)

    asyncio.run(go())
    return exporter


def test_the_poller_counts_unknown_statuses_and_invalid_fields(tmp_path: Path) -> None:
    body = payload("runtype/list_executions_page2_atypical.json")
    body["data"][2]["completedAt"] = "2025-12-05T18:28:30Z"  # `expired`, now with an end time
    exporter = poll_runtype(tmp_path, body, "2025-12-05T18:31:00+00:00")
    value = exporter.registry.get_sample_value
    runs = {"source": "rt", "platform": "runtype", "agent_id": AGENT, "disposition": "none"}
    assert value("agent_runs_total", runs | {"status": "completed"}) == 2
    assert value("agent_runs_total", runs | {"status": "unknown"}) == 1
    invalid = "agent_runs_exporter_fields_invalid_total"
    assert value(invalid, {"source": "rt", "field": "totalTokens"}) == 1
    assert (
        value(
            "agent_runs_exporter_runs_skipped_total", {"source": "rt", "reason": "malformed_item"}
        )
        == 0
    )


def test_an_unknown_status_keeps_its_raw_status(tmp_path: Path) -> None:
    item = payload("runtype/list_executions_page2_atypical.json")["data"][2]
    run: Run = runtype.parse_run(item | {"completedAt": "2025-12-05T18:28:30Z"}, AGENT)
    assert (run.status, run.raw_status, run.status.terminal) == (Status.UNKNOWN, "expired", True)
    assert not run.status.is_error


def test_acp_sdk_runs_without_created_at_are_kept_on_a_stand_in_time() -> None:
    clock = FakeClock(datetime.fromisoformat("2025-12-05T18:31:00+00:00").timestamp())
    seen = fields.FirstSeen(clock)
    page = acp.parse_list(payload("acp/list_runtime_runs_sparse.json"), SERVER, 100, seen)
    assert not page.skips
    by_id = {run.id: run for run in page.runs}
    sparse = by_id.pop("run_11")
    assert (sparse.status, sparse.created_at, sparse.created_estimated) == (
        Status.COMPLETED,
        clock.now,
        True,
    )
    assert (sparse.invalid_fields, sparse.effective_duration_s) == (("createdAt",), None)
    assert sparse.attributes["agent_run.start_unknown"] == "true"
    assert [run.created_estimated for run in by_id.values()] == [False, False]
    clock.advance(30)
    again = acp.parse_list(payload("acp/list_runtime_runs_sparse.json"), SERVER, 100, seen)
    (again_sparse,) = [run for run in again.runs if run.id == "run_11"]
    assert again_sparse.created_at == sparse.created_at  # the first sighting, every poll


def test_acp_sdk_full_page_reads_every_run_on_its_own_times() -> None:
    page = acp.parse_list(payload("acp/list_runtime_runs.json"), SERVER, 100)
    assert len(page.runs) == 5
    assert not any(run.created_estimated or run.invalid_fields for run in page.runs)


def test_elizaos_sdk_started_run_without_started_at_stays_in_flight() -> None:
    clock = FakeClock(1_764_960_100.0)
    seen = fields.FirstSeen(clock)
    (run,) = elizaos.parse_list(payload("elizaos/list_runs_atypical.json"), AGENT, seen).runs
    assert (run.status, run.created_at, run.created_estimated) == (Status.RUNNING, clock.now, True)
    assert run.invalid_fields == ("startedAt",)
    clock.advance(30)
    (again,) = elizaos.parse_list(payload("elizaos/list_runs_atypical.json"), AGENT, seen).runs
    assert again.created_at == run.created_at


SERVER = "srv_8f2a1c"


def serve(body: Any, agent: str = AGENT) -> httpx.MockTransport:
    """Serve `body` as every list answer (and a name for the agent)."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/runs"):
            return httpx.Response(200, json=body)
        return httpx.Response(200, json={"success": True, "data": {"id": agent, "name": "A"}})

    return httpx.MockTransport(handler)


def exporter_for(
    tmp_path: Path, platform: str, agent: str, transport: httpx.MockTransport, clock: FakeClock
) -> Exporter:
    return mock_exporter(tmp_path, transport, clock, platform=platform, agent=agent)


def poll(exporter: Exporter) -> None:
    async def go() -> None:
        for runtime in exporter.runtimes:
            assert await exporter.poller.poll_once(runtime)

    asyncio.run(go())


def test_acp_runs_without_created_at_are_counted_once_across_the_lookback(tmp_path: Path) -> None:
    clock = FakeClock(datetime.fromisoformat("2025-12-05T18:31:00+00:00").timestamp())
    body = payload("acp/list_runtime_runs_sparse.json")
    exporter = exporter_for(tmp_path, "acp", SERVER, serve(body, SERVER), clock)
    value = exporter.registry.get_sample_value
    runs = {"source": "src", "platform": "acp", "agent_id": SERVER, "disposition": "none"}
    poll(exporter)
    assert value("agent_runs_total", runs | {"status": "completed"}) == 2  # run_11 and run_12
    assert value("agent_runs_total", runs | {"status": "failed"}) == 1
    invalid = {"source": "src", "field": "createdAt"}
    assert value("agent_runs_exporter_fields_invalid_total", invalid) == 1
    skipped = "agent_runs_exporter_runs_skipped_total"
    assert value(skipped, {"source": "src", "reason": "malformed_item"}) == 0
    # The stand-in time never moves the read position: it stays at the newest real createdAt.
    created_12 = datetime.fromisoformat("2025-12-05T18:30:00+00:00").timestamp()
    assert exporter.tracker.high_water("src", SERVER) == created_12
    for _ in range(3):  # still listed long past the lookback (and the prune margin) after
        clock.advance(3600)
        poll(exporter)
    assert value("agent_runs_total", runs | {"status": "completed"}) == 2
    assert value("agent_runs_exporter_fields_invalid_total", invalid) == 1


def test_elizaos_run_listed_without_any_time_is_kept_until_its_detail_counts_it(
    tmp_path: Path,
) -> None:
    clock = FakeClock(1_764_960_100.0)
    listed = payload("elizaos/list_runs_atypical.json")
    item = listed["data"]["runs"][0]
    answers = {"list": listed}
    detail = {
        "success": True,
        "data": {
            "summary": item | {"status": "completed", "startedAt": 1_764_960_080_000,
                               "endedAt": 1_764_960_150_000},
            "events": [
                {"type": "RUN_STARTED", "timestamp": 1_764_960_080_000, "data": {}},
                {"type": "RUN_ENDED", "timestamp": 1_764_960_150_000,
                 "data": {"status": "completed"}},
            ],
        },
    }  # fmt: skip

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/runs"):
            return httpx.Response(200, json=answers["list"])
        if path.endswith(item["runId"]):
            return httpx.Response(200, json=detail)
        return httpx.Response(200, json={"success": True, "data": {"id": AGENT, "name": "A"}})

    exporter = exporter_for(tmp_path, "elizaos", AGENT, httpx.MockTransport(handler), clock)
    value = exporter.registry.get_sample_value
    labels = {"source": "src", "platform": "elizaos", "agent_id": AGENT}
    poll(exporter)
    assert value("agent_runs_in_progress", labels | {"status": "running"}) == 1
    clock.advance(60)
    ended = item | {"status": "completed", "endedAt": 1_764_960_150_000}  # startedAt still null
    answers["list"] = {"success": True, "data": {"runs": [ended], "total": 1, "hasMore": False}}
    poll(exporter)
    assert value("agent_runs_total", labels | {"status": "completed", "disposition": "none"}) == 1
    assert value("agent_runs_in_progress", labels | {"status": "running"}) == 0
    duration = "agent_run_duration_seconds_sum"
    assert value(duration, labels | {"status": "completed"}) == pytest.approx(70.0)  # the detail's
    # The detail gave the start back: nothing was dropped in the end.
    invalid = {"source": "src", "field": "startedAt"}
    assert not value("agent_runs_exporter_fields_invalid_total", invalid)
