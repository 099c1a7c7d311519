"""Ingest: runs per second through the real pipeline, against the floor, over the same pages.

A local upstream (`bench.upstream`, another process) answers pre-rendered Conduit pages at once.
Each round, in the same run and in alternating order:

- **floor**: the same pages fetched with httpx (one client, the pipeline's concurrency) and their
  JSON decoded, nothing else; once more with the source's own parse into `Run`s on top;
- **pipeline**: the real exporter (`exporter.app.Exporter` from a real config, state in a SQLite
  file) polled until every run is counted, committed and published; with spans, until every
  run's detail was fetched and its spans (1 root + 5 tool steps) accepted by a local OTLP
  receiver (another process).

Runs/s are medians over the rounds; the ratio is pipeline / floor in the same mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from bench import common, receiver
from bench.upstream import agent_ids
from exporter.app import Exporter
from exporter.config.models import load_settings
from exporter.poll.poller import AGENT_CONCURRENCY
from exporter.sources.conduit import parse_detail, parse_list_page

STEPS = 5


@dataclass(frozen=True, slots=True)
class Size:
    """How much to ingest per round."""

    agents: int
    pages: int
    page_size: int
    rounds: int

    @property
    def runs(self) -> int:
        """Return the runs per round."""
        return self.agents * self.pages * self.page_size


# Metrics only, then with spans: each run with spans costs a detail request, so fewer runs.
FULL = (Size(agents=4, pages=100, page_size=100, rounds=3), Size(4, 10, 100, 3))
TINY = (Size(agents=2, pages=3, page_size=50, rounds=1), Size(2, 1, 50, 1))


async def floor(base_url: str, size: Size, *, parse: bool, details: bool) -> float:
    """Fetch (and decode, and maybe parse) every page once; return the seconds it took."""
    async with httpx.AsyncClient(base_url=base_url) as client:
        started = time.perf_counter()
        agents = asyncio.Semaphore(AGENT_CONCURRENCY)
        run_ids: list[tuple[str, str]] = []

        async def agent(agent_id: str) -> None:
            cursor = None
            async with agents:
                while True:
                    params = {"limit": size.page_size, "cursor": cursor}
                    response = await client.get(f"/v1/agents/{agent_id}/runs", params=params)
                    body = response.json()
                    if parse:
                        run_ids.extend((r.agent_id, r.id) for r in parse_list_page(body).runs)
                    else:
                        run_ids.extend((agent_id, item["id"]) for item in body["data"])
                    cursor = body["next_cursor"]
                    if not body["has_more"]:
                        return

        await asyncio.gather(*(agent(a) for a in agent_ids(size.agents)))
        if details:
            await _details(client, run_ids, parse=parse)
        elapsed = time.perf_counter() - started
    if len(run_ids) != size.runs:
        raise RuntimeError(f"floor read {len(run_ids)} runs, expected {size.runs}")
    return elapsed


async def _details(
    client: httpx.AsyncClient, run_ids: list[tuple[str, str]], *, parse: bool
) -> None:
    limit = asyncio.Semaphore(4)  # the default traces.detail_concurrency

    async def one(agent_id: str, run_id: str) -> None:
        async with limit:
            body = (await client.get(f"/v1/agents/{agent_id}/runs/{run_id}")).json()
            if parse:
                parse_detail(body)

    await asyncio.gather(*(one(a, r) for a, r in run_ids))


def _config(workdir: Path, base_url: str, size: Size, otlp: str | None) -> Path:
    traces: dict[str, Any] = {"exporter": "none"}
    if otlp is not None:
        traces = {"exporter": "otlp", "endpoint": otlp, "protocol": "http/protobuf"}
    config = {
        "poll_interval": "15s",
        "lookback": "24h",
        "state": {"path": str(workdir / "state.db")},
        "traces": traces,
        "sources": [
            {
                "name": "bench",
                "platform": "conduit",
                "base_url": base_url,
                "token": "bench-token",
                "agents": agent_ids(size.agents),
                "page_size": size.page_size,
                "max_pages_per_poll": size.pages + 1,
                "max_requests_per_minute": 0,
            }
        ],
    }
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


async def pipeline(base_url: str, size: Size, otlp: str | None) -> float:
    """Ingest every run with a fresh exporter; return the seconds it took."""
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        settings = load_settings(_config(Path(tmp), base_url, size, otlp), environ={})
        exporter = Exporter(settings, environ={})
        runtime = exporter.runtimes[0]
        try:
            started = time.perf_counter()
            while runtime.counted < size.runs or _unsettled(exporter):
                await exporter.poller.poll_once(runtime)
                if exporter.traces is not None:
                    await _settle(exporter)
            elapsed = time.perf_counter() - started
        finally:
            await exporter.close()
    if runtime.counted != size.runs:
        raise RuntimeError(f"pipeline counted {runtime.counted} runs, expected {size.runs}")
    return elapsed


def _unsettled(exporter: Exporter) -> bool:
    return exporter.traces is not None and len(exporter.tracker.pending_traces("bench")) > 0


async def _settle(exporter: Exporter) -> None:
    """Wait for the span queue to drain, then commit what the collector accepted."""
    assert exporter.traces is not None
    await asyncio.to_thread(exporter.traces.force_flush, 30.0)
    exporter.poller.commit()


def main(argv: list[str]) -> int:
    """Measure the floor and the pipeline, metrics only and with spans; print the figures."""
    options = common.parser(__doc__.split("\n", 1)[0]).parse_args(argv)
    metrics_size, spans_size = TINY if options.tiny else FULL
    report = common.Report(
        f"ingest: {metrics_size.runs:,} runs per round metrics only, {spans_size.runs:,} with "
        f"spans; medians of {metrics_size.rounds} rounds"
    )
    with upstream(metrics_size) as base_url:
        timings = _measure(metrics_size, _metrics_measures(base_url, metrics_size))
    decode, parsed, metrics = (timings[k] for k in ("decode", "parse", "pipeline"))
    runs = metrics_size.runs
    report.add("floor: fetch + JSON decode", common.rate(runs, decode))
    report.add("floor: fetch + decode + parse", common.rate(runs, parsed))
    report.add("pipeline, metrics only", common.rate(runs, metrics), ">= 20,000/s")
    report.add("  ratio to fetch + decode", f"{decode / metrics:.0%}", ">= 60%")
    report.add("  ratio to fetch + decode + parse", f"{parsed / metrics:.0%}", ">= 60%")
    with upstream(spans_size) as base_url, receiver.running() as otlp:
        measures = _spans_measures(base_url, spans_size, otlp=otlp.url)
        timings = _measure(spans_size, measures)
    floor_details, spans = timings["details"], timings["pipeline"]
    runs = spans_size.runs
    report.add("floor with details: fetch + decode + parse", common.rate(runs, floor_details))
    report.add(
        f"pipeline with spans ({STEPS} tool steps/run)", common.rate(runs, spans), ">= 5,000/s"
    )
    report.add("  ratio to floor with details", f"{floor_details / spans:.0%}", ">= 60%")
    report.print()
    return 0


@contextlib.contextmanager
def upstream(size: Size) -> Iterator[str]:
    """Serve `size` worth of pre-rendered pages; yield the upstream's base URL."""
    port = common.free_port()
    args = ["--port", str(port), "--agents", str(size.agents), "--pages", str(size.pages)]
    args += ["--page-size", str(size.page_size), "--steps", str(STEPS)]
    with common.child("bench.upstream", *args):
        yield f"http://127.0.0.1:{port}"


Measure = Callable[[], Coroutine[Any, Any, float]]


def _metrics_measures(base_url: str, size: Size) -> dict[str, Measure]:
    return {
        "decode": lambda: floor(base_url, size, parse=False, details=False),
        "parse": lambda: floor(base_url, size, parse=True, details=False),
        "pipeline": lambda: pipeline(base_url, size, None),
    }


def _spans_measures(base_url: str, size: Size, otlp: str) -> dict[str, Measure]:
    return {
        "details": lambda: floor(base_url, size, parse=True, details=True),
        "pipeline": lambda: pipeline(base_url, size, otlp),
    }


def _measure(size: Size, measures: dict[str, Measure]) -> dict[str, float]:
    """Run every measure once per round, interleaved, after one unrecorded warm-up round;
    return each one's median seconds."""
    samples: dict[str, list[float]] = {name: [] for name in measures}
    for measure in measures.values():
        asyncio.run(measure())
    for _ in range(size.rounds):
        for name, measure in measures.items():
            samples[name].append(asyncio.run(measure()))
    return {name: common.median(values) for name, values in samples.items()}


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
