"""Tests for exporter.sinks.traces.spanfile: OTLP/JSON lines on disk."""

from __future__ import annotations

import json
import logging
import re
import threading
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExportResult

from exporter.model import Run, SourceInfo, Status, ToolStep
from exporter.sinks.traces.sink import TraceSink
from exporter.sinks.traces.spanfile import FileSpanExporter
from tests.e2e.otlp_receiver import read_span_file

SOURCE = SourceInfo(name="eliza-dev", platform="elizaos")
T0 = 1_700_000_000.0


def make_spans(run_id: str = "run-1") -> list[ReadableSpan]:
    run = Run(
        id=run_id,
        agent_id="agent-1",
        status=Status.FAILED,
        raw_status="error",
        created_at=T0,
        completed_at=T0 + 4,
        input_tokens=10,
        cost_usd=0.5,
        error="exploded",
        tool_steps=(ToolStep(name="search", call_id="c1"), ToolStep(name="answer")),
    )
    sink = TraceSink(SpanProcessor(), environ={"OTEL_SERVICE_NAME": "svc"})  # base class drops all
    return sink.build_spans(SOURCE, run)


def test_round_trips_through_read_span_file(tmp_path: Path) -> None:
    path = tmp_path / "spans.jsonl"
    spans = make_spans()
    assert FileSpanExporter(path).export(spans) is SpanExportResult.SUCCESS
    records = read_span_file(path)
    root, search, answer = records
    context = spans[0].context
    assert context is not None
    assert root.trace_id == f"{context.trace_id:032x}"
    assert root.span_id == f"{context.span_id:016x}"
    assert root.parent_span_id is None
    assert search.parent_span_id == answer.parent_span_id == root.span_id
    assert root.name == "invoke_agent agent-1"
    assert root.kind == 3  # SPAN_KIND_CLIENT
    assert root.status_code == 2  # STATUS_CODE_ERROR
    assert root.status_message == "exploded"
    assert (root.start_ns, root.end_ns) == (spans[0].start_time, spans[0].end_time)
    assert root.attributes["gen_ai.usage.input_tokens"] == 10
    assert root.attributes["agent_run.cost_usd"] == 0.5
    assert root.resource["service.name"] == "svc"
    assert root.scope == "agent-runs-exporter"
    assert search.attributes["gen_ai.tool.call.id"] == "c1"


def test_line_is_otlp_json_with_hex_ids(tmp_path: Path) -> None:
    path = tmp_path / "spans.jsonl"
    FileSpanExporter(path).export(make_spans())
    document = json.loads(path.read_text(encoding="utf-8"))
    span = document["resourceSpans"][0]["scopeSpans"][0]["spans"][1]
    assert re.fullmatch(r"[0-9a-f]{32}", span["traceId"])
    assert re.fullmatch(r"[0-9a-f]{16}", span["spanId"])
    assert re.fullmatch(r"[0-9a-f]{16}", span["parentSpanId"])
    assert span["kind"] == 1
    assert isinstance(span["startTimeUnixNano"], str)


def test_appends_one_line_per_export_and_creates_dirs(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "spans.jsonl"
    exporter = FileSpanExporter(path)
    exporter.export(make_spans("a"))
    exporter.export(make_spans("b"))
    assert len(path.read_text(encoding="utf-8").splitlines()) == 2
    assert len(read_span_file(path)) == 6


def test_concurrent_exports_write_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "spans.jsonl"
    exporter = FileSpanExporter(path)
    batches = [make_spans(f"run-{n}") for n in range(16)]
    threads = [threading.Thread(target=exporter.export, args=(batch,)) for batch in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 16
    assert all(json.loads(line)["resourceSpans"] for line in lines)


def test_io_error_returns_failure_and_logs_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("", encoding="utf-8")
    exporter = FileSpanExporter(blocker / "spans.jsonl")
    with caplog.at_level(logging.INFO, logger="exporter.sinks.traces.spanfile"):
        assert exporter.export(make_spans()) is SpanExportResult.FAILURE
        assert exporter.export(make_spans()) is SpanExportResult.FAILURE
        blocker.unlink()
        assert exporter.export(make_spans()) is SpanExportResult.SUCCESS
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "writable again" in caplog.text


def test_refuses_after_shutdown(tmp_path: Path) -> None:
    exporter = FileSpanExporter(tmp_path / "spans.jsonl")
    exporter.shutdown()
    assert exporter.export(make_spans()) is SpanExportResult.FAILURE
    assert exporter.force_flush()


def test_a_torn_last_line_from_a_killed_process_is_ended_first(tmp_path: Path) -> None:
    path = tmp_path / "spans.jsonl"
    path.write_text('{"resourceSpans": [{"torn', encoding="utf-8")  # SIGKILL mid-write
    FileSpanExporter(path).export(make_spans())
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == '{"resourceSpans": [{"torn'
    assert json.loads(lines[1])["resourceSpans"]
