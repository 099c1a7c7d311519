"""Paging against a scripted fake source: how far each poll reads, and what it counts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from pathlib import Path

from prometheus_client import CollectorRegistry

from exporter.errors import ServerError
from exporter.model import Run, SourceInfo, Status
from exporter.poll.discovery import SourceRuntime
from exporter.poll.health import SourceHealth
from exporter.poll.poller import Poller
from exporter.poll.state import StateStore
from exporter.poll.tracker import Tracker
from exporter.sinks.metrics.runs import RunMetrics
from exporter.sinks.metrics.selfmetrics import SelfMetrics
from exporter.sources.base import Page
from tests.unit.fakeclock import START, FakeClock
from tests.unit.runs import make_run

PAGE = 3


class ScriptedSource:
    """A source whose runs the test sets; pages of three, newest first, reads recorded."""

    platform = "conduit"
    terminal_statuses: tuple[str, ...] = ("completed", "failed")
    dispositions: tuple[str, ...] = ("resolved",)

    def __init__(self) -> None:
        self.name = "src"
        self.runs: list[Run] = []
        self.pages_read: list[int] = []

    async def pages(self, agent_id: str) -> AsyncGenerator[Page, None]:
        ordered = sorted(self.runs, key=lambda r: r.created_at, reverse=True)
        for number, start in enumerate(range(0, len(ordered), PAGE), start=1):
            self.pages_read.append(number)
            chunk = ordered[start : start + PAGE]
            yield Page(runs=chunk, has_more=start + PAGE < len(ordered))

    async def agent_name(self, agent_id: str) -> str | None:
        return None

    async def fetch_detail(self, run: Run) -> Run:
        return run

    async def aclose(self) -> None:
        return None


def setup(tmp_path: Path) -> tuple[Poller, SourceRuntime, ScriptedSource, RunMetrics, FakeClock]:
    clock = FakeClock(START)
    source = ScriptedSource()
    metrics = RunMetrics({"duration": [1.0], "tokens": [100.0], "cost": [0.1]})
    poller = Poller(
        tracker=Tracker(lookback_s=3600, traces_enabled=False),
        store=StateStore(str(tmp_path / "state.db")),
        run_metrics=metrics,
        self_metrics=SelfMetrics(CollectorRegistry()),
        traces=None,
        clock=clock,
        poll_interval_s=15,
    )
    runtime = SourceRuntime(
        source=source,
        agents=["ag1"],
        info=SourceInfo("src", "conduit"),
        health=SourceHealth("src", clock()),
    )
    return poller, runtime, source, metrics, clock


def counted(metrics: RunMetrics) -> int:
    return sum(int(s.value) for f in metrics.collect() if f.name == "agent_runs" for s in f.samples)


def test_a_run_finishing_on_page_3_counts_once_and_paging_stops_there(tmp_path: Path) -> None:
    poller, runtime, source, metrics, clock = setup(tmp_path)
    done = [
        make_run(name, created=START - age) for name, age in (("t", 50), ("m1", 60), ("m2", 70))
    ]
    older = [make_run(f"a{i}", created=START - 200 - i) for i in range(4)]
    slow = make_run("slow", created=START - 100, status=Status.RUNNING)
    source.runs = [*done, slow, *older]
    asyncio.run(poller.poll_once(runtime))
    assert counted(metrics) == 7
    # Three newer runs arrive and "slow" finishes: it now sits on page 3, below a page (t, m1,
    # m2) that already reaches past the newest run of the last poll.
    clock.advance(60)
    newer = [make_run(f"n{i}", created=START - 10 + i) for i in range(3)]
    source.runs = [*newer, *done, make_run("slow", created=START - 100), *older]
    source.pages_read.clear()
    asyncio.run(poller.poll_once(runtime))
    assert counted(metrics) == 7 + 3 + 1
    assert source.pages_read == [1, 2, 3]  # down to the oldest run in flight, not further
    # Nothing new: one page, nothing counted.
    source.pages_read.clear()
    asyncio.run(poller.poll_once(runtime))
    assert counted(metrics) == 11
    assert source.pages_read == [1]


def test_a_failed_page_keeps_the_read_position_so_nothing_is_skipped(tmp_path: Path) -> None:
    poller, runtime, source, metrics, clock = setup(tmp_path)
    source.runs = [make_run(f"a{i}", created=START - i) for i in range(2)]
    asyncio.run(poller.poll_once(runtime))
    clock.advance(30)
    source.runs = [make_run(f"b{i}", created=START + 10 + i) for i in range(7)] + source.runs
    real_pages = source.pages
    source.pages_read.clear()

    async def failing_on_page_2(agent_id: str) -> AsyncGenerator[Page, None]:
        async for page in real_pages(agent_id):
            if len(source.pages_read) == 2:
                raise ServerError("HTTP 503", status_code=503)
            yield page

    source.pages = failing_on_page_2  # type: ignore[method-assign]
    assert not asyncio.run(poller.poll_once(runtime))
    assert counted(metrics) == 2 + 3  # page 1 was counted
    source.pages = real_pages  # type: ignore[method-assign]
    assert asyncio.run(poller.poll_once(runtime))
    assert counted(metrics) == 2 + 7  # the rest, once each
