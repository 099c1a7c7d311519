"""Wire the daemon from one `Settings`: state, sources, sinks, poller and HTTP server.

Lifecycle: `run(stop)` serves, polls (and pushes metrics over OTLP when enabled) until `stop` is
set, then shuts down in a fixed order, each step bounded: poller, final commit, span flush with the
last OTLP metrics push, HTTP clients, server, state file.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping

import httpx
from opentelemetry.sdk.trace.export import SpanExporter
from prometheus_client import CollectorRegistry

from exporter.config.models import Settings
from exporter.config.source import SourceSettings
from exporter.model import SourceInfo
from exporter.poll.discovery import AgentInfoCollector, SourceRuntime
from exporter.poll.health import Health
from exporter.poll.poller import Poller
from exporter.poll.schedule import Schedule
from exporter.poll.state import StateStore
from exporter.poll.tracker import Tracker
from exporter.sinks.metrics.in_progress import InProgressCollector
from exporter.sinks.metrics.otlp_push import MetricsPush, RegistryReader, otlp_exporter
from exporter.sinks.metrics.runs import RunMetrics
from exporter.sinks.metrics.selfmetrics import SelfMetrics
from exporter.sinks.traces.exporters import build_span_exporter
from exporter.sinks.traces.queue import SpanQueue
from exporter.sinks.traces.redaction import Redactor
from exporter.sinks.traces.sink import TraceSink
from exporter.sources.budget import build_budgets
from exporter.sources.registry import spec
from exporter.web.app import create_app
from exporter.web.auth import protect
from exporter.web.config import WebConfig
from exporter.web.reload import LiveWebConfig
from exporter.web.server import serve_in_loop, stop_on_signals
from exporter.wiring import budget_spec, build_source

log = logging.getLogger(__name__)

# Shutdown bounds; together they keep an exit within 10 s of SIGTERM.
POLLER_GRACE_S = 4.0
FLUSH_TIMEOUT_S = 2.5
QUEUE_STOP_S = 0.5
SERVER_GRACE_S = 2.0
METRICS_PUSH_STOP_S = 1.0  # the last OTLP metrics push, alongside QUEUE_STOP_S


class Exporter:
    """The agent-runs-exporter daemon."""

    def __init__(
        self,
        settings: Settings,
        *,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], float] = time.time,
        transport: httpx.AsyncBaseTransport | None = None,
        span_exporter: SpanExporter | None = None,
        environ: Mapping[str, str] = os.environ,
        web: WebConfig | None = None,
    ) -> None:
        self.settings = settings
        self.web = web or WebConfig()
        self.clock = clock
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.metrics = SelfMetrics(self.registry)
        self.metrics.shard_ordinal.set(settings.sharding.shard)
        self.metrics.total_shards.set(settings.sharding.total_shards)
        self.store = StateStore(settings.state.path, clock=clock)
        self.health = Health(settings.poll_interval, state_problem=lambda: self.store.problem)
        self.traces = self._trace_sink(span_exporter, environ)
        self.tracker = Tracker(
            lookback_s=settings.lookback,
            traces_enabled=self.traces is not None,
            sample_successful=settings.traces.sample_successful,
        )
        self.run_metrics = RunMetrics(
            {
                "duration": settings.metrics.duration_buckets,
                "tokens": settings.metrics.token_buckets,
                "cost": settings.metrics.cost_buckets,
            },
            per_agent_histograms=settings.metrics.per_agent_histograms,
        )
        self.budgets = build_budgets(
            map(budget_spec, settings.sources), clock, shards=settings.sharding.total_shards
        )
        self.poller = Poller(
            tracker=self.tracker,
            store=self.store,
            run_metrics=self.run_metrics,
            self_metrics=self.metrics,
            traces=self.traces,
            clock=clock,
            poll_interval_s=settings.poll_interval,
            detail_concurrency=settings.traces.detail_concurrency,
        )
        self.runtimes = [self._runtime(source, transport) for source in settings.sources]
        self._restore()
        self.metrics.state_resets.inc(self.store.resets)
        self.run_metrics.publish()  # the declared zeros; restored values are published already
        self.registry.register(self.run_metrics)
        self.registry.register(InProgressCollector(self.tracker.in_flight_counts, self._agents))
        self.registry.register(AgentInfoCollector(self._agent_infos))
        self.metrics_reader = RegistryReader(self.registry, self.run_metrics)
        self.metrics_push = self._metrics_push(environ)

    def _metrics_push(self, environ: Mapping[str, str]) -> MetricsPush | None:
        """Build the OTLP metrics push when enabled (it starts with `run`)."""
        otlp = self.settings.metrics.otlp
        if not otlp.enabled:
            return None
        exporter, temporality = otlp_exporter(otlp, environ)
        return MetricsPush(
            exporter, self.metrics_reader, interval_s=otlp.interval, temporality=temporality
        )

    def _trace_sink(
        self, span_exporter: SpanExporter | None, environ: Mapping[str, str]
    ) -> TraceSink | None:
        traces = self.settings.traces
        exporter = span_exporter or build_span_exporter(
            traces.exporter,
            endpoint=traces.endpoint,
            protocol=traces.protocol,
            file_path=traces.file,
            # Unset in the config: the OTEL_EXPORTER_OTLP_*TIMEOUT variables decide.
            timeout_s=traces.timeout if "timeout" in traces.model_fields_set else None,
            environ=environ,
            on_result=self.metrics.count_spans,
        )
        if exporter is None:
            log.info("traces are off: no run details are fetched and no spans are exported")
            return None
        queue = SpanQueue(
            exporter, max_size=traces.queue_size, on_drop=self.metrics.spans_dropped.inc
        )
        return TraceSink(
            queue,
            capture_content=traces.capture_content,
            max_content_chars=traces.max_content_chars,
            redactor=Redactor(traces.redact_keys),
            max_tool_steps=traces.max_tool_steps,
            on_steps_dropped=self.metrics.count_steps_dropped,
            environ=environ,
        )

    def _runtime(
        self, source: SourceSettings, transport: httpx.AsyncBaseTransport | None
    ) -> SourceRuntime:
        requests = self.metrics.api_requests

        def on_response(endpoint: str, code: str) -> None:
            requests.labels(source.name, endpoint, code).inc()

        built = build_source(
            source,
            on_response=on_response,
            transport=transport,
            clock=self.clock,
            budget=self.budgets[source.name],
        )
        self.metrics.declare_source(source.name, spec(source.platform).endpoints)
        runtime = SourceRuntime(
            source=built,
            agents=source.agents,
            info=SourceInfo(
                source.name, source.platform, source.service_name, source.capture_content
            ),
            health=self.health.add(source.name, self.clock()),
            max_pages=source.max_pages_per_poll,
            discovery_interval_s=source.discovery_interval,
            sharding=self.settings.sharding,
            schedule=Schedule(self.settings.poll_interval, source.max_poll_interval),
            budget=self.budgets[source.name],
        )
        for agent_id in runtime.directory.ids:
            self.poller.declare(runtime, agent_id)
        return runtime

    def _restore(self) -> None:
        now = self.clock()
        snapshot = self.store.load(
            self.tracker.prune_before(now), awaiting_from=self.tracker.overdue_kept_from(now)
        )
        self.tracker.restore(snapshot)
        bad_series = self.run_metrics.restore(snapshot.series)
        self.metrics.state_rows_dropped.inc(self.store.dropped + bad_series)
        if snapshot.runs or snapshot.series:
            log.info(
                "restored state from %s: %d runs in the lookback window, %d metric series",
                self.store.path,
                len(snapshot.runs),
                len(snapshot.series),
            )

    def _agents(self) -> Iterator[tuple[str, str, str]]:
        for runtime in self.runtimes:
            for agent_id in runtime.directory.ids:
                yield runtime.info.name, runtime.info.platform, agent_id

    def _agent_infos(self) -> Iterator[tuple[str, str, str, str | None]]:
        for runtime in self.runtimes:
            for agent_id in runtime.directory.ids:
                name = runtime.directory.name(agent_id)
                yield runtime.info.name, runtime.info.platform, agent_id, name

    async def run(self, stop: asyncio.Event) -> None:
        """Serve and poll until `stop` is set, then shut down."""
        host, port = self.settings.listen_address
        web = LiveWebConfig(self.web)
        app = protect(
            create_app(self.registry, self.health, self.clock),
            web,
            health_without_auth=self.settings.web.health_without_auth,
            on_failure=self.metrics.count_auth_failure,
        )
        try:
            server = await serve_in_loop(app, host, port, tls=web.server_context)
        except OSError:
            await self.close()
            raise
        log.info(
            "serving /metrics, /healthz and /readyz on %s (%s)", server.url, self.web.describe()
        )
        if self.metrics_push is not None:
            self.metrics_reader.loop = asyncio.get_running_loop()  # read where the metrics change
            self.metrics_push.start()
        poller = asyncio.create_task(self.poller.run(self.runtimes, stop), name="poller")
        try:
            await stop.wait()
        finally:
            await self._stop_poller(poller)
            await self.close()
            await server.stop(grace=SERVER_GRACE_S)

    async def _stop_poller(self, poller: asyncio.Task[None]) -> None:
        done, _ = await asyncio.wait({poller}, timeout=POLLER_GRACE_S)
        if not done:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
        elif poller.exception() is not None:
            log.error("poller ended with an error: %s", poller.exception())

    async def close(self) -> None:
        """Flush spans, commit state (with what the flush settled) and release connections."""
        if self.traces is not None:
            await asyncio.to_thread(self.traces.force_flush, FLUSH_TIMEOUT_S)
        self.poller.commit()
        stopping = []
        if self.traces is not None:
            stopping.append(asyncio.to_thread(self.traces.shutdown, QUEUE_STOP_S))
        if self.metrics_push is not None:
            stopping.append(asyncio.to_thread(self.metrics_push.shutdown, METRICS_PUSH_STOP_S))
        await asyncio.gather(*stopping)
        for runtime in self.runtimes:
            await runtime.source.aclose()
        self.store.close()


async def serve(
    settings: Settings, stop: asyncio.Event | None = None, web: WebConfig | None = None
) -> int:
    """Run the exporter until `stop` (default: SIGINT or SIGTERM); return the exit code."""
    stop = stop or stop_on_signals()
    try:
        exporter = Exporter(settings, web=web)
    except OSError as exc:  # e.g. an unreadable token_file or state directory
        log.error("cannot start the exporter: %s", exc)
        return 1
    try:
        await exporter.run(stop)
    except OSError as exc:
        log.error("cannot serve on %s: %s (is the port in use?)", settings.listen, exc)
        return 1
    return 0
