"""A bounded span queue in front of the span exporter, retrying while the collector is down.

    TraceSink ──submit(spans, key)──► deque (≤ max_size spans) ──batches──► SpanExporter
                                                                 │ failure: keep the batch,
                                                                 │ back off (0.5 s … 30 s), retry
    poller ◄──settled(): keys whose spans were all exported ─────┘

A run's spans are admitted together or not at all: when they do not fit, they are dropped and
counted (`on_drop(n)`), and the run is settled as dropped. A batch the exporter raises on (it
cannot be encoded) is dropped the same way instead of being retried forever. A run is settled as
exported only once its last span was accepted by the exporter, so the poller marks a trace done
only after the collector has it: a crash before that re-sends the run's spans (identical ids),
never loses them.

One daemon thread exports; `export_batch` is the step it repeats, callable directly in tests.
"""

from __future__ import annotations

import logging
import random
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import islice, repeat

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

logger = logging.getLogger(__name__)

DropCallback = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class Settled:
    """A submitted run whose spans left the queue: exported, or dropped for want of room."""

    key: object
    exported: bool


class SpanQueue(SpanProcessor):
    """Queue spans, export them in batches from one thread, retry failed batches with backoff."""

    def __init__(
        self,
        exporter: SpanExporter,
        *,
        max_size: int = 8192,
        batch_size: int = 512,
        delay_s: float = 1.0,
        backoff_s: tuple[float, float] = (0.5, 30.0),
        on_drop: DropCallback | None = None,
        background: bool = True,
    ) -> None:
        self._exporter = exporter
        self.max_size = max_size
        self._batch_size = batch_size
        self._delay_s = delay_s
        self._backoff_s = backoff_s
        self._on_drop = on_drop or (lambda _n: None)
        self._entries: deque[ReadableSpan] = deque()
        # beside each span, its run's key if it is the run's last span, else None (no tuple per
        # span: fewer objects for the garbage collector to walk)
        self._keys: deque[object | None] = deque()
        self._settled: list[Settled] = []
        self._cond = threading.Condition()
        self._failures = 0
        self._stopping = False
        self._urgent = False  # cut the current wait (batching delay or backoff) short, once
        self._flushing = 0  # flushes waiting: send partial batches without the batching delay
        self._rng = random.Random()
        self._thread: threading.Thread | None = None
        if background:
            self._thread = threading.Thread(target=self._work, name="span-queue", daemon=True)
            self._thread.start()

    def submit(self, spans: Sequence[ReadableSpan], key: object) -> bool:
        """Queue one run's spans; drop and count them (False) when they do not fit."""
        with self._cond:
            queued = len(self._entries)
            if self._stopping or queued + len(spans) > self.max_size:
                self._settled.append(Settled(key, exported=False))
                dropped = True
            else:
                if spans:
                    self._entries.extend(spans)
                    self._keys.extend(repeat(None, len(spans) - 1))
                    self._keys.append(key)
                dropped = False
                # wake the export thread only when what it waits for may have come true
                if not queued or queued < self._batch_size <= queued + len(spans):
                    self._cond.notify_all()
        if dropped:
            self._on_drop(len(spans))
        return not dropped

    def has_room(self) -> bool:
        """Say whether the queue is below its size, i.e. worth fetching more traces for."""
        with self._cond:
            return len(self._entries) < self.max_size

    def __len__(self) -> int:
        with self._cond:
            return len(self._entries)

    def settled(self) -> list[Settled]:
        """Return and forget the runs settled since the last call."""
        with self._cond:
            done, self._settled = self._settled, []
        return done

    def export_batch(self) -> bool | None:
        """Export the oldest batch; return whether it went out (None: the queue was empty)."""
        with self._cond:
            batch = list(islice(self._entries, self._batch_size))
        if not batch:
            return None
        try:
            result = self._exporter.export(batch)
        except Exception:  # e.g. a span that cannot be encoded: retrying would never end
            logger.exception("span exporter raised; dropping a batch of %d spans", len(batch))
            self._remove(batch, exported=False)
            self._on_drop(len(batch))
            return False
        if result is not SpanExportResult.SUCCESS:
            self._failures += 1
            return False
        self._remove(batch, exported=True)
        self._failures = 0
        return True

    def _remove(self, batch: list[ReadableSpan], *, exported: bool) -> None:
        with self._cond:
            pop, pop_key = self._entries.popleft, self._keys.popleft
            for _ in batch:
                pop()
                key = pop_key()
                if key is not None:
                    self._settled.append(Settled(key, exported))
            self._cond.notify_all()

    def retry_delay(self) -> float:
        """Return the full-jitter backoff after the current streak of failed exports."""
        base, ceiling = self._backoff_s
        return self._rng.uniform(0, min(ceiling, base * 2 ** max(0, self._failures - 1)))

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Do nothing: spans are built finished."""

    def on_end(self, span: ReadableSpan) -> None:
        """Queue one span on its own (the `SpanProcessor` interface)."""
        self.submit([span], key=None)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Wait until the queue is empty, retrying at once; False after the timeout."""
        with self._cond:
            self._urgent = True
            self._cond.notify_all()
            if self._thread is None:
                return not self._entries
            self._flushing += 1
            try:
                return self._cond.wait_for(lambda: not self._entries, timeout_millis / 1000)
            finally:
                self._flushing -= 1

    def shutdown(self) -> None:
        """Stop the export thread after one last attempt at what is queued, then the exporter."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join()
        if self._entries:
            logger.warning(
                "%d spans not exported before shutdown; their runs stay pending and are "
                "exported after the next start",
                len(self._entries),
            )
        self._exporter.shutdown()

    def _work(self) -> None:
        while self._wait_for_batch():
            ok = self.export_batch()
            if ok is False:
                self._pause(self.retry_delay())

    def _wait_for_batch(self) -> bool:
        """Wait for a full batch, the delay, a flush or shutdown; False when the thread ends."""
        with self._cond:
            self._cond.wait_for(lambda: self._entries or self._stopping)
            if not self._stopping and not self._urgent:
                self._cond.wait_for(self._batch_ready, self._delay_s)
            self._urgent = False
            return bool(self._entries) and not (self._stopping and self._failures)

    def _batch_ready(self) -> bool:
        return (
            len(self._entries) >= self._batch_size
            or self._stopping
            or self._urgent
            or self._flushing > 0
        )

    def _pause(self, seconds: float) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._stopping or self._urgent, seconds)
