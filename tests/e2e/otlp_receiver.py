"""A real OTLP/HTTP trace and metrics receiver for tests, plus a reader for the span file.

Both produce the same plain `SpanRecord`s, so an end-to-end test can check spans the same way
whether the exporter sent them over OTLP or wrote them to a file.

    with OtlpReceiver() as receiver:
        ...  # point the exporter at receiver.url
        spans = receiver.wait_for(lambda spans: len(spans) >= 3, timeout=10)
        points = receiver.wait_for_metrics(lambda points: "agent_runs" in names(points))
"""

from __future__ import annotations

import base64
import gzip
import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from tests.e2e.processes import StopsOnExit

TRACES_PATH = "/v1/traces"
METRICS_PATH = "/v1/metrics"
_ID_FIELDS = ("traceId", "spanId", "parentSpanId")


@dataclass(frozen=True)
class SpanRecord:
    """One received span, decoded into plain values (ids as lowercase hex)."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    kind: int
    start_ns: int
    end_ns: int
    status_code: int
    status_message: str
    attributes: dict[str, Any]
    resource: dict[str, Any]
    scope: str


def records_from_request(request: ExportTraceServiceRequest) -> list[SpanRecord]:
    """Flatten an export request into span records."""
    records = []
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                records.append(
                    SpanRecord(
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex() or None,
                        name=span.name,
                        kind=span.kind,
                        start_ns=span.start_time_unix_nano,
                        end_ns=span.end_time_unix_nano,
                        status_code=span.status.code,
                        status_message=span.status.message,
                        attributes=_attributes(span.attributes),
                        resource=resource,
                        scope=scope_spans.scope.name,
                    )
                )
    return records


@dataclass(frozen=True)
class MetricPoint:
    """One received data point: a sum or gauge value, or a histogram's buckets."""

    name: str
    kind: str  # sum, gauge or histogram
    unit: str
    attributes: dict[str, Any]
    temporality: int  # 1 delta, 2 cumulative (0 for gauges)
    value: float  # a histogram's sum
    count: int = 0
    bounds: tuple[float, ...] = ()
    buckets: tuple[int, ...] = ()
    exemplars: tuple[dict[str, Any], ...] = ()
    time_ns: int = 0


def points_from_request(request: ExportMetricsServiceRequest) -> list[MetricPoint]:
    """Flatten a metrics export request into data points."""
    points = []
    for resource_metrics in request.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                points.extend(_points(metric))
    return points


def _points(metric: Any) -> list[MetricPoint]:
    kind = metric.WhichOneof("data")
    data = getattr(metric, kind)
    temporality = getattr(data, "aggregation_temporality", 0)
    out = []
    for point in data.data_points:
        common = (metric.name, kind, metric.unit, _attributes(point.attributes), temporality)
        if kind == "histogram":
            exemplars = tuple(
                {"value": e.as_double, **_attributes(e.filtered_attributes)}
                for e in point.exemplars
            )
            out.append(
                MetricPoint(
                    *common,
                    value=point.sum,
                    count=point.count,
                    bounds=tuple(point.explicit_bounds),
                    buckets=tuple(point.bucket_counts),
                    exemplars=exemplars,
                    time_ns=point.time_unix_nano,
                )
            )
        else:
            value = point.as_double if point.HasField("as_double") else point.as_int
            out.append(MetricPoint(*common, value=value, time_ns=point.time_unix_nano))
    return out


def latest(
    points: Iterable[MetricPoint],
) -> dict[tuple[str, tuple[tuple[str, Any], ...]], MetricPoint]:
    """Return the last point of each series, by (name, sorted attributes)."""
    out = {}
    for point in points:
        out[(point.name, tuple(sorted(point.attributes.items())))] = point
    return out


def names(points: Iterable[MetricPoint]) -> set[str]:
    """Return the metric names among the points."""
    return {point.name for point in points}


def parse_json_request(document: dict[str, Any]) -> ExportTraceServiceRequest:
    """Parse an OTLP/JSON export request (hex ids) into its protobuf message."""
    for resource_spans in document.get("resourceSpans", ()):
        for scope_spans in resource_spans.get("scopeSpans", ()):
            for span in scope_spans.get("spans", ()):
                _base64_ids(span)
                for link in span.get("links", ()):
                    _base64_ids(link)
    return json_format.ParseDict(document, ExportTraceServiceRequest(), ignore_unknown_fields=True)


def read_span_file(path: str | Path) -> list[SpanRecord]:
    """Read the JSON Lines file written by `FileSpanExporter` into span records."""
    records: list[SpanRecord] = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            records.extend(records_from_request(parse_json_request(json.loads(line))))
    return records


def _base64_ids(record: dict[str, Any]) -> None:
    for name in _ID_FIELDS:
        if record.get(name):
            record[name] = base64.b64encode(bytes.fromhex(record[name])).decode()


def _attributes(pairs: Iterable[KeyValue]) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs}


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    return None if kind is None else getattr(value, kind)


class OtlpReceiver(StopsOnExit):
    """Receive OTLP/HTTP trace exports (protobuf or JSON, optionally gzipped) on 127.0.0.1."""

    def __init__(self, port: int = 0) -> None:
        self._records: list[SpanRecord] = []
        self._points: list[MetricPoint] = []
        self._headers: list[dict[str, str]] = []
        self._changed = threading.Condition()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        """Return the base URL, e.g. http://127.0.0.1:4318 (exporters append /v1/traces)."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def traces_url(self) -> str:
        """Return the full traces endpoint URL."""
        return self.url + TRACES_PATH

    def spans(self) -> list[SpanRecord]:
        """Return every span received so far, in arrival order."""
        with self._changed:
            return list(self._records)

    def request_headers(self) -> list[dict[str, str]]:
        """Return the (lowercased) headers of every accepted export request."""
        with self._changed:
            return [dict(headers) for headers in self._headers]

    def wait_for(
        self, predicate: Callable[[list[SpanRecord]], bool], timeout: float = 10.0
    ) -> list[SpanRecord]:
        """Wait until `predicate(spans)` holds and return the spans; raise TimeoutError if not."""
        with self._changed:
            if self._changed.wait_for(lambda: predicate(list(self._records)), timeout):
                return list(self._records)
            count = len(self._records)
        raise TimeoutError(f"condition not met within {timeout}s ({count} spans received)")

    def metric_points(self) -> list[MetricPoint]:
        """Return every metric data point received so far, in arrival order."""
        with self._changed:
            return list(self._points)

    def wait_for_metrics(
        self, predicate: Callable[[list[MetricPoint]], bool], timeout: float = 10.0
    ) -> list[MetricPoint]:
        """Wait until `predicate(points)` holds and return the points; raise TimeoutError if not."""
        with self._changed:
            if self._changed.wait_for(lambda: predicate(list(self._points)), timeout):
                return list(self._points)
            count = len(self._points)
        raise TimeoutError(f"condition not met within {timeout}s ({count} points received)")

    def stop(self) -> None:
        """Stop serving and release the port (idempotent)."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()

    def _store_metrics(self, request: ExportMetricsServiceRequest) -> None:
        with self._changed:
            self._points.extend(points_from_request(request))
            self._changed.notify_all()

    def _store(self, request: ExportTraceServiceRequest, headers: dict[str, str]) -> None:
        with self._changed:
            self._records.extend(records_from_request(request))
            self._headers.append(headers)
            self._changed.notify_all()


def _handler_for(receiver: OtlpReceiver) -> type[BaseHTTPRequestHandler]:
    """Return a request handler class bound to `receiver`."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            path = self.path.split("?", 1)[0]
            if path not in (TRACES_PATH, METRICS_PATH):
                self._reply(404, b"not found", "text/plain")
                return
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                if self.headers.get("Content-Encoding", "").lower() == "gzip":
                    body = gzip.decompress(body)
                if path == METRICS_PATH:
                    self._accept_metrics(self.headers.get_content_type(), body)
                else:
                    self._accept(self.headers.get_content_type(), body)
            except (DecodeError, ValueError, json_format.ParseError, OSError) as error:
                self._reply(400, str(error).encode(), "text/plain")

        def _accept(self, content_type: str, body: bytes) -> None:
            if content_type == "application/x-protobuf":
                request = ExportTraceServiceRequest.FromString(body)
                reply = ExportTraceServiceResponse().SerializeToString()
            elif content_type == "application/json":
                request = parse_json_request(json.loads(body))
                reply = b"{}"
            else:
                self._reply(415, b"unsupported content type", "text/plain")
                return
            headers = {key.lower(): value for key, value in self.headers.items()}
            receiver._store(request, headers)
            self._reply(200, reply, content_type)

        def _accept_metrics(self, content_type: str, body: bytes) -> None:
            if content_type != "application/x-protobuf":
                self._reply(415, b"unsupported content type", "text/plain")
                return
            receiver._store_metrics(ExportMetricsServiceRequest.FromString(body))
            reply = ExportMetricsServiceResponse().SerializeToString()
            self._reply(200, reply, content_type)

        def _reply(self, code: int, body: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

    return Handler
