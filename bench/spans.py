"""Spans per second from a finished run to an encoded OTLP request, and on to a real receiver.

    Run ──TraceSink.build_spans──► spans ──encode (batches of 512)──► OTLP protobuf bytes
    Run ──TraceSink.submit──► SpanQueue ──OTLP/HTTP exporter──► receiver (another process)

Each run has 5 tool steps, so 6 spans. The target is 5,000 runs/s (30,000 spans/s) on the one core
the span work shares with HTTP fetching: well under 100 µs per run. Build and encode figures are
rates per CPU second of the measuring thread (a busy machine does not skew them); the end-to-end
path gives both its wall-clock rate and its rate per CPU second of this process (the receiver's
CPU not included). Each figure is the median of several repetitions. `python -m bench.spans`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor

from bench.common import Report, median, parser
from bench.receiver import Running, running
from exporter.model import Run, SourceInfo, Status, ToolStep
from exporter.sinks.traces.exporters import build_span_exporter
from exporter.sinks.traces.queue import SpanQueue
from exporter.sinks.traces.sink import TraceSink

SOURCE = SourceInfo(name="conduit-prod", platform="conduit")
STEPS = 5
BATCH = 512
T0 = 1_800_000_000.0
TARGET_RUNS = 5_000
TARGET = f">= {TARGET_RUNS:,} runs/s ({TARGET_RUNS * (STEPS + 1):,} spans/s)"


@dataclass(frozen=True)
class Size:
    """How much work one repetition does, and how many repetitions."""

    runs: int
    e2e_runs: int
    repeats: int


FULL = Size(runs=5_000, e2e_runs=20_000, repeats=5)
TINY = Size(runs=200, e2e_runs=600, repeats=2)


def make_runs(count: int) -> list[Run]:
    """Return `count` finished runs with realistic fields and 5 tool steps each."""
    return [_run(index) for index in range(count)]


def _run(index: int) -> Run:
    failed = index % 10 == 0
    start = T0 + index * 0.01
    return Run(
        id=f"run_{index:08d}_{index * 7919 % 100_000:05d}",
        agent_id=f"agt_{index % 40:04d}",
        agent_name=f"Support Agent {index % 40}",
        status=Status.FAILED if failed else Status.COMPLETED,
        raw_status="error" if failed else "completed",
        created_at=start,
        completed_at=start + 12.5,
        disposition="escalated" if failed else "resolved",
        input_tokens=1200 + index % 500,
        output_tokens=300 + index % 200,
        cost_usd=0.0125 + (index % 100) / 10_000,
        trace_id=f"{index * 2_654_435_761 % (1 << 128):032x}",
        conversation_id=f"conv_{index // 3:08d}",
        error="upstream tool timed out after 30s" if failed else None,
        tool_steps=tuple(_step(index, step) for step in range(STEPS)),
        attributes={"team": "support", "region": "eu-west-1"},
    )


def _step(index: int, step: int) -> ToolStep:
    return ToolStep(
        name=("search_kb", "lookup_order", "refund", "send_email", "reply")[step],
        input={
            "query": f"where is my order {index}",
            "customer": {"id": f"cus_{index:06d}", "email": "ada@example.com"},
            "limit": 5,
        },
        output={"results": [{"id": f"doc_{n}", "score": 0.9 - n / 10} for n in range(3)]},
        call_id=f"call_{index}_{step}",
        error="timeout" if index % 10 == 0 and step == STEPS - 1 else None,
    )


class _Discard(SpanProcessor):
    """A processor that drops every span (build-only figures)."""

    def on_end(self, span: ReadableSpan) -> None:
        pass


def _sink(capture: bool) -> TraceSink:
    return TraceSink(_Discard(), capture_content=capture, environ={})


def _batches(spans: Sequence[ReadableSpan]) -> list[Sequence[ReadableSpan]]:
    return [spans[start : start + BATCH] for start in range(0, len(spans), BATCH)]


def _timed(work: Callable[[], object], repeats: int) -> float:
    """Run `work` `repeats` times; return the median CPU seconds this thread spent on it."""
    times = []
    for _ in range(repeats):
        began = time.thread_time()
        work()
        times.append(time.thread_time() - began)
    return median(times)


def encode(spans: Sequence[ReadableSpan]) -> bytes:
    """Encode a batch as OTel's OTLP exporters do (`encode_spans`, then serialize)."""
    data: bytes = encode_spans(spans).SerializePartialToString()
    return data


def measure_local(runs: list[Run], capture: bool, repeats: int) -> dict[str, float]:
    """Return median seconds of build, encode and build+encode for `runs`."""
    sink = _sink(capture)
    spans = [span for run in runs for span in sink.build_spans(SOURCE, run)]
    batches = _batches(spans)

    def build() -> None:
        for run in runs:
            sink.build_spans(SOURCE, run)

    def encode_all() -> None:
        for batch in batches:
            encode(batch)

    def both() -> None:
        pending: list[ReadableSpan] = []
        for run in runs:
            pending.extend(sink.build_spans(SOURCE, run))
            if len(pending) >= BATCH:
                encode(pending[:BATCH])
                del pending[:BATCH]
        if pending:
            encode(pending)

    return {
        "build": _timed(build, repeats),
        "encode": _timed(encode_all, repeats),
        "build + encode": _timed(both, repeats),
    }


# the end-to-end path: a receiver process (bench.receiver) that decodes and counts


def measure_e2e(
    runs: list[Run], receiver: Running, timeout_s: float = 300.0
) -> tuple[float, float]:
    """Submit `runs` through the real SpanQueue and OTLP/HTTP exporter; return the wall seconds
    until the receiver has every span, and the CPU seconds this process spent meanwhile."""
    exporter = build_span_exporter(
        "otlp",
        endpoint=receiver.url,
        protocol="http/protobuf",
        file_path="unused",
        timeout_s=10.0,
        environ={},
        on_result=lambda _outcome, _count: None,
    )
    assert exporter is not None
    queue = SpanQueue(exporter)
    sink = TraceSink(queue, environ={})
    expected = receiver.received() + len(runs) * (STEPS + 1)
    began, cpu = time.perf_counter(), time.process_time()
    for index, run in enumerate(runs):
        while len(queue) + STEPS + 1 > queue.max_size:  # wait for room rather than drop
            time.sleep(0.0005)
        if not sink.submit(SOURCE, run, index):
            raise RuntimeError("span queue dropped a run")
    queue.force_flush(int(timeout_s * 1000))
    while receiver.received() < expected:
        if time.perf_counter() - began > timeout_s:
            raise TimeoutError("the receiver did not get every span")
        time.sleep(0.005)
    elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
    queue.shutdown()
    return elapsed, cpu


def _rates(report: Report, label: str, runs: int, seconds: float) -> None:
    per_run_us = seconds / runs * 1e6
    report.add(
        f"{label}: runs/s · spans/s · µs/run",
        f"{runs / seconds:,.0f} · {runs * (STEPS + 1) / seconds:,.0f} · {per_run_us:,.1f}",
        TARGET,
    )


def main(argv: list[str]) -> int:
    """Measure span building, encoding and export; print the table."""
    args = parser(__doc__.splitlines()[0]).parse_args(argv)
    size = TINY if args.tiny else FULL
    report = Report(f"spans: {STEPS + 1} spans per run, batches of {BATCH}")
    report.add("runs per repetition · repetitions", f"{size.runs:,} · {size.repeats}")
    runs = make_runs(size.runs)
    for capture in (False, True):
        figures = measure_local(runs, capture, size.repeats)
        for name, seconds in figures.items():
            _rates(report, f"{name}, capture {'on' if capture else 'off'}", size.runs, seconds)
    with running() as receiver:
        e2e_runs = make_runs(size.e2e_runs)
        measure_e2e(e2e_runs[: min(len(e2e_runs), 500)], receiver)  # warm the connection
        timings = [measure_e2e(e2e_runs, receiver) for _ in range(size.repeats)]
    label = f"end to end ({size.e2e_runs:,} runs), capture off"
    _rates(report, f"{label}, wall", size.e2e_runs, median([wall for wall, _ in timings]))
    _rates(report, f"{label}, CPU", size.e2e_runs, median([cpu for _, cpu in timings]))
    report.print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
