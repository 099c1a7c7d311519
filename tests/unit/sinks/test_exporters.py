"""Tests for exporter.sinks.traces.exporters: OTel's OTLP exporters as published, on the wire."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpExporter,
)
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from exporter.model import Status, ToolStep
from exporter.sinks.traces.exporters import build_span_exporter, resolve_timeout
from tests.e2e.otlp_receiver import OtlpReceiver, records_from_request
from tests.unit.sinks.test_traces import T0, Harness, make_run


def spans(**run_fields: Any) -> list[ReadableSpan]:
    return Harness(capture_content=True).export(make_run(**run_fields))[1]


def otlp(endpoint: str | None, protocol: str = "http/protobuf", **environ: str) -> SpanExporter:
    exporter = build_span_exporter(
        "otlp",
        endpoint=endpoint,
        protocol=protocol,
        file_path="unused.jsonl",
        timeout_s=1.0,
        environ=environ,
    )
    assert exporter is not None
    return exporter


@pytest.mark.parametrize(
    ("protocol", "published"), [("http/protobuf", HttpExporter), ("grpc", GrpcExporter)]
)
def test_the_otlp_exporters_are_otels_as_published(protocol: str, published: type) -> None:
    exporter = otlp("http://127.0.0.1:9", protocol)
    assert type(exporter) is published
    assert not {"export", "_translate_data"} & vars(exporter).keys()  # nothing swapped in
    exporter.shutdown()


def test_the_receiver_gets_what_the_otel_encoder_builds_with_our_headers() -> None:
    built = spans()
    with OtlpReceiver() as receiver:
        ours = otlp(receiver.url, OTEL_EXPORTER_OTLP_TRACES_HEADERS="x-tenant=acme")
        theirs = HttpExporter(endpoint=receiver.traces_url, headers={"x-tenant": "acme"})
        assert ours.export(built) is SpanExportResult.SUCCESS
        assert theirs.export(built) is SpanExportResult.SUCCESS
        records = receiver.wait_for(lambda received: len(received) == 2 * len(built))
        headers = receiver.request_headers()
        ours.shutdown()
        theirs.shutdown()
    assert records[: len(built)] == records[len(built) :]
    assert records[: len(built)] == records_from_request(encode_spans(built))
    assert headers[0]["x-tenant"] == "acme"


@pytest.mark.parametrize(
    "run_fields",
    [
        {"created_at": 0.0, "completed_at": 0.0},  # a run at the epoch start
        {
            "status": Status.FAILED,
            "error": "boom",
            "parent_run_id": "parent-1",
            "total_tokens": 2**40,
            "attributes": {"team": "", "emoji": "🚀"},
            "tool_steps": (
                ToolStep("TEXT_LARGE", kind="model", provider="openai", input_tokens=90),
                ToolStep("pay", error="card declined " * 20, started_at=T0 + 1, ended_at=T0 + 2),
                ToolStep("", input={"q": "é" * 300}, output=[1, 2.5, True, None], call_id="c"),
            ),
        },
    ],
)
def test_unusual_runs_arrive_whole(run_fields: dict[str, Any]) -> None:
    built = spans(**run_fields)
    with OtlpReceiver() as receiver:
        exporter = otlp(receiver.url)
        assert exporter.export(built) is SpanExportResult.SUCCESS
        records = receiver.wait_for(lambda received: len(received) == len(built))
        exporter.shutdown()
    assert [record.span_id for record in records] == [f"{s.context.span_id:016x}" for s in built]
    assert [record.start_ns for record in records] == [s.start_time for s in built]
    assert [record.attributes for record in records] == [dict(s.attributes or {}) for s in built]


def test_a_shut_down_exporter_refuses_as_otel_does() -> None:
    exporter = otlp("http://127.0.0.1:9")
    exporter.shutdown()
    assert exporter.export(spans()) is SpanExportResult.FAILURE


def test_an_unreachable_collector_is_a_failure_not_an_exception() -> None:
    exporter = build_span_exporter(
        "otlp",
        endpoint="http://127.0.0.1:9",
        protocol=None,
        file_path="unused.jsonl",
        timeout_s=0.2,
        environ={},
    )
    assert exporter is not None
    assert exporter.export(spans()) is SpanExportResult.FAILURE
    exporter.shutdown()


class _Collector(trace_service_pb2_grpc.TraceServiceServicer):
    """An OTLP/gRPC trace service that keeps each request and its metadata."""

    def __init__(self) -> None:
        self.requests: list[tuple[ExportTraceServiceRequest, dict[str, str]]] = []
        self.received = threading.Event()

    def Export(
        self, request: ExportTraceServiceRequest, context: grpc.ServicerContext
    ) -> ExportTraceServiceResponse:
        metadata = {key: str(value) for key, value in context.invocation_metadata()}
        self.requests.append((request, metadata))
        self.received.set()
        return ExportTraceServiceResponse()


@pytest.fixture
def collector() -> Iterator[tuple[_Collector, int]]:
    service = _Collector()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(service, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield service, port
    server.stop(grace=None)


def test_the_grpc_exporter_sends_the_message_otel_builds(collector: tuple[_Collector, int]) -> None:
    service, port = collector
    built = spans()
    exporter = otlp(f"http://127.0.0.1:{port}", "grpc", OTEL_EXPORTER_OTLP_HEADERS="x-tenant=acme")
    assert exporter.export(built) is SpanExportResult.SUCCESS
    exporter.shutdown()
    assert service.received.is_set()
    [(request, metadata)] = service.requests
    assert request == encode_spans(built)
    assert metadata["x-tenant"] == "acme"


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, 10.0),
        ({"OTEL_EXPORTER_OTLP_TIMEOUT": "4"}, 4.0),
        ({"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "2.5", "OTEL_EXPORTER_OTLP_TIMEOUT": "4"}, 2.5),
        ({"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "soon", "OTEL_EXPORTER_OTLP_TIMEOUT": "4"}, 4.0),
        ({"OTEL_EXPORTER_OTLP_TIMEOUT": "-1"}, 10.0),
    ],
)
def test_the_otlp_timeout_variables_set_the_export_timeout(
    environ: dict[str, str], expected: float
) -> None:
    assert resolve_timeout(environ) == expected
