"""The span queue: retries while the collector is down, drops and counts when full, settles a run
only once its spans are out. Driven step by step (`export_batch`) or through its thread."""

from __future__ import annotations

import time
from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from exporter.model import SourceInfo, ToolStep
from exporter.sinks.traces.queue import Settled, SpanQueue
from exporter.sinks.traces.sink import TraceSink
from tests.unit.runs import make_run

SOURCE = SourceInfo("s", "conduit")


class Collector(SpanExporter):
    """A collector that can be down: refuses exports then, keeps them when up."""

    def __init__(self, up: bool = True) -> None:
        self.up = up
        self.received: list[ReadableSpan] = []
        self.attempts = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.attempts += 1
        if not self.up:
            return SpanExportResult.FAILURE
        self.received.extend(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.up = False


def spans_of(run_id: str, steps: int = 0) -> list[ReadableSpan]:
    run = make_run(run_id, tool_steps=tuple(ToolStep(name=f"t{i}") for i in range(steps)))
    return TraceSink(SpanQueue(Collector(), background=False), environ={}).build_spans(SOURCE, run)


def test_a_down_collector_keeps_the_batch_and_it_goes_out_when_back() -> None:
    collector = Collector(up=False)
    queue = SpanQueue(collector, background=False)
    assert queue.submit(spans_of("r1", steps=2), key="r1")
    assert queue.export_batch() is False
    assert queue.export_batch() is False
    assert (len(queue), queue.settled()) == (3, [])
    collector.up = True
    assert queue.export_batch() is True
    assert len(collector.received) == 3
    assert queue.settled() == [Settled("r1", exported=True)]
    assert queue.export_batch() is None


def test_a_full_queue_drops_whole_runs_and_counts_their_spans() -> None:
    dropped: list[int] = []
    queue = SpanQueue(Collector(up=False), max_size=5, background=False, on_drop=dropped.append)
    assert queue.submit(spans_of("r1", steps=2), key="r1")
    assert not queue.submit(spans_of("r2", steps=2), key="r2")  # 3 + 3 > 5
    assert queue.submit(spans_of("r3", steps=1), key="r3")  # 3 + 2 fits
    assert not queue.has_room()
    assert dropped == [3]
    assert queue.settled() == [Settled("r2", exported=False)]


def test_a_run_split_across_batches_settles_with_its_last_span() -> None:
    collector = Collector()
    queue = SpanQueue(collector, batch_size=2, background=False)
    queue.submit(spans_of("r1", steps=2), key="r1")
    assert queue.export_batch() is True
    assert queue.settled() == []
    assert queue.export_batch() is True
    assert queue.settled() == [Settled("r1", exported=True)]


def test_the_retry_delay_grows_with_failures_and_is_capped() -> None:
    queue = SpanQueue(Collector(up=False), backoff_s=(0.5, 4.0), background=False)
    queue.submit(spans_of("r1"), key="r1")
    ceilings = []
    for _ in range(6):
        queue.export_batch()
        ceilings.append(max(queue.retry_delay() for _ in range(200)))
    assert ceilings[0] <= 0.5
    assert ceilings[1] <= 1.0
    assert all(c <= 4.0 for c in ceilings)


def test_the_thread_exports_on_flush_and_stops_on_shutdown() -> None:
    collector = Collector()
    queue = SpanQueue(collector, delay_s=3600)
    queue.submit(spans_of("r1", steps=1), key="r1")
    assert queue.force_flush(5000)
    assert len(collector.received) == 2
    assert queue.settled() == [Settled("r1", exported=True)]
    queue.shutdown()
    assert not queue.submit(spans_of("r2"), key="r2")  # refused after shutdown


def test_shutdown_with_the_collector_down_makes_one_last_attempt_only() -> None:
    collector = Collector(up=False)
    queue = SpanQueue(collector, delay_s=0, backoff_s=(3600, 3600))
    queue.submit(spans_of("r1"), key="r1")
    assert not queue.force_flush(200)  # down: the flush gives up after its timeout
    queue.shutdown()  # returns although the backoff is an hour
    assert len(queue) == 1
    assert queue.settled() == []  # never settled: the run stays pending and is sent next start


def test_a_batch_the_exporter_raises_on_is_dropped_not_retried_forever() -> None:
    class Broken(Collector):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            raise ValueError("value out of range for int64")

    dropped: list[int] = []
    queue = SpanQueue(Broken(), background=False, on_drop=dropped.append)
    queue.submit(spans_of("r1", steps=1), key="r1")
    assert queue.export_batch() is False
    assert (len(queue), dropped) == (0, [2])
    assert queue.settled() == [Settled("r1", exported=False)]


def test_a_flush_sends_every_batch_without_the_batching_delay() -> None:
    collector = Collector()
    queue = SpanQueue(collector, batch_size=2, delay_s=3600)
    for index in range(3):
        queue.submit(spans_of(f"r{index}", steps=2), key=f"r{index}")  # 9 spans: 5 batches
    began = time.monotonic()
    assert queue.force_flush(5000)
    assert time.monotonic() - began < 2.0  # not an hour per partial batch
    assert len(collector.received) == 9
    assert [settled.key for settled in queue.settled()] == ["r0", "r1", "r2"]
    queue.shutdown()


def test_the_thread_sends_a_full_batch_without_waiting_for_the_delay() -> None:
    collector = Collector()
    queue = SpanQueue(collector, batch_size=3, delay_s=3600)
    queue.submit(spans_of("r1", steps=1), key="r1")  # 2 spans: waits for more
    queue.submit(spans_of("r2", steps=1), key="r2")  # 4 spans: a full batch
    deadline = time.monotonic() + 5
    while len(collector.received) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(collector.received) == 3
    assert queue.settled() == [Settled("r1", exported=True)]  # r2 has a span still queued
    queue.shutdown()
