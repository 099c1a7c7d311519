"""Span trees (exporter.sinks.traces.spans): sub-agent runs under their parent's tool call, model
calls under their action, every child inside its root. Built through the TraceSink into an
InMemorySpanExporter."""

from __future__ import annotations

from dataclasses import replace

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from exporter.model import Run, SourceInfo, Status, ToolStep
from exporter.sinks.traces import ids
from exporter.sinks.traces.sink import TraceSink
from exporter.sinks.traces.spans import to_ns
from exporter.sources import runtype, runtype_tools
from tests.unit.simclient import SimClient
from tests.unit.sinks.test_traces import T0, Harness, attrs, ctx, make_run, split

RUNTYPE = SourceInfo(name="rt", platform="runtype")


def export(run: Run, source: SourceInfo = RUNTYPE) -> tuple[ReadableSpan, list[ReadableSpan]]:
    _, spans = Harness().export(run, source)
    return split(spans)


def parent_id(span: ReadableSpan) -> int | None:
    return None if span.parent is None else span.parent.span_id


def runtype_run(run_id: str, **changes: object) -> Run:
    tools = (ToolStep("spawn_researcher", call_id="toolu_sub", record_id="row-1"),)
    return make_run(id=run_id, tool_steps=tools, **changes)


# sub-agent runs


def test_a_sub_agent_run_nests_under_its_parents_tool_call_span() -> None:
    parent_root, (spawn,) = export(runtype_run("exec_parent"))
    child = runtype_run("exec_child", parent_run_id="exec_parent", parent_call_id="toolu_sub")
    child_root, (child_tool,) = export(child)
    assert ctx(child_root).trace_id == ctx(parent_root).trace_id == ctx(spawn).trace_id
    assert Harness().export(child, RUNTYPE)[0] == f"{ctx(parent_root).trace_id:032x}"
    assert parent_id(child_root) == ctx(spawn).span_id
    assert parent_id(child_tool) == ctx(child_root).span_id  # its own steps under its own root
    (link,) = child_root.links  # the link to the parent's root stays
    assert (link.context.trace_id, link.context.span_id) == (
        ctx(parent_root).trace_id,
        ctx(parent_root).span_id,
    )
    a = attrs(child_root)
    assert (a["agent_run.parent_run_id"], a["agent_run.parent_call_id"]) == (
        "exec_parent",
        "toolu_sub",
    )


def test_a_whole_lineage_shares_the_root_runs_trace() -> None:
    top, (top_call,) = export(runtype_run("exec_a"))
    middle = runtype_run(
        "exec_b", parent_run_id="exec_a", parent_call_id="toolu_sub", root_run_id="exec_a"
    )
    middle_root, (middle_call,) = export(middle)
    leaf = runtype_run(
        "exec_c", parent_run_id="exec_b", parent_call_id="toolu_sub", root_run_id="exec_a"
    )
    leaf_root, _ = export(leaf)
    assert {ctx(s).trace_id for s in (top, middle_root, leaf_root)} == {ctx(top).trace_id}
    assert parent_id(middle_root) == ctx(top_call).span_id
    assert parent_id(leaf_root) == ctx(middle_call).span_id
    assert attrs(leaf_root)["agent_run.root_run_id"] == "exec_a"
    assert ids.trace_of("rt", leaf) == f"{ctx(top).trace_id:032x}"


def test_without_the_parents_tool_call_a_sub_agent_keeps_its_trace_and_a_link() -> None:
    parent_root, _ = export(runtype_run("exec_parent"))
    child_root, _ = export(runtype_run("exec_child", parent_run_id="exec_parent"))
    assert child_root.parent is None
    assert ctx(child_root).trace_id == ids.trace_id_value("rt", "exec_child", None)
    (link,) = child_root.links
    assert link.context.span_id == ctx(parent_root).span_id
    assert "agent_run.parent_call_id" not in attrs(child_root)


def test_a_tool_call_span_id_depends_only_on_run_and_call_ids() -> None:
    early = runtype_run("exec_p")
    later = replace(early, tool_steps=(ToolStep("first"), *(early.tool_steps or ())))
    _, (spawn,) = export(early)
    _, (_first, moved) = export(later)  # another position, the same span id
    assert ctx(spawn).span_id == ctx(moved).span_id
    assert ctx(spawn).span_id == ids.call_span_id_value("rt", "exec_p", "toolu_sub")


def test_a_nested_run_is_sampled_with_its_lineage() -> None:
    def child(n: int) -> Run:
        return runtype_run(f"c{n}", parent_run_id=f"p{n}", parent_call_id="toolu_sub")

    kept = [ids.keep_trace("rt", runtype_run(f"p{n}"), 0.5) for n in range(50)]
    assert set(kept) == {True, False}
    assert [ids.keep_trace("rt", child(n), 0.5) for n in range(50)] == kept
    assert ids.keep_trace("rt", replace(child(0), status=Status.FAILED), 0.0)  # failures: always


def test_the_row_id_is_never_the_tool_call_id() -> None:
    steps = (
        ToolStep("search", call_id="toolu_1", record_id="row-1"),
        ToolStep("send", record_id="row-2"),
    )
    _, (search, send) = export(make_run(tool_steps=steps))
    assert (attrs(search)["gen_ai.tool.call.id"], attrs(search)["agent_run.tool.record_id"]) == (
        "toolu_1",
        "row-1",
    )
    assert "gen_ai.tool.call.id" not in attrs(send)
    assert attrs(send)["agent_run.tool.record_id"] == "row-2"


def test_simulated_sub_agents_hang_under_existing_tool_call_spans() -> None:
    sim = SimClient("runtype", history=600, rate=1.0, agents=1)
    sim.settle()
    memory = InMemorySpanExporter()
    sink = TraceSink(SimpleSpanProcessor(memory), environ={})
    path = f"/v1/agents/{sim.agent_id}/executions"
    runs, cursor = [], None
    while True:  # every execution, so every parent is there too
        body = sim.json(path, limit=100, **({"cursor": cursor} if cursor else {}))
        page, cursor = runtype.parse_list_page(body, sim.agent_id)
        runs += page.runs
        if not page.has_more:
            break
    for run in runs:
        calls = runtype_tools.parse_tool_calls(sim.json(f"{path}/{run.id}/tool-calls"))
        sink.export(RUNTYPE, replace(run, tool_steps=calls))
    spans = {(ctx(s).trace_id, ctx(s).span_id): s for s in memory.get_finished_spans()}
    roots = [s for s in spans.values() if s.name.startswith("invoke_agent")]
    assert len(roots) == len(runs)
    nested = [s for s in roots if s.parent is not None]
    assert 0 < len(nested) < sum("agent_run.parent_run_id" in attrs(s) for s in roots)
    for root in nested:
        assert root.parent is not None
        spawn = spans[(root.parent.trace_id, root.parent.span_id)]  # present, in the same trace
        assert spawn.name.startswith("execute_tool")
        assert attrs(spawn)["gen_ai.tool.call.id"] == attrs(root)["agent_run.parent_call_id"]


# model calls inside actions (ElizaOS actionContext)


def action_and_calls(*calls: ToolStep) -> Run:
    action = ToolStep("REPLY", call_id="act-1", started_at=T0 + 1.0, ended_at=T0 + 4.0)
    return make_run(tool_steps=(action, *calls))


def model(parent: str | None, start: float = 2.0, end: float = 3.0) -> ToolStep:
    return ToolStep(
        "TEXT_LARGE", kind="model", started_at=T0 + start, ended_at=T0 + end, parent_call_id=parent
    )


def test_a_model_call_made_by_an_action_is_its_child() -> None:
    root, (action, inside, outside) = export(action_and_calls(model("act-1"), model(None)))
    assert parent_id(action) == ctx(root).span_id
    assert parent_id(inside) == ctx(action).span_id
    assert parent_id(outside) == ctx(root).span_id


def test_a_model_call_naming_an_unknown_action_falls_back_to_the_root() -> None:
    root, (_action, orphan) = export(action_and_calls(model("act-gone")))
    assert parent_id(orphan) == ctx(root).span_id


def test_a_nested_child_is_still_clamped_inside_the_root() -> None:
    root, (_action, late) = export(action_and_calls(model("act-1", start=11.0, end=20.0)))
    assert root.end_time is not None
    assert (late.start_time, late.end_time) == (to_ns(T0 + 11.0), root.end_time)
    assert attrs(late)["agent_run.tool.reported_end"] == T0 + 20.0


@pytest.mark.parametrize(
    "steps",
    [
        (  # each names the other: no cycle, both under the root
            ToolStep("a", call_id="x", parent_call_id="y"),
            ToolStep("b", call_id="y", parent_call_id="x"),
        ),
        (ToolStep("self", call_id="x", parent_call_id="x"),),
    ],
)
def test_steps_naming_each_other_stay_under_the_root(steps: tuple[ToolStep, ...]) -> None:
    root, children = export(make_run(tool_steps=steps))
    assert {parent_id(child) for child in children} == {ctx(root).span_id}


def test_repeated_call_ids_still_give_distinct_span_ids() -> None:
    steps = (ToolStep("a", call_id="dup"), ToolStep("b", call_id="dup"), ToolStep("c"))
    root, children = export(make_run(tool_steps=steps))
    assert len({ctx(span).span_id for span in (root, *children)}) == 4
