"""Tests for exporter.sinks.traces.sink: runs reconstructed as GenAI spans."""

from __future__ import annotations

import socket
import time
from collections.abc import Sequence
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpExporter,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from exporter.errors import ConfigError
from exporter.model import Run, SourceInfo, Status, ToolStep
from exporter.sinks.traces import ids
from exporter.sinks.traces.exporters import CountingSpanExporter, build_span_exporter
from exporter.sinks.traces.sink import TraceSink
from exporter.sinks.traces.spanfile import FileSpanExporter
from exporter.sinks.traces.spans import TRUNCATION_MARK, to_ns
from tests.e2e.otlp_receiver import OtlpReceiver

SOURCE = SourceInfo(name="conduit-prod", platform="conduit")
T0 = 1_700_000_000.25


def make_run(**overrides: Any) -> Run:
    fields: dict[str, Any] = {
        "id": "run-1",
        "agent_id": "agent-7",
        "agent_name": "Support Bot",
        "status": Status.COMPLETED,
        "raw_status": "completed",
        "created_at": T0,
        "completed_at": T0 + 12.0,
        "input_tokens": 120,
        "output_tokens": 45,
        "cost_usd": 0.0123,
        "conversation_id": "conv-9",
        "disposition": "resolved",
        "tool_steps": (
            ToolStep(name="search", input={"q": "refund"}, output=["a", "b"], call_id="c1"),
            ToolStep(name="lookup", input={"id": 3}, output={"ok": True}),
            ToolStep(name="reply", input="hi", output=None),
        ),
    }
    fields.update(overrides)
    return Run(**fields)


class Harness:
    """A TraceSink wired to an in-memory exporter."""

    def __init__(self, environ: dict[str, str] | None = None, **sink_options: Any) -> None:
        self.memory = InMemorySpanExporter()
        self.sink = TraceSink(
            SimpleSpanProcessor(self.memory), environ=environ or {}, **sink_options
        )

    def export(self, run: Run, source: SourceInfo = SOURCE) -> tuple[str, list[ReadableSpan]]:
        self.memory.clear()
        trace_id = self.sink.export(source, run)
        return trace_id, list(self.memory.get_finished_spans())


def split(spans: Sequence[ReadableSpan]) -> tuple[ReadableSpan, list[ReadableSpan]]:
    return spans[0], list(spans[1:])


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def ctx(span: ReadableSpan) -> Any:
    assert span.context is not None
    return span.context


# tree and ids


def test_root_and_one_child_per_step_in_order() -> None:
    _, spans = Harness().export(make_run())
    root, children = split(spans)
    assert root.name == "invoke_agent Support Bot"
    assert root.kind is SpanKind.CLIENT
    assert root.parent is None
    assert [child.name for child in children] == [
        "execute_tool search",
        "execute_tool lookup",
        "execute_tool reply",
    ]
    for child in children:
        assert child.kind is SpanKind.INTERNAL
        assert child.parent is not None
        assert child.parent.span_id == ctx(root).span_id
        assert ctx(child).trace_id == ctx(root).trace_id
        assert ctx(child).trace_flags.sampled


def test_root_name_falls_back_to_agent_id() -> None:
    _, spans = Harness().export(make_run(agent_name=None))
    assert spans[0].name == "invoke_agent agent-7"


def test_run_without_steps_gives_only_root() -> None:
    _, spans = Harness().export(make_run(tool_steps=None))
    assert len(spans) == 1


def test_span_ids_come_from_ids_module() -> None:
    _, spans = Harness().export(make_run())
    root, children = split(spans)
    assert f"{ctx(root).span_id:016x}" == ids.span_id("conduit-prod", "run-1", "root")
    search, *rest = children  # a step with a call id: by that id, the others by position
    assert ctx(search).span_id == ids.call_span_id_value("conduit-prod", "run-1", "c1")
    for index, child in enumerate(rest, start=1):
        assert f"{ctx(child).span_id:016x}" == ids.span_id("conduit-prod", "run-1", index)


@pytest.mark.parametrize(
    ("upstream", "expected"),
    [
        ("4BF92F3577B34DA6A3CE929D0E0E4736", "4bf92f3577b34da6a3ce929d0e0e4736"),
        ("a3ce929d0e0e4736", "0000000000000000a3ce929d0e0e4736"),
        ("not-a-trace-id", ids.run_trace_id("conduit-prod", "run-1", None)),
        (None, ids.run_trace_id("conduit-prod", "run-1", None)),
    ],
)
def test_trace_id_from_upstream_or_derived(upstream: str | None, expected: str) -> None:
    trace_id, spans = Harness().export(make_run(trace_id=upstream))
    assert trace_id == expected
    assert all(f"{ctx(span).trace_id:032x}" == expected for span in spans)


def test_reexport_is_byte_identical() -> None:
    harness = Harness(capture_content=True)
    _, first = harness.export(make_run())
    _, second = harness.export(make_run())
    assert encode_spans(first).SerializeToString() == encode_spans(second).SerializeToString()


def test_batch_span_processor_accepts_reconstructed_spans() -> None:
    memory = InMemorySpanExporter()
    sink = TraceSink(BatchSpanProcessor(memory), environ={})
    sink.export(SOURCE, make_run())
    assert sink.force_flush(5.0)
    assert len(memory.get_finished_spans()) == 4
    sink.shutdown(5.0)


# timing


def test_root_spans_the_run() -> None:
    _, spans = Harness().export(make_run())
    assert spans[0].start_time == to_ns(T0)
    assert spans[0].end_time == to_ns(T0 + 12.0)


def test_root_end_from_duration_or_zero_length() -> None:
    _, spans = Harness().export(make_run(completed_at=None, duration_s=3.5))
    assert spans[0].end_time == to_ns(T0 + 3.5)
    _, spans = Harness().export(make_run(completed_at=None, status=Status.RUNNING))
    assert spans[0].end_time == spans[0].start_time == to_ns(T0)


def test_synthesized_steps_fill_equal_slots_inside_root() -> None:
    _, spans = Harness().export(make_run())
    root, children = split(spans)
    assert root.start_time is not None
    slot = 4_000_000_000
    for index, child in enumerate(children):
        assert child.start_time == root.start_time + index * slot
        assert child.end_time == root.start_time + (index + 1) * slot
        assert attrs(child)["agent_run.tool.timing"] == "synthesized"
    assert children[-1].end_time == root.end_time


def test_synthesized_steps_stay_inside_zero_length_root() -> None:
    _, spans = Harness().export(make_run(completed_at=None))
    root, children = split(spans)
    assert all(child.start_time == child.end_time == root.start_time for child in children)


def test_reported_step_times_are_used() -> None:
    steps = (
        ToolStep(name="fetch", started_at=T0 + 1.0, ended_at=T0 + 2.5),
        ToolStep(name="think"),
    )
    _, spans = Harness().export(make_run(tool_steps=steps))
    _, (reported, synthesized) = split(spans)
    assert (reported.start_time, reported.end_time) == (to_ns(T0 + 1.0), to_ns(T0 + 2.5))
    assert attrs(reported)["agent_run.tool.timing"] == "reported"
    assert attrs(synthesized)["agent_run.tool.timing"] == "synthesized"
    assert synthesized.start_time == to_ns(T0 + 6.0)
    assert "agent_run.tool.reported_start" not in attrs(reported)


def test_reported_times_outside_the_root_are_clamped_into_it_and_kept() -> None:
    # ElizaOS files a model call late, or one of another run: up to seconds outside the root.
    early = ToolStep(name="chat", kind="model", started_at=T0 - 5.8, ended_at=T0 - 5.0)
    late = ToolStep(name="fetch", started_at=T0 + 1.0, ended_at=T0 + 1000.0)
    _, spans = Harness().export(make_run(tool_steps=(early, late)))
    root, (before, after) = split(spans)
    assert root.start_time is not None
    assert root.end_time is not None
    for child in (before, after):
        assert child.start_time is not None
        assert child.end_time is not None
        assert root.start_time <= child.start_time <= child.end_time <= root.end_time
    assert attrs(before)["agent_run.tool.reported_start"] == T0 - 5.8
    assert attrs(after)["agent_run.tool.reported_end"] == T0 + 1000.0


# attributes


def test_root_contract_attributes() -> None:
    run = make_run(trace_id="abc", attributes={"team": "support"})
    _, spans = Harness().export(run)
    assert attrs(spans[0]) == {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.provider.name": "conduit",
        "gen_ai.agent.id": "agent-7",
        "gen_ai.agent.name": "Support Bot",
        "gen_ai.conversation.id": "conv-9",
        "gen_ai.usage.input_tokens": 120,
        "gen_ai.usage.output_tokens": 45,
        "agent_run.id": "run-1",
        "agent_run.status": "completed",
        "agent_run.raw_status": "completed",
        "agent_run.disposition": "resolved",
        "agent_run.cost_usd": 0.0123,
        "agent_run.upstream_trace_id": "abc",
        "agent_run.source": "conduit-prod",
        "team": "support",
    }


def test_unknown_values_are_absent_not_zero() -> None:
    run = Run(id="r", agent_id="a", status=Status.COMPLETED, raw_status="done", created_at=T0)
    _, spans = Harness().export(run)
    assert set(attrs(spans[0])) == {
        "gen_ai.operation.name",
        "gen_ai.provider.name",
        "gen_ai.agent.id",
        "agent_run.id",
        "agent_run.status",
        "agent_run.raw_status",
        "agent_run.source",
    }


def test_run_attributes_never_override_contract() -> None:
    _, spans = Harness().export(make_run(attributes={"agent_run.id": "spoof"}))
    assert attrs(spans[0])["agent_run.id"] == "run-1"


def test_step_attributes_without_content_by_default() -> None:
    _, spans = Harness().export(make_run())
    _, children = split(spans)
    assert attrs(children[0]) == {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "search",
        "gen_ai.tool.call.id": "c1",
        "agent_run.tool.timing": "synthesized",
    }
    assert "gen_ai.tool.call.id" not in attrs(children[1])


def test_content_captured_when_enabled() -> None:
    _, spans = Harness(capture_content=True).export(make_run())
    _, (search, lookup, reply) = split(spans)
    assert attrs(search)["gen_ai.tool.call.arguments"] == '{"q":"refund"}'
    assert attrs(search)["gen_ai.tool.call.result"] == '["a","b"]'
    assert attrs(lookup)["gen_ai.tool.call.result"] == '{"ok":true}'
    assert attrs(reply)["gen_ai.tool.call.arguments"] == '"hi"'
    assert "gen_ai.tool.call.result" not in attrs(reply)


def test_content_is_truncated() -> None:
    step = ToolStep(name="big", input={"text": "é" * 100})
    _, spans = Harness(capture_content=True, max_content_chars=20).export(
        make_run(tool_steps=(step,))
    )
    arguments = attrs(spans[1])["gen_ai.tool.call.arguments"]
    assert arguments == '{"text":"' + "é" * 11 + TRUNCATION_MARK


# status


@pytest.mark.parametrize(
    ("status", "error_type"), [(Status.FAILED, "failed"), (Status.TIMEOUT, "timeout")]
)
def test_failed_runs_are_errors(status: Status, error_type: str) -> None:
    _, spans = Harness().export(make_run(status=status, raw_status="x", error="boom " * 500))
    root = spans[0]
    assert root.status.status_code is StatusCode.ERROR
    assert root.status.description is not None
    assert root.status.description.startswith("boom boom")
    assert root.status.description.endswith(TRUNCATION_MARK)
    assert attrs(root)["error.type"] == error_type


@pytest.mark.parametrize("status", [Status.COMPLETED, Status.CANCELLED])
def test_other_runs_are_unset(status: Status) -> None:
    _, spans = Harness().export(make_run(status=status))
    assert spans[0].status.status_code is StatusCode.UNSET
    assert "error.type" not in attrs(spans[0])


def test_failed_step_is_error() -> None:
    steps = (ToolStep(name="pay", error="card declined"), ToolStep(name="ok"))
    _, spans = Harness().export(make_run(tool_steps=steps))
    _, (failed, fine) = split(spans)
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.status.description == "card declined"
    assert attrs(failed)["error.type"] == "tool_error"
    assert fine.status.status_code is StatusCode.UNSET
    assert "error.type" not in attrs(fine)


# resource


@pytest.mark.parametrize(
    ("source", "environ", "expected"),
    [
        (SourceInfo("s", "p", service_name="explicit"), {"OTEL_SERVICE_NAME": "env"}, "explicit"),
        (SourceInfo("s", "p"), {"OTEL_SERVICE_NAME": "env"}, "env"),
        (SourceInfo("s", "p"), {"OTEL_RESOURCE_ATTRIBUTES": "service.name=attr"}, "attr"),
        (SourceInfo("s", "p"), {}, "s"),
    ],
)
def test_service_name_precedence(
    source: SourceInfo, environ: dict[str, str], expected: str
) -> None:
    _, spans = Harness(environ).export(make_run(), source)
    assert spans[0].resource.attributes["service.name"] == expected


def test_resource_merges_resource_attributes_and_sdk_defaults() -> None:
    environ = {"OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=prod,team=a%20b,broken"}
    _, spans = Harness(environ).export(make_run())
    resource = spans[0].resource.attributes
    assert resource["deployment.environment"] == "prod"
    assert resource["team"] == "a b"
    assert resource["telemetry.sdk.language"] == "python"
    assert resource["service.name"] == "conduit-prod"
    assert "broken" not in resource


def test_resource_is_cached_per_source() -> None:
    harness = Harness()
    _, first = harness.export(make_run())
    _, second = harness.export(make_run(id="run-2"))
    _, other = harness.export(make_run(), SourceInfo("other", "runtype"))
    assert first[0].resource is second[0].resource
    assert other[0].resource is not first[0].resource


# build_span_exporter


def build(environ: dict[str, str], **overrides: Any) -> SpanExporter | None:
    options: dict[str, Any] = {
        "endpoint": None,
        "protocol": None,
        "file_path": "unused.jsonl",
        "timeout_s": 1.0,
        "environ": environ,
    }
    options.update(overrides)
    return build_span_exporter(options.pop("kind", "otlp"), **options)


@pytest.mark.parametrize(
    "environ",
    [{}, {"OTEL_TRACES_EXPORTER": "none"}, {"OTEL_SDK_DISABLED": "TRUE"}],
)
def test_tracing_off(environ: dict[str, str]) -> None:
    kind = "none" if not environ else "otlp"
    assert build(environ, kind=kind) is None


@pytest.mark.parametrize(
    ("endpoint", "environ", "expected"),
    [
        ("http://collector:4318", {}, "http://collector:4318/v1/traces"),
        ("http://collector:4318/", {}, "http://collector:4318/v1/traces"),
        ("http://c:4318/v1/traces", {}, "http://c:4318/v1/traces"),
        (
            "http://explicit:4318",
            {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://env/custom"},
            "http://explicit:4318/v1/traces",
        ),
        (None, {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://env/custom"}, "http://env/custom"),
        (
            None,
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://base:4318/",
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "",
            },
            "http://base:4318/v1/traces",
        ),
        (None, {}, "http://127.0.0.1:4318/v1/traces"),
    ],
)
def test_http_endpoint_precedence(
    endpoint: str | None, environ: dict[str, str], expected: str
) -> None:
    exporter = build(environ, endpoint=endpoint)
    assert isinstance(exporter, HttpExporter)
    assert exporter._endpoint == expected
    exporter.shutdown()


@pytest.mark.parametrize(
    ("protocol", "environ", "expected_type"),
    [
        (None, {}, HttpExporter),
        (None, {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, GrpcExporter),
        (
            None,
            {
                "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
            },
            HttpExporter,
        ),
        ("http/protobuf", {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, HttpExporter),
        ("grpc", {}, GrpcExporter),
    ],
)
def test_protocol_precedence(
    protocol: str | None, environ: dict[str, str], expected_type: type[SpanExporter]
) -> None:
    exporter = build(environ, protocol=protocol)
    assert type(exporter) is expected_type
    assert exporter is not None
    exporter.shutdown()


@pytest.mark.parametrize(
    ("endpoint", "environ", "expected"),
    [
        (None, {}, "127.0.0.1:4317"),
        ("http://collector:4317", {}, "collector:4317"),
        (None, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://base:4317"}, "base:4317"),
    ],
)
def test_grpc_endpoint_precedence(
    endpoint: str | None, environ: dict[str, str], expected: str
) -> None:
    exporter = build(environ, endpoint=endpoint, protocol="grpc")
    assert isinstance(exporter, GrpcExporter)
    assert exporter._endpoint == expected
    exporter.shutdown()


def test_bad_kind_or_protocol_is_rejected() -> None:
    with pytest.raises(ValueError, match="kind"):
        build({}, kind="zipkin")
    with pytest.raises(ConfigError, match="OTEL_EXPORTER_OTLP_PROTOCOL: unsupported OTLP protocol"):
        build({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"})


def test_file_kind_builds_file_exporter() -> None:
    exporter = build({}, kind="file", file_path="/tmp/x/spans.jsonl")
    assert isinstance(exporter, FileSpanExporter)


def test_headers_from_environ_with_explicit_endpoint() -> None:
    environ = {"OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer%20t,x-tenant=acme"}
    with OtlpReceiver() as receiver:
        exporter = build(environ, endpoint=receiver.url)
        assert exporter is not None
        harness = Harness()
        _, spans = harness.export(make_run())
        assert exporter.export(spans) is SpanExportResult.SUCCESS
        exporter.shutdown()
        headers = receiver.request_headers()[0]
    assert headers["authorization"] == "Bearer t"
    assert headers["x-tenant"] == "acme"


# counting


class BrokenExporter(SpanExporter):
    """An exporter that fails the way a bad collector client might."""

    def __init__(self, *, raises: bool) -> None:
        self.raises = raises

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self.raises:
            raise ConnectionError("collector gone")
        return SpanExportResult.FAILURE


def test_counting_exporter_reports_results(caplog: pytest.LogCaptureFixture) -> None:
    results: list[tuple[str, int]] = []
    _, spans = Harness().export(make_run())
    CountingSpanExporter(InMemorySpanExporter(), lambda *r: results.append(r)).export(spans)
    CountingSpanExporter(BrokenExporter(raises=False), lambda *r: results.append(r)).export(spans)
    outcome = CountingSpanExporter(
        BrokenExporter(raises=True), lambda *r: results.append(r)
    ).export(spans[:1])
    assert outcome is SpanExportResult.FAILURE
    assert results == [("success", 4), ("failure", 4), ("failure", 1)]
    assert "span exporter raised" in caplog.text


def test_build_wraps_with_counter(tmp_path: Any) -> None:
    results: list[tuple[str, int]] = []
    exporter = build(
        {}, kind="file", file_path=str(tmp_path / "s.jsonl"), on_result=lambda *r: results.append(r)
    )
    assert isinstance(exporter, CountingSpanExporter)
    _, spans = Harness().export(make_run())
    exporter.export(spans)
    assert results == [("success", 4)]


def test_unreachable_collector_neither_raises_nor_blocks() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    results: list[tuple[str, int]] = []
    exporter = build(
        {},
        endpoint=f"http://127.0.0.1:{port}",
        timeout_s=0.5,
        on_result=lambda *r: results.append(r),
    )
    assert exporter is not None
    sink = TraceSink(BatchSpanProcessor(exporter, schedule_delay_millis=10), environ={})
    began = time.monotonic()
    sink.export(SOURCE, make_run())
    assert time.monotonic() - began < 0.5
    sink.shutdown(5.0)
    assert results == [("failure", 4)]


# platforms beyond Conduit: model calls, reported timings, sub-agent links, total tokens


def test_model_calls_become_chat_spans_with_reported_times() -> None:
    call = ToolStep(
        "TEXT_LARGE",
        kind="model",
        provider="openai",
        started_at=T0 + 1.0,
        ended_at=T0 + 1.42,
        input_tokens=90,
    )
    _, spans = Harness(capture_content=True).export(make_run(tool_steps=(call,)))
    _, (model,) = split(spans)
    assert model.name == "chat TEXT_LARGE"
    assert model.kind == SpanKind.CLIENT
    a = attrs(model)
    assert a["gen_ai.operation.name"] == "chat"
    assert (a["gen_ai.request.model"], a["gen_ai.provider.name"]) == ("TEXT_LARGE", "openai")
    assert (a["gen_ai.usage.input_tokens"], a["agent_run.tool.timing"]) == (90, "reported")
    assert "gen_ai.usage.output_tokens" not in a
    assert "gen_ai.tool.call.arguments" not in a  # content capture is for tool calls
    assert (model.start_time, model.end_time) == (to_ns(T0 + 1.0), to_ns(T0 + 1.42))


def test_a_sub_agent_run_links_to_its_parent_root_span() -> None:
    source = SourceInfo(name="rt", platform="runtype")
    _, spans = Harness().export(make_run(id="child", parent_run_id="parent"), source)
    root, _ = split(spans)
    (link,) = root.links
    assert f"{link.context.trace_id:032x}" == ids.run_trace_id("rt", "parent", None)
    assert f"{link.context.span_id:016x}" == ids.span_id("rt", "parent", "root")
    assert attrs(root)["agent_run.parent_run_id"] == "parent"
    _, parent_spans = Harness().export(make_run(id="parent"), source)
    assert ctx(parent_spans[0]).span_id == link.context.span_id
    assert not parent_spans[0].links


def test_root_starts_at_the_reported_start_and_carries_total_tokens() -> None:
    run = make_run(
        started_at=T0 + 30.0,
        completed_at=T0 + 60.0,
        total_tokens=450,
        input_tokens=None,
        output_tokens=None,
    )
    _, spans = Harness().export(run)
    root, _ = split(spans)
    assert (root.start_time, root.end_time) == (to_ns(T0 + 30.0), to_ns(T0 + 60.0))
    a = attrs(root)
    assert a["agent_run.usage.total_tokens"] == 450
    assert "gen_ai.usage.input_tokens" not in a
