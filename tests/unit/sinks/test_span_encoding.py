"""Our OTLP/protobuf encoding: byte for byte what OTel's `encode_spans` gives, decoded the same."""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import (
    Link,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
)

from exporter.model import SourceInfo, ToolStep
from exporter.model import Status as RunStatus
from exporter.sinks.traces import span_encoding
from exporter.sinks.traces.span_encoding import encode_request, varint
from exporter.sinks.traces.spans import RunSpan
from tests.unit.sinks.test_traces import T0, Harness, make_run

CONTEXT = SpanContext(0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331, False)
PARENT = SpanContext(CONTEXT.trace_id, 0x00F067AA0BA902B7, False)


def otel(spans: Sequence[ReadableSpan]) -> bytes:
    data: bytes = encode_spans(spans).SerializePartialToString()
    return data


def assert_same(spans: Sequence[ReadableSpan], *, direct: bool = True) -> None:
    """Check our bytes against OTel's, and both decoded; `direct`: without OTel's help."""
    if direct:
        span_encoding._request(spans)  # raises Unsupported if it would hand them to OTel
    ours, theirs = encode_request(spans), otel(spans)
    decoded = ExportTraceServiceRequest.FromString(ours)
    assert decoded == ExportTraceServiceRequest.FromString(theirs)
    assert ours == theirs


def span(**overrides: Any) -> ReadableSpan:
    fields: dict[str, Any] = {
        "name": "execute_tool search",
        "context": CONTEXT,
        "parent": PARENT,
        "resource": Resource({"service.name": "s"}),
        "attributes": {"gen_ai.operation.name": "execute_tool"},
        "kind": SpanKind.INTERNAL,
        "status": Status(StatusCode.UNSET),
        "start_time": 1_700_000_000_000_000_000,
        "end_time": 1_700_000_001_000_000_000,
        "instrumentation_scope": InstrumentationScope("agent-runs-exporter", "0.1.0"),
    }
    fields.update(overrides)
    return RunSpan(**fields)


def run_spans(capture: bool, **run_fields: Any) -> list[ReadableSpan]:
    harness = Harness(capture_content=capture)
    return harness.export(make_run(**run_fields))[1]


# the spans the exporter builds


@pytest.mark.parametrize("capture", [False, True])
def test_a_run_encodes_as_otel_does(capture: bool) -> None:
    assert_same(run_spans(capture))


def test_failed_runs_model_calls_links_and_reported_times_encode_as_otel_does() -> None:
    steps = (
        ToolStep("TEXT_LARGE", kind="model", provider="openai", input_tokens=90, output_tokens=7),
        ToolStep("pay", error="card declined " * 20, started_at=T0 + 1, ended_at=T0 + 2),
        ToolStep("", input={"q": "é" * 300}, output=[1, 2.5, True, None], call_id="c" * 200),
    )
    spans = run_spans(
        True,
        status=RunStatus.FAILED,
        error="boom",
        parent_run_id="parent-1",
        tool_steps=steps,
        attributes={"team": "", "emoji": "🚀"},
        total_tokens=2**40,
    )
    assert spans[0].links
    assert_same(spans)


def test_runs_of_many_sources_group_by_resource_in_order_of_appearance() -> None:
    harness = Harness()
    other = SourceInfo("other", "runtype")
    spans = [
        *harness.export(make_run(id="a"))[1],
        *harness.export(make_run(id="b"), other)[1],
        *harness.export(make_run(id="c"))[1],
    ]
    assert_same(spans)
    assert len(ExportTraceServiceRequest.FromString(encode_request(spans)).resource_spans) == 2


def test_equal_resources_are_merged_as_otel_merges_them() -> None:
    spans = [
        span(resource=Resource({"service.name": "s", "a": "1"})),
        span(resource=Resource({"a": "1", "service.name": "s"})),
        span(instrumentation_scope=InstrumentationScope("agent-runs-exporter", "0.1.0")),
        span(instrumentation_scope=InstrumentationScope("other", schema_url="https://x")),
        span(instrumentation_scope=None),
    ]
    assert_same(spans)


def test_the_spans_we_build_say_they_are_plain() -> None:
    assert all(isinstance(built, RunSpan) and built.plain for built in run_spans(True))


# every field and value kind


@pytest.mark.parametrize(
    "value",
    [
        "",
        "x" * 127,
        "x" * 128,
        "x" * 20_000,
        "日本語",
        True,
        False,
        0,
        -1,
        2**63 - 1,
        -(2**63),
        0.0,
        -1.5,
        float("inf"),
    ],
)
def test_attribute_values_encode_as_otel_does(value: object) -> None:
    assert_same([span(attributes={"k": value, "": value, "long." * 40: value})])


@pytest.mark.parametrize(
    "overrides",
    [
        {"parent": None},
        {"parent": SpanContext(PARENT.trace_id, PARENT.span_id, is_remote=True)},
        {"name": ""},
        {"start_time": None, "end_time": None},
        {"start_time": 0, "end_time": 5},
        {"attributes": None},
        {"attributes": {}},
        {"kind": SpanKind.SERVER},
        {"kind": SpanKind.CONSUMER},
        {"status": Status(StatusCode.OK)},
        {"status": Status(StatusCode.ERROR, "bad " * 50)},
        {"status": Status(StatusCode.ERROR)},
        {"links": [Link(CONTEXT), Link(SpanContext(1, 2, is_remote=True), {"a": 1})]},
        {"resource": Resource({})},
        {"resource": Resource({"service.name": "s"}, schema_url="https://schema")},
        {"instrumentation_scope": InstrumentationScope("n", "v", "https://s", {"a": "b"})},
    ],
)
def test_span_fields_encode_as_otel_does(overrides: dict[str, Any]) -> None:
    assert_same([span(**overrides)])


def test_an_empty_batch_is_an_empty_request() -> None:
    assert encode_request([]) == otel([]) == b""


def attribute_value(rng: random.Random) -> object:
    kind = rng.randrange(4)
    if kind == 0:
        return "".join(rng.choice("aé日🚀\x00 ") for _ in range(rng.choice([0, 3, 60, 200])))
    if kind == 1:
        return rng.random() < 0.5
    if kind == 2:
        return rng.randint(-(2**63), 2**63 - 1) >> rng.randrange(64)
    return rng.uniform(-1e300, 1e300)


def attributes(seed: int) -> dict[str, object]:
    rng = random.Random(seed)  # seeded, not hypothesis: see tests/unit/sinks/test_redaction.py
    keys = ["", "k", "gen_ai.tool.name", "x" * 130, "é"]
    return {rng.choice(keys) + str(n): attribute_value(rng) for n in range(rng.randrange(12))}


@pytest.mark.parametrize("seed", range(200))
def test_any_attributes_encode_as_otel_does(seed: int) -> None:
    assert_same([span(attributes=attributes(seed)), span(attributes=attributes(seed + 1000))])


# what is left to OTel


@pytest.mark.parametrize(
    "overrides",
    [
        {"attributes": {"list": ["a", "b"], "ints": (1, 2)}},
        {"attributes": {"bytes": b"\x00\x01"}},
        {"context": SpanContext(1, 2, False, TraceFlags(1), TraceState([("k", "v")]))},
    ],
)
def test_anything_uncommon_goes_to_the_otel_encoder(overrides: dict[str, Any]) -> None:
    assert_same([span(), span(**overrides)], direct=False)


def test_what_otel_drops_is_dropped_the_same(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.CRITICAL)  # OTel logs each attribute it cannot encode
    assert_same([span(attributes={"big": 2**64, "surrogate": "\udc80", "ok": "x"})], direct=False)


def test_sdk_spans_with_events_and_limits_go_to_the_otel_encoder() -> None:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with provider.get_tracer("t").start_as_current_span("live", attributes={"a": 1}) as live:
        live.add_event("step", {"n": 2})
    with provider.get_tracer("t").start_as_current_span("plain"):
        pass
    finished = memory.get_finished_spans()
    assert_same(finished, direct=False)
    assert_same([*finished[1:], span()], direct=False)
    provider.shutdown()


def test_a_key_with_many_values_stops_remembering_them() -> None:
    spans = [span(attributes={"agent_run.id": f"run-{index}"}) for index in range(200)]
    assert_same(spans)
    known = span_encoding._keys["agent_run.id"]
    assert not known.remember
    assert len(known.pairs) == span_encoding._VALUES_PER_KEY


@pytest.mark.parametrize("value", [0, 1, 127, 128, 300, 2**32, 2**64 - 1])
def test_varint(value: int) -> None:
    decoded, shift = 0, 0
    for byte in varint(value):
        decoded |= (byte & 0x7F) << shift
        shift += 7
    assert decoded == value
    assert all(byte & 0x80 for byte in varint(value)[:-1])


def test_the_root_span_of_a_run_at_the_epoch_start_still_encodes() -> None:
    assert_same(run_spans(False, created_at=0.0, completed_at=0.0))
