"""A span exporter that appends OTLP/JSON export requests to a JSON Lines file.

Each `export` call writes one line: an `ExportTraceServiceRequest` in OTLP/JSON, i.e. the protobuf
JSON mapping (lowerCamelCase names, enums as integers, int64 as strings) except that trace and span
ids are lowercase hex instead of base64. A collector's `otlpjsonfile` receiver can read it back.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from google.protobuf.json_format import MessageToDict  # type: ignore[import-untyped]
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

logger = logging.getLogger(__name__)

_ID_FIELDS = ("traceId", "spanId", "parentSpanId")


class FileSpanExporter(SpanExporter):
    """Append one OTLP/JSON line per export call to a file; never raise on I/O errors."""

    def __init__(self, path: str | Path) -> None:
        self._path = Path(path)
        self._lock = threading.Lock()
        self._failing = False
        self._shutdown = False
        self._checked_tail = False

    @property
    def path(self) -> Path:
        """Return the file the spans are appended to."""
        return self._path

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Append the spans as one OTLP/JSON line; return FAILURE if the file cannot be written."""
        if self._shutdown:
            return SpanExportResult.FAILURE
        if not spans:
            return SpanExportResult.SUCCESS
        line = encode_line(spans)
        with self._lock:
            try:
                self._append(line)
            except OSError as error:
                self._note_failure(error)
                return SpanExportResult.FAILURE
            if self._failing:
                logger.info("span file %s is writable again", self._path)
                self._failing = False
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        """Refuse further exports (every line is already flushed)."""
        self._shutdown = True

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Return True: every export is flushed before it returns."""
        return True

    def _append(self, line: str) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        with self._path.open("a", encoding="utf-8") as file:
            if not self._checked_tail:
                # A process killed mid-write leaves a torn last line: end it, keep ours whole.
                file.write("\n" if _ends_torn(self._path) else "")
                self._checked_tail = True
            file.write(line + "\n")
            file.flush()

    def _note_failure(self, error: OSError) -> None:
        """Log the first failure of a streak only, so a full disk does not flood the log."""
        if not self._failing:
            logger.warning("cannot write span file %s: %s", self._path, error)
        self._failing = True


def _ends_torn(path: Path) -> bool:
    """Say whether the file is non-empty and its last line has no newline."""
    with path.open("rb") as file:
        file.seek(0, 2)
        if file.tell() == 0:
            return False
        file.seek(-1, 2)
        return file.read(1) != b"\n"


def encode_line(spans: Sequence[ReadableSpan]) -> str:
    """Encode spans as one compact OTLP/JSON `ExportTraceServiceRequest`."""
    request = MessageToDict(encode_spans(spans), use_integers_for_enums=True)
    for resource_spans in request.get("resourceSpans", ()):
        for scope_spans in resource_spans.get("scopeSpans", ()):
            for span in scope_spans.get("spans", ()):
                _hex_ids(span)
                for link in span.get("links", ()):
                    _hex_ids(link)
    return json.dumps(request, ensure_ascii=False, separators=(",", ":"))


def _hex_ids(record: dict[str, Any]) -> None:
    """Rewrite the base64 id fields of a span or link as hex, as OTLP/JSON requires."""
    for name in _ID_FIELDS:
        if name in record:
            record[name] = base64.b64decode(record[name]).hex()
