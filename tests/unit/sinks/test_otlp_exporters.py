"""OTel's OTLP exporters with our encoder swapped in: same requests on the wire, same behaviour."""

from __future__ import annotations

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpExporter,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult

from exporter.sinks.traces import otlp_exporters
from exporter.sinks.traces.otlp_exporters import grpc_exporter, http_exporter, rebind_encoder
from tests.e2e.otlp_receiver import OtlpReceiver
from tests.unit.sinks.test_traces import Harness, make_run


def spans() -> list[ReadableSpan]:
    return Harness(capture_content=True).export(make_run())[1]


def test_the_installed_otel_exporters_take_our_encoder() -> None:
    exporter = http_exporter("http://127.0.0.1:9/v1/traces", None, 1.0)
    assert type(exporter) is HttpExporter
    assert otlp_exporters._HTTP_EXPORT is not None
    assert exporter.export.__func__ is otlp_exporters._HTTP_EXPORT  # type: ignore[attr-defined]
    exporter.shutdown()


def test_the_receiver_gets_what_the_otel_encoder_would_send() -> None:
    built = spans()
    with OtlpReceiver() as receiver:
        ours = http_exporter(receiver.traces_url, {"x-tenant": "acme"}, 5.0)
        theirs = HttpExporter(endpoint=receiver.traces_url, headers={"x-tenant": "acme"})
        assert ours.export(built) is SpanExportResult.SUCCESS
        assert theirs.export(built) is SpanExportResult.SUCCESS
        records = receiver.wait_for(lambda received: len(received) == 2 * len(built))
        headers = receiver.request_headers()
        ours.shutdown()
        theirs.shutdown()
    assert records[: len(built)] == records[len(built) :]
    assert headers[0]["x-tenant"] == "acme"


def test_a_shut_down_exporter_still_refuses_as_otel_does() -> None:
    exporter = http_exporter("http://127.0.0.1:9/v1/traces", None, 1.0)
    exporter.shutdown()
    assert exporter.export(spans()) is SpanExportResult.FAILURE


def test_an_unreachable_collector_is_a_failure_not_an_exception() -> None:
    exporter = http_exporter("http://127.0.0.1:9/v1/traces", None, 0.2)
    assert exporter.export(spans()) is SpanExportResult.FAILURE
    exporter.shutdown()


def test_the_grpc_exporter_sends_the_message_otel_would_build() -> None:
    exporter = grpc_exporter("http://127.0.0.1:9", None, 1.0)
    built = spans()
    assert exporter._translate_data(built) == encode_spans(built)  # type: ignore[attr-defined]
    exporter.shutdown()


def test_an_export_without_encode_spans_is_left_alone() -> None:
    def export(self: object, spans: object) -> None:
        return None

    assert rebind_encoder(export) is None
    assert rebind_encoder(print) is None
