"""Hand a finished run's spans to a span processor (or the span queue), and flush it.

The runs already happened, so nothing is instrumented live: `spans` builds each span directly,
and this sink passes them on. Tool inputs and outputs are recorded only when content capture is
switched on (GenAI convention: opt-in), with sensitive keys redacted (`redaction`) and the
exporter's own secrets masked. At most `max_tool_steps` steps of a run become spans; the rest are
counted through `on_steps_dropped`.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor

from exporter.logs import redact
from exporter.model import Run, SourceInfo
from exporter.sinks.traces import ids
from exporter.sinks.traces.queue import Settled, SpanQueue
from exporter.sinks.traces.redaction import Redactor, serialize
from exporter.sinks.traces.resource import build_resource
from exporter.sinks.traces.spans import run_spans, truncate

logger = logging.getLogger(__name__)


class TraceSink:
    """Turn finished runs into spans and pass them to one span processor."""

    def __init__(
        self,
        processor: SpanProcessor,
        *,
        capture_content: bool = False,
        max_content_chars: int = 4096,
        redactor: Redactor | None = None,
        max_tool_steps: int = 1000,
        on_steps_dropped: Callable[[str, int], None] = lambda _source, _count: None,
        environ: Mapping[str, str] = os.environ,
    ) -> None:
        self._processor = processor
        self._capture_content = capture_content
        self._max_content_chars = max_content_chars
        self._redactor = redactor or Redactor()
        self._max_tool_steps = max_tool_steps
        self._on_steps_dropped = on_steps_dropped
        self._environ = environ
        self._resources: dict[SourceInfo, Resource] = {}
        self._settled: list[Settled] = []

    def export(self, source: SourceInfo, run: Run) -> str:
        """Build the run's spans, hand each to the processor and return the 32-hex trace id."""
        trace_id = ids.trace_of(source.name, run)
        spans = self.build_spans(source, run)
        for span in spans:
            self._processor.on_end(span)
        logger.debug("exported run %s as trace %s (%d spans)", run.id, trace_id, len(spans))
        return trace_id

    def submit(self, source: SourceInfo, run: Run, key: object) -> bool:
        """Queue the run's spans; `key` comes back from `settled` once they are out (or dropped)."""
        spans = self.build_spans(source, run)
        if isinstance(self._processor, SpanQueue):
            return self._processor.submit(spans, key)
        for span in spans:
            self._processor.on_end(span)
        self._settled.append(Settled(key, exported=True))
        return True

    def settled(self) -> list[Settled]:
        """Return the runs whose spans were exported or dropped since the last call."""
        if isinstance(self._processor, SpanQueue):
            return self._processor.settled()
        done, self._settled = self._settled, []
        return done

    def has_room(self) -> bool:
        """Say whether more spans fit in the queue (always, without one)."""
        return not isinstance(self._processor, SpanQueue) or self._processor.has_room()

    def build_spans(self, source: SourceInfo, run: Run) -> list[ReadableSpan]:
        """Return the run's root span followed by one span per tool step, in order."""
        steps = run.tool_steps or ()
        dropped = len(steps) - self._max_tool_steps
        if dropped > 0:
            self._on_steps_dropped(source.name, dropped)
            steps = steps[: self._max_tool_steps]
            attributes = {**run.attributes, "agent_run.tool_steps_dropped": str(dropped)}
            run = replace(run, tool_steps=steps, attributes=attributes)
        capture = (
            self._capture_content if source.capture_content is None else source.capture_content
        )
        return run_spans(source, run, self._resource(source), self._content if capture else None)

    def force_flush(self, timeout_s: float) -> bool:
        """Flush queued spans; give up (False) after `timeout_s`."""
        return _bounded(lambda: self._processor.force_flush(int(timeout_s * 1000)), timeout_s)

    def shutdown(self, timeout_s: float) -> None:
        """Flush and stop the processor, waiting at most `timeout_s`."""
        if not _bounded(self._processor.shutdown, timeout_s):
            logger.warning("span processor did not shut down within %ss", timeout_s)

    def _resource(self, source: SourceInfo) -> Resource:
        resource = self._resources.get(source)
        if resource is None:
            resource = self._resources[source] = build_resource(source, self._environ)
        return resource

    def _content(self, value: Any) -> str | None:
        if value is None:
            return None
        text = redact(serialize(self._redactor.redact(value)))
        return truncate(text, self._max_content_chars)


def _bounded(call: Callable[[], object], timeout_s: float) -> bool:
    """Run `call` in a daemon thread; return its truthiness, or False if it outlasts the timeout."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(call())
        except Exception:  # shutdown paths log and go on
            logger.exception("span processor call failed")

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout_s)
    return bool(outcome) and outcome[0] is not False
