"""OTel's OTLP span exporters (HTTP and gRPC), set to encode batches with `span_encoding`.

The OTel exporters encode through `encode_spans`, which costs several times what building the
spans does. `http_exporter` and `grpc_exporter` return OTel's own exporter classes, keeping all of
their behaviour (endpoint, headers, TLS, compression, retries, size limit, self-metrics), and swap
only the encoder of that one instance for `span_encoding.encode_request`, whose bytes are the same:

    HTTP   `export` runs OTel's own code, with its `encode_spans` name bound to `PreEncoded`
    gRPC   `_translate_data` parses our bytes into the request message the stub sends

Should a later OTel release restructure either exporter, the swap is skipped (and a unit test
fails), so the exporter stays correct, only slower. This module is imported only for OTLP, and
gRPC only for gRPC: both are heavy to load.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpExporter,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter

from exporter.sinks.traces.span_encoding import encode_request


class PreEncoded:
    """Stand in for the message `encode_spans` returns: it serializes to our encoding."""

    __slots__ = ("data",)

    def __init__(self, spans: Sequence[ReadableSpan]) -> None:
        self.data = encode_request(spans)

    def SerializePartialToString(self) -> bytes:
        """Return the encoded request."""
        return self.data

    SerializeToString = SerializePartialToString


def rebind_encoder(export: Callable[..., Any]) -> Callable[..., Any] | None:
    """Return a copy of OTel's `export` whose `encode_spans` is `PreEncoded`, or None if it
    calls no `encode_spans`."""
    code = getattr(export, "__code__", None)
    if code is None or "encode_spans" not in code.co_names:
        return None
    namespace = {**export.__globals__, "encode_spans": PreEncoded}
    closure = export.__closure__
    copy = types.FunctionType(code, namespace, code.co_name, export.__defaults__, closure)
    copy.__kwdefaults__ = export.__kwdefaults__
    return copy


_HTTP_EXPORT = rebind_encoder(HttpExporter.export)


def http_exporter(endpoint: str, headers: Mapping[str, str] | None, timeout: float) -> HttpExporter:
    """Return OTel's OTLP/HTTP span exporter for `endpoint` (the traces URL), fast-encoding."""
    exporter = HttpExporter(endpoint=endpoint, headers=headers, timeout=timeout)
    if _HTTP_EXPORT is not None:
        exporter.export = types.MethodType(_HTTP_EXPORT, exporter)  # type: ignore[method-assign]
    return exporter


def grpc_exporter(endpoint: str, headers: Mapping[str, str] | None, timeout: float) -> SpanExporter:
    """Return OTel's OTLP/gRPC span exporter for `endpoint`, fast-encoding."""
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # noqa: PLC0415
        OTLPSpanExporter as GrpcExporter,
    )

    exporter = GrpcExporter(
        endpoint=endpoint, headers=None if headers is None else dict(headers), timeout=timeout
    )
    if callable(getattr(exporter, "_translate_data", None)):
        exporter._translate_data = types.MethodType(_grpc_request, exporter)  # type: ignore[method-assign]
    return exporter


def _grpc_request(_exporter: SpanExporter, spans: Sequence[ReadableSpan]) -> Any:
    """Return the gRPC export request for `spans`, parsed from our encoding."""
    return ExportTraceServiceRequest.FromString(encode_request(spans))
