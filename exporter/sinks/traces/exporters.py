"""Span exporter construction: OTLP (HTTP or gRPC), JSON-lines file, or none, optionally counted.

Configuration follows the OpenTelemetry SDK's environment: explicit settings win, then
`OTEL_EXPORTER_OTLP_TRACES_*`, then `OTEL_EXPORTER_OTLP_*`, then the defaults below.
`OTEL_TRACES_EXPORTER=none` and `OTEL_SDK_DISABLED=true` switch trace export off.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.util.re import parse_env_headers

from exporter.errors import ConfigError, ConfigProblem

logger = logging.getLogger(__name__)

_HTTP = "http/protobuf"
_GRPC = "grpc"
DEFAULT_TIMEOUT_S = 10.0  # traces.timeout when neither the config nor the environment sets one
_DEFAULT_ENDPOINTS = {_HTTP: "http://127.0.0.1:4318", _GRPC: "http://127.0.0.1:4317"}
_TRACES_PATH = "/v1/traces"

ResultCallback = Callable[[str, int], None]


class CountingSpanExporter(SpanExporter):
    """Wrap an exporter, reporting each batch's outcome as `on_result("success"|"failure", n)`."""

    def __init__(self, inner: SpanExporter, on_result: ResultCallback) -> None:
        self._inner = inner
        self._on_result = on_result

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Export through the wrapped exporter, never raising, and report the outcome."""
        try:
            result = self._inner.export(spans)
        except Exception:  # a broken exporter must not kill the batch thread
            logger.exception("span exporter raised")
            result = SpanExportResult.FAILURE
        ok = result is SpanExportResult.SUCCESS
        self._on_result("success" if ok else "failure", len(spans))
        return result

    def shutdown(self) -> None:
        """Shut the wrapped exporter down."""
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Flush the wrapped exporter."""
        return self._inner.force_flush(timeout_millis)


def build_span_exporter(
    kind: str,
    *,
    endpoint: str | None,
    protocol: str | None,
    file_path: str,
    timeout_s: float | None,
    environ: Mapping[str, str],
    on_result: ResultCallback | None = None,
) -> SpanExporter | None:
    """Build the span exporter for `kind` (otlp|file|none), or None when tracing is off.

    `timeout_s` None means the `OTEL_EXPORTER_OTLP_*TIMEOUT` variables decide (`resolve_timeout`).
    """
    if kind == "none":
        return None
    if environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        logger.info("trace export disabled by OTEL_TRACES_EXPORTER=none")
        return None
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        logger.info("trace export disabled by OTEL_SDK_DISABLED=true")
        return None
    if kind == "file":
        # Imported when chosen, like the OTLP exporters: protobuf's JSON mapping costs ~3 MiB.
        from exporter.sinks.traces.spanfile import FileSpanExporter  # noqa: PLC0415

        exporter: SpanExporter = FileSpanExporter(file_path)
    elif kind == "otlp":
        exporter = _otlp_exporter(endpoint, protocol, timeout_s, environ)
    else:
        raise ValueError(f"unknown span exporter kind {kind!r} (expected otlp, file or none)")
    return exporter if on_result is None else CountingSpanExporter(exporter, on_result)


def resolve_timeout(environ: Mapping[str, str]) -> float:
    """Return the OTLP export timeout the environment sets, else 10 s.

    `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT`, then `OTEL_EXPORTER_OTLP_TIMEOUT`, in seconds, as
    OpenTelemetry Python reads them; a value that is not a positive number is ignored (warned).
    """
    for name in ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT"):
        raw = environ.get(name, "").strip()
        if not raw:
            continue
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if math.isfinite(value) and value > 0:
            return value
        logger.warning("ignoring %s=%r: not a positive number of seconds", name, raw[:40])
    return DEFAULT_TIMEOUT_S


def _otlp_exporter(
    endpoint: str | None, protocol: str | None, timeout_s: float | None, environ: Mapping[str, str]
) -> SpanExporter:
    if timeout_s is None:
        timeout_s = resolve_timeout(environ)
    protocol = resolve_protocol(protocol, environ)
    url = resolve_endpoint(endpoint, protocol, environ)
    headers = _env_headers(environ)
    logger.info("exporting spans over OTLP %s to %s", protocol, url)
    # OTel's own exporters, as published; imported when chosen (gRPC especially is heavy to load).
    if protocol == _GRPC:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # noqa: PLC0415
            OTLPSpanExporter as GrpcExporter,
        )

        return GrpcExporter(endpoint=url, headers=headers, timeout=timeout_s)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
        OTLPSpanExporter as HttpExporter,
    )

    return HttpExporter(endpoint=url, headers=headers, timeout=timeout_s)


def resolve_protocol(protocol: str | None, environ: Mapping[str, str]) -> str:
    """Return the OTLP protocol: the explicit one, else the standard variables, else http."""
    origin, chosen = "traces.protocol", protocol
    for variable in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        if not chosen and environ.get(variable):
            origin, chosen = variable, environ[variable]
    chosen = (chosen or _HTTP).strip()
    if chosen not in _DEFAULT_ENDPOINTS:
        message = f"unsupported OTLP protocol {chosen!r}: use {_HTTP} or {_GRPC}"
        raise ConfigError([ConfigProblem(origin, message)])
    return chosen


def resolve_endpoint(endpoint: str | None, protocol: str, environ: Mapping[str, str]) -> str:
    """Return the traces URL: explicit base > TRACES_ENDPOINT (as is) > ENDPOINT > default."""
    if not endpoint and (signal_url := environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")):
        return signal_url
    base = endpoint or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or _DEFAULT_ENDPOINTS[protocol]
    if protocol == _GRPC or base.rstrip("/").endswith(_TRACES_PATH):
        return base
    return base.rstrip("/") + _TRACES_PATH


def _env_headers(environ: Mapping[str, str]) -> dict[str, str] | None:
    raw = environ.get("OTEL_EXPORTER_OTLP_TRACES_HEADERS") or environ.get(
        "OTEL_EXPORTER_OTLP_HEADERS"
    )
    return dict(parse_env_headers(raw, liberal=True)) if raw else None
