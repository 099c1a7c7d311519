"""Scrape bench: `/metrics` latency and size with 1,000 Conduit agents, as Prometheus reads it.

The daemon's own objects are built the way the daemon builds them (`exporter.app.Exporter` with
one Conduit source of N agents, its upstream never polled), filled with realistic runs, tool calls
and in-flight runs, committed, and served by the real HTTP server on 127.0.0.1 from a forked
process, as the daemon would be. This process then GETs `/metrics` with httpx, in the plain text
format and in OpenMetrics, each without and with gzip, and again after each of a series of
commits (as polls would make them between scrapes). Last it times the CPU this process spends
rendering the body (`exposition.render`, thread time), idle and between commits, in each format,
and counts the series with `metrics.per_agent_histograms` on (the default) and off.

    python -m bench.scrape [--tiny]
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import random
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from multiprocessing.connection import Connection

import httpx

from bench.common import Report, free_port, median, parser, percentile
from exporter.app import Exporter
from exporter.config.models import MetricsSettings, Settings, StateSettings, TracesSettings
from exporter.config.source import SourceSettings
from exporter.model import Run, Status, ToolStep
from exporter.simulator import catalogue
from exporter.sinks.metrics.exposition import render
from exporter.sinks.traces.ids import run_trace_id
from exporter.web.app import create_app
from exporter.web.server import serve_in_loop

AGENTS, TINY_AGENTS = 1000, 20
SCRAPES, TINY_SCRAPES = 100, 8
MIN_SCRAPES = 10
BUDGET_S = 20.0  # per format: a slow server gets fewer GETs (at least MIN_SCRAPES)
WARMUP = 2
RUNS_PER_AGENT = 30
TOOLS_PER_AGENT = 6
FAILURE_RATIO = 0.1
TARGET_MS = 50.0
START_TIMEOUT_S = 30.0
SOURCE = "support"
NOW = time.time()
# What Prometheus 2.42 sends: OpenMetrics first, the text format as fallback.
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
FORMATS = (
    ("text", {"Accept": "text/plain", "Accept-Encoding": "identity"}),
    ("openmetrics", {"Accept": PROMETHEUS_ACCEPT, "Accept-Encoding": "identity"}),
    ("text+gzip", {"Accept": "text/plain", "Accept-Encoding": "gzip"}),
    ("openmetrics+gzip", {"Accept": PROMETHEUS_ACCEPT, "Accept-Encoding": "gzip"}),
)


@dataclass(slots=True)
class Scrapes:
    """The responses to one format's GETs."""

    seconds: list[float]
    wire_bytes: int
    body: str
    encoding: str


@dataclass(slots=True)
class Fleet:
    """The exporter under test and what it takes to record more runs for its agents."""

    exporter: Exporter
    tools: dict[str, list[str]]
    rng: random.Random
    runs: int = 0

    def record(self, agent_id: str) -> None:
        """Count one terminal run of the agent, with its tool calls."""
        run = _run(agent_id, self.runs, self.rng, self.tools[agent_id])
        self.runs += 1
        trace_id = run_trace_id(SOURCE, run.id, None)
        self.exporter.run_metrics.record_run(SOURCE, "conduit", run, trace_id, NOW)
        self.exporter.run_metrics.record_detail(SOURCE, "conduit", run, run)

    def churn(self, count: int) -> Callable[[], None]:
        """Return a step that records `count` runs of random agents and commits them."""

        def step() -> None:
            for agent_id in self.rng.sample(list(self.tools), count):
                self.record(agent_id)
            self.exporter.poller.commit()

        return step


def build(agents: int, seed: int = 7, *, per_agent_histograms: bool = True) -> Fleet:
    """Return an exporter of one Conduit source of `agents` agents, with runs committed."""
    ids = [f"ag_{index:05d}" for index in range(agents)]
    settings = Settings(
        listen=f"127.0.0.1:{free_port()}",
        state=StateSettings(path=":memory:"),
        traces=TracesSettings(exporter="none"),
        metrics=MetricsSettings(per_agent_histograms=per_agent_histograms),
        sources=[
            SourceSettings(
                name=SOURCE, platform="conduit", base_url="http://127.0.0.1:9", agents=ids
            )
        ],
    )
    exporter = Exporter(settings, transport=httpx.MockTransport(_never_polled))
    rng = random.Random(seed)
    tools = {agent: rng.sample(catalogue.TOOL_NAMES, TOOLS_PER_AGENT) for agent in ids}
    fleet = Fleet(exporter, tools, rng)
    runtime = exporter.runtimes[0]
    for agent_id in ids:
        profile = rng.choice(catalogue.AGENT_PROFILES)[0]
        runtime.directory.names[agent_id] = f"{profile} {agent_id[-3:]}"
        for _ in range(RUNS_PER_AGENT):
            fleet.record(agent_id)
        for index in range(rng.choice((0, 0, 1, 2))):
            status = rng.choice((Status.QUEUED, Status.RUNNING))
            live = Run(f"{agent_id}-live{index}", agent_id, status, status.value, NOW - 5)
            exporter.tracker.observe(SOURCE, live, NOW)
    exporter.metrics.api_requests.labels(SOURCE, "list_runs", "200").inc(agents)
    exporter.poller.commit()
    return fleet


def _never_polled(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"the scrape bench polled {request.url}")


def _run(agent_id: str, index: int, rng: random.Random, tools: Sequence[str]) -> Run:
    """Return a terminal Conduit run as the simulator would make it."""
    failed = rng.random() < FAILURE_RATIO
    table = catalogue.FAILED_DISPOSITIONS if failed else catalogue.COMPLETED_DISPOSITIONS
    duration = rng.lognormvariate(2.5, 1.0)
    steps = tuple(
        ToolStep(rng.choice(tools), error="boom" if rng.random() < 0.05 else None)
        for _ in range(rng.randint(0, 4))
    )
    input_tokens = int(rng.lognormvariate(8.0, 1.0))
    return Run(
        id=f"{agent_id}-run{index}",
        agent_id=agent_id,
        status=Status.FAILED if failed else Status.COMPLETED,
        raw_status="failed" if failed else "completed",
        created_at=NOW - 600 + index,
        duration_s=duration,
        disposition=catalogue.weighted(rng, table),
        input_tokens=input_tokens,
        output_tokens=int(input_tokens * rng.uniform(0.05, 0.4)),
        cost_usd=input_tokens * 3e-6,
        tool_steps=steps,
    )


@contextlib.contextmanager
def serving(fleet: Fleet) -> Iterator[tuple[str, Callable[[int], None]]]:
    """Serve the fleet's endpoints from a forked process, as the daemon would serve them.

    Yield the base URL and a function that has the server record and commit that many runs on
    its event loop (where the poller commits) and returns once it is done.
    """
    parent, child = multiprocessing.get_context("fork").Pipe()
    server = multiprocessing.get_context("fork").Process(
        target=_serve, args=(fleet, child), name="bench-scrape-server"
    )
    server.start()
    try:
        if not parent.poll(START_TIMEOUT_S):
            raise RuntimeError("the bench server did not start")
        url: str = parent.recv()

        def churn(count: int) -> None:
            parent.send(count)
            parent.recv()

        yield url, churn
    finally:
        parent.send(None)
        server.join(timeout=10)
        if server.is_alive():
            server.kill()
            server.join(timeout=5)


def _serve(fleet: Fleet, conn: Connection) -> None:
    asyncio.run(_serve_until_told(fleet, conn))


async def _serve_until_told(fleet: Fleet, conn: Connection) -> None:
    exporter = fleet.exporter
    app = create_app(exporter.registry, exporter.health, exporter.clock)
    server = await serve_in_loop(app, "127.0.0.1", free_port())
    conn.send(server.url)
    loop = asyncio.get_running_loop()
    while (count := await loop.run_in_executor(None, conn.recv)) is not None:
        fleet.churn(count)()
        conn.send(count)
    await server.stop(grace=1.0)


def scrape(
    client: httpx.Client,
    headers: dict[str, str],
    count: int,
    between: Callable[[], None] = lambda: None,
) -> Scrapes:
    """GET /metrics up to `count` times (after a warm-up) and time each complete response.

    `between` runs before each GET, untimed (e.g. a commit of new runs).
    """
    seconds: list[float] = []
    for _ in range(WARMUP):
        response = client.get("/metrics", headers=headers)
    deadline = time.perf_counter() + BUDGET_S
    while len(seconds) < count and (len(seconds) < MIN_SCRAPES or time.perf_counter() < deadline):
        between()
        started = time.perf_counter()
        response = client.get("/metrics", headers=headers)
        seconds.append(time.perf_counter() - started)
        response.raise_for_status()
    encoding = response.headers.get("content-encoding", "identity")
    return Scrapes(seconds, response.num_bytes_downloaded, response.text, encoding)


def samples(body: str) -> int:
    """Return how many sample lines an exposition holds."""
    return sum(1 for line in body.splitlines() if line and not line.startswith("#"))


def series_counts(agents: int) -> tuple[int, int]:
    """Return the series (text-format samples) with per-agent histograms on and off."""
    counts = []
    for per_agent in (True, False):
        exporter = build(agents, per_agent_histograms=per_agent).exporter
        counts.append(samples(render(exporter.registry, "text/plain").body.decode()))
    return counts[0], counts[1]


def in_process(exporter: Exporter, accept: str, count: int) -> list[float]:
    """Time the /metrics handler without a socket (through httpx's ASGI transport)."""
    app = create_app(exporter.registry, exporter.health, exporter.clock)

    async def go() -> list[float]:
        seconds = []
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for _ in range(count):
                started = time.perf_counter()
                response = await client.get("/metrics", headers={"Accept": accept})
                seconds.append(time.perf_counter() - started)
                response.raise_for_status()
        return seconds

    return asyncio.run(go())


def render_cpu(
    exporter: Exporter,
    headers: dict[str, str],
    count: int,
    between: Callable[[], None] = lambda: None,
) -> list[float]:
    """Return the CPU seconds (this thread) of each of `count` renders of the /metrics body."""
    seconds = []
    for _ in range(count):
        between()
        started = time.thread_time()
        render(exporter.registry, headers["Accept"], headers["Accept-Encoding"])
        seconds.append(time.thread_time() - started)
    return seconds


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def _cpu(seconds: list[float]) -> str:
    return f"{_ms(median(seconds))} ({_ms(percentile(seconds, 99))})"


def report_format(report: Report, name: str, scrapes: Scrapes) -> None:
    """Add one format's rows: latency, size on the wire and samples."""
    target = f"<= {TARGET_MS:.0f} ms"
    report.add(f"{name}: GETs", str(len(scrapes.seconds)))
    report.add(f"{name}: median", _ms(median(scrapes.seconds)), target)
    report.add(f"{name}: p99", _ms(percentile(scrapes.seconds, 99)), target)
    report.add(f"{name}: bytes ({scrapes.encoding})", f"{scrapes.wire_bytes:,} B")
    report.add(f"{name}: samples", f"{samples(scrapes.body):,}")


def main(argv: list[str]) -> int:
    """Build, serve and scrape; print the table."""
    args = parser("Scrape bench: /metrics latency and size with 1,000 agents.").parse_args(argv)
    agents, count = (TINY_AGENTS, TINY_SCRAPES) if args.tiny else (AGENTS, SCRAPES)
    runs = max(1, agents // 20)
    started = time.perf_counter()
    fleet = build(agents)
    exporter = fleet.exporter
    report = Report(f"scrape: /metrics with {agents:,} agents, {count} GETs per format")
    report.add("agents", f"{agents:,}")
    report.add("runs recorded", f"{fleet.runs:,}")
    report.add("build and commit", _ms(time.perf_counter() - started))
    on, off = series_counts(agents)
    report.add("series, per_agent_histograms: true", f"{on:,}")
    report.add("series, per_agent_histograms: false", f"{off:,}")
    with serving(fleet) as (url, churn), httpx.Client(base_url=url, timeout=60) as client:
        first = time.perf_counter()
        client.get("/metrics", headers=dict(FORMATS[1][1])).raise_for_status()
        report.add("first GET (openmetrics)", _ms(time.perf_counter() - first))
        for accept in ("text/plain", PROMETHEUS_ACCEPT):
            kind = "openmetrics" if accept is PROMETHEUS_ACCEPT else "text"
            rendered = in_process(exporter, accept, min(count, MIN_SCRAPES))
            report.add(f"{kind}: handler without socket, median", _ms(median(rendered)))
        for name, headers in FORMATS:
            report_format(report, name, scrape(client, headers, count))
        for name, headers in FORMATS[1::2]:
            step = partial(churn, runs)
            report_format(
                report, f"{name}, {runs} runs/commit", scrape(client, headers, count, step)
            )
    for name, headers in FORMATS:  # the served copy is the forked one: churn this one freely
        cpu = render_cpu(exporter, headers, count)
        report.add(f"{name}: render CPU, median (p99)", _cpu(cpu))
    for name, headers in FORMATS[1::2]:
        cpu = render_cpu(exporter, headers, count, fleet.churn(runs))
        report.add(f"{name}, {runs} runs/commit: render CPU, median (p99)", _cpu(cpu))
    report.print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
