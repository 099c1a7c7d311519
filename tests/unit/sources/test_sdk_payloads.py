"""Payloads built to the official SDKs' models (tests/fixtures/sdk-payloads): no run is dropped for
its status or for one malformed optional field.

`runtype-sdk` 5.5.0 types `totalTokens` as "any" and `status` as an open enum; `@elizaos/api-client`
1.7.2 has a detail whose `RUN_ENDED` carries the error.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import yaml
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from runtype._generated.agents import types as sdk  # runtype-sdk, a dev dependency

from exporter.app import Exporter
from exporter.config.models import load_settings
from exporter.model import Run, SourceInfo, Status
from exporter.sinks.traces.sink import TraceSink
from exporter.sources import elizaos, runtype
from tests.unit.fakeclock import FakeClock

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
    steps = runtype.parse_tool_calls(body)
    assert [step.call_id for step in steps] == ["call_abc", None, "call_def"]
    assert [step.record_id for step in steps] == [call["id"] for call in body["toolCalls"]]


def test_runtype_sdk_sub_agent_nests_under_the_call_that_started_it() -> None:
    page, _ = runtype.parse_list_page(runtype_page(), AGENT)
    runs = {run.id: run for run in page.runs}
    calls = payload("runtype/tool_calls.json")
    calls["toolCalls"][0]["toolCallId"] = "call_sub_1"  # the call exec_0003 names
    parent = replace(runs["exec_0002"], tool_steps=runtype.parse_tool_calls(calls))
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
    config = {
        "poll_interval": "5s",
        "lookback": "1h",
        "state": {"path": str(tmp_path / "state.db")},
        "traces": {"exporter": "none"},
        "sources": [
            {
                "name": "rt",
                "platform": "runtype",
                "base_url": "http://runtype",
                "token": "rt-test-token",
                "agents": [AGENT],
                "max_requests_per_minute": 0,
            }
        ],
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    clock = FakeClock(datetime.fromisoformat(at).timestamp())
    exporter = Exporter(
        load_settings(path, environ={}),
        clock=clock,
        transport=serve_runtype(executions),
        environ={},
    )

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
