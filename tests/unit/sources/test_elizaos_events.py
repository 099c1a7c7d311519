"""ElizaOS event timelines (exporter.sources.elizaos_events): model calls nested under the action
that made them (`MODEL_USED.actionContext`), on a detail captured from a real 1.7.2 server and on
the simulator's details, down to the span tree."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from exporter.model import Run, SourceInfo
from exporter.sinks.traces.sink import TraceSink
from exporter.sources.elizaos import parse_detail, parse_list
from exporter.sources.elizaos_events import steps_of
from tests.unit.simclient import SimClient

CAPTURED = Path(__file__).parents[2] / "fixtures" / "elizaos-1.7.2"
SOURCE = SourceInfo(name="eliza", platform="elizaos")


def captured_detail() -> Any:
    return json.loads((CAPTURED / "detail-action.json").read_text())


def span_tree(run: Run) -> dict[int, ReadableSpan]:
    """Export `run` and return its spans by span id."""
    memory = InMemorySpanExporter()
    TraceSink(SimpleSpanProcessor(memory), environ={}).export(SOURCE, run)
    spans = memory.get_finished_spans()
    return {span.context.span_id: span for span in spans if span.context is not None}


def parent_of(span: ReadableSpan, spans: dict[int, ReadableSpan]) -> ReadableSpan | None:
    return None if span.parent is None else spans[span.parent.span_id]


def test_captured_model_calls_name_the_action_they_ran_in() -> None:
    steps = steps_of(captured_detail()["data"]["events"])
    actions = {step.call_id: step.name for step in steps if step.kind == "tool"}
    inside = [(step.name, actions[step.parent_call_id]) for step in steps if step.parent_call_id]
    assert inside == [("TEXT_LARGE", "REPLY"), ("TEXT_SMALL", "LOOKUP_ORDER")]
    outside = [step.name for step in steps if step.kind == "model" and not step.parent_call_id]
    assert outside == ["TEXT_EMBEDDING", "TEXT_SMALL", "TEXT_LARGE"]  # before any action


def test_captured_detail_nests_model_spans_under_their_action_span() -> None:
    body = captured_detail()
    summary = body["data"]["summary"]
    listed = parse_list({"success": True, "data": {"runs": [summary]}}, summary["entityId"])
    spans = span_tree(parse_detail(body, listed.runs[0]))
    parents = {
        span.name: parent.name
        for span in spans.values()
        if (parent := parent_of(span, spans)) is not None and parent.name.startswith("execute")
    }
    assert parents == {
        "chat TEXT_LARGE": "execute_tool REPLY",
        "chat TEXT_SMALL": "execute_tool LOOKUP_ORDER",
    }


def test_simulated_model_calls_nest_under_their_action_inside_the_root() -> None:
    sim = SimClient("elizaos", history=900, rate=0.5, failure_ratio=0.3, agents=1)
    sim.settle()
    nested = direct = 0
    for sim_run in sim.world.runs(sim.agent_id)[:40]:
        path = f"/api/agents/{sim.agent_id}/runs/{sim_run.id}"
        body = sim.json(path)
        listed = parse_list({"success": True, "data": {"runs": [body["data"]["summary"]]}}, "a")
        spans = span_tree(parse_detail(body, listed.runs[0]))
        (root,) = [span for span in spans.values() if span.parent is None]
        assert root.start_time is not None
        assert root.end_time is not None
        for span in spans.values():
            parent = parent_of(span, spans)
            if span.name.startswith("chat"):
                nested += parent is not root
                direct += parent is root
            assert root.start_time <= (span.start_time or 0) <= (span.end_time or 0)
            assert (span.end_time or 0) <= root.end_time
    assert nested > 0  # calls made by actions
    assert direct > 0  # and calls made before any action
