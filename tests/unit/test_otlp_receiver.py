"""Tests for tests.e2e.otlp_receiver: the real OTLP/HTTP receiver used by end-to-end tests."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from exporter.sinks.traces.spanfile import encode_line
from tests.e2e.otlp_receiver import OtlpReceiver, SpanRecord


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as running:
        yield running


def make_spans() -> list[ReadableSpan]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource({"service.name": "recv-test"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("receiver-test")
    with tracer.start_as_current_span("parent", kind=SpanKind.CLIENT) as parent:
        parent.set_attributes({"count": 3, "ratio": 0.5, "ok": True, "tags": ["a", "b"]})
        with tracer.start_as_current_span("child") as child:
            child.set_status(StatusCode.ERROR, "bad")
    provider.shutdown()
    return list(memory.get_finished_spans())


def check(records: list[SpanRecord], spans: list[ReadableSpan]) -> None:
    child, parent = sorted(records, key=lambda record: record.name)
    source = {span.name: span for span in spans}
    assert parent.trace_id == f"{source['parent'].context.trace_id:032x}"  # type: ignore[union-attr]
    assert parent.parent_span_id is None
    assert child.parent_span_id == parent.span_id
    assert parent.kind == 3
    assert parent.attributes == {"count": 3, "ratio": 0.5, "ok": True, "tags": ["a", "b"]}
    assert parent.start_ns == source["parent"].start_time
    assert child.status_code == 2
    assert child.status_message == "bad"
    assert parent.resource == {"service.name": "recv-test"}
    assert parent.scope == "receiver-test"


@pytest.mark.parametrize("compression", [Compression.NoCompression, Compression.Gzip])
def test_receives_protobuf_from_real_exporter(
    receiver: OtlpReceiver, compression: Compression
) -> None:
    exporter = OTLPSpanExporter(endpoint=receiver.traces_url, compression=compression, timeout=5)
    spans = make_spans()
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    exporter.shutdown()
    check(receiver.wait_for(lambda got: len(got) == 2, timeout=5), spans)


def test_receives_otlp_json(receiver: OtlpReceiver) -> None:
    spans = make_spans()
    request = urllib.request.Request(
        receiver.traces_url,
        data=encode_line(spans).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200
        assert response.read() == b"{}"
    check(receiver.spans(), spans)


def test_rejects_other_paths_and_types(receiver: OtlpReceiver) -> None:
    for path, content_type, code in [
        ("/v1/logs", "application/x-protobuf", 404),
        ("/v1/metrics", "application/json", 415),
        ("/v1/metrics", "application/x-protobuf", 400),
        ("/v1/traces", "text/plain", 415),
        ("/v1/traces", "application/x-protobuf", 400),
    ]:
        request = urllib.request.Request(
            receiver.url + path, data=b"\xff\xff", headers={"Content-Type": content_type}
        )
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=5)
        assert caught.value.code == code
        caught.value.close()
    assert receiver.spans() == []
    assert receiver.metric_points() == []


def test_wait_for_times_out(receiver: OtlpReceiver) -> None:
    with pytest.raises(TimeoutError, match="0 spans"):
        receiver.wait_for(lambda got: len(got) > 0, timeout=0.05)


def test_stop_is_idempotent() -> None:
    receiver = OtlpReceiver()
    assert receiver.url.startswith("http://127.0.0.1:")
    receiver.stop()
    receiver.stop()
