"""Agent discovery, the agent_info metric and the single-page gap, against a scripted source."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from exporter.errors import ServerError
from exporter.model import Run, SourceInfo, Status
from exporter.poll.discovery import AgentDirectory, AgentInfoCollector, SourceRuntime
from exporter.poll.health import SourceHealth
from exporter.poll.poller import Poller
from exporter.poll.state import StateStore
from exporter.poll.tracker import Tracker
from exporter.sinks.metrics.runs import RunMetrics
from exporter.sinks.metrics.selfmetrics import SelfMetrics
from exporter.sources.base import AgentEntry, Page, Skip
from tests.unit.fakeclock import START, FakeClock
from tests.unit.runs import make_run


class ListingSource:
    """A platform that lists agents (or fails to) and shows one page of runs per agent."""

    platform = "runtype"
    terminal_statuses: tuple[str, ...] = ("completed", "failed")
    dispositions: tuple[str, ...] = ()
    token_types: tuple[str, ...] = ("total",)
    has_cost = True

    def __init__(self) -> None:
        self.name = "src"
        self.agents: list[AgentEntry] | None = [AgentEntry("a1", "Concierge"), AgentEntry("a2")]
        self.listing_fails = False
        self.listings = 0
        self.runs: dict[str, list[Run]] = {}
        self.cut = False
        self.skips: list[Skip] = []
        self.names_asked: list[str] = []

    async def list_agents(self) -> list[AgentEntry] | None:
        self.listings += 1
        if self.listing_fails:
            raise ServerError("HTTP 503 from /v1/agents: down", status_code=503)
        return self.agents

    async def pages(self, agent_id: str) -> AsyncGenerator[Page, None]:
        runs = sorted(self.runs.get(agent_id, []), key=lambda r: r.created_at, reverse=True)
        yield Page(runs=runs, has_more=False, skips=list(self.skips), history_cut=self.cut)

    async def agent_name(self, agent_id: str) -> str | None:
        self.names_asked.append(agent_id)
        return f"name of {agent_id}"

    async def fetch_detail(self, run: Run) -> Run:
        return run

    async def aclose(self) -> None:
        return None


class Setup:
    def __init__(self, tmp_path: Path, agents: list[str] | None = None) -> None:
        self.clock = FakeClock(START)
        self.source = ListingSource()
        self.registry = CollectorRegistry()
        self.metrics = RunMetrics({"duration": [1.0], "tokens": [100.0], "cost": [0.1]})
        self.registry.register(self.metrics)
        self.self_metrics = SelfMetrics(self.registry)
        self.self_metrics.declare_source("src", ())
        self.poller = Poller(
            tracker=Tracker(lookback_s=3600, traces_enabled=False),
            store=StateStore(str(tmp_path / "state.db")),
            run_metrics=self.metrics,
            self_metrics=self.self_metrics,
            traces=None,
            clock=self.clock,
            poll_interval_s=15,
        )
        self.runtime = SourceRuntime(
            source=self.source,
            agents=agents,
            info=SourceInfo("src", "runtype"),
            health=SourceHealth("src", self.clock()),
            discovery_interval_s=600,
        )
        directory = self.runtime.directory
        self.registry.register(
            AgentInfoCollector(
                lambda: [("src", "runtype", a, directory.name(a)) for a in directory.ids]
            )
        )

    def poll(self, advance: float = 15.0) -> bool:
        self.clock.now += advance
        return asyncio.run(self.poller.poll_once(self.runtime))

    def value(self, name: str, **labels: str) -> float | None:
        return self.registry.get_sample_value(name, labels)


def test_omitted_agents_are_discovered_declared_and_named(tmp_path: Path) -> None:
    setup = Setup(tmp_path)
    setup.source.runs = {"a1": [make_run("r1", created=START, agent_id="a1")]}
    assert setup.poll()
    assert setup.runtime.directory.ids == ["a1", "a2"]
    labels = {"source": "src", "platform": "runtype", "status": "failed", "disposition": "none"}
    assert setup.value("agent_runs_total", agent_id="a2", **labels) == 0.0  # declared at zero
    assert (
        setup.value(
            "agent_run_tokens_count", agent_id="a2", source="src", platform="runtype", type="total"
        )
        == 0.0
    )
    info = {"source": "src", "platform": "runtype"}
    assert (
        setup.value("agent_runs_exporter_agent_info", agent_id="a1", agent_name="Concierge", **info)
        == 1.0
    )
    # a2 came without a name: asked once, then never again
    assert (
        setup.value(
            "agent_runs_exporter_agent_info", agent_id="a2", agent_name="name of a2", **info
        )
        == 1.0
    )
    setup.poll()
    assert setup.source.names_asked == ["a2"]


def test_the_listing_is_refreshed_after_the_interval(tmp_path: Path) -> None:
    setup = Setup(tmp_path)
    setup.poll()
    setup.source.agents = [AgentEntry("a2"), AgentEntry("a3", "New")]
    setup.poll(100)
    assert (setup.source.listings, setup.runtime.directory.ids) == (1, ["a1", "a2"])
    setup.poll(600)
    assert (setup.source.listings, setup.runtime.directory.ids) == (2, ["a2", "a3"])


def test_a_failed_refresh_keeps_the_last_list_and_fails_the_cycle(tmp_path: Path) -> None:
    setup = Setup(tmp_path)
    setup.poll()
    setup.source.listing_fails = True
    assert not setup.poll(601)
    assert setup.runtime.directory.ids == ["a1", "a2"]
    assert (
        setup.value("agent_runs_exporter_poll_errors_total", source="src", reason="http_5xx") == 1.0
    )
    setup.source.listing_fails = False
    assert setup.poll(601)


def test_a_first_listing_failure_polls_nothing_and_is_retried(tmp_path: Path) -> None:
    setup = Setup(tmp_path)
    setup.source.listing_fails = True
    assert not setup.poll()
    assert setup.runtime.directory.ids == []
    setup.source.listing_fails = False
    assert setup.poll()
    assert setup.source.listings == 2


def test_configured_agents_are_never_listed(tmp_path: Path) -> None:
    setup = Setup(tmp_path, agents=["a9"])
    setup.poll()
    setup.poll(700)
    assert (setup.source.listings, setup.runtime.directory.ids) == (0, ["a9"])


def test_a_cut_page_newer_than_the_last_poll_counts_a_gap(tmp_path: Path) -> None:
    setup = Setup(tmp_path, agents=["a1"])
    setup.source.cut = True
    setup.source.runs = {"a1": [make_run("r1", created=START, agent_id="a1")]}
    setup.poll()  # first poll: nothing known before, no gap
    gaps = ("agent_runs_exporter_page_gaps_total", {"source": "src"})
    assert setup.value(gaps[0], **gaps[1]) == 0.0
    setup.source.runs["a1"] = [
        make_run("r1", created=START, agent_id="a1"),
        make_run("r2", created=START + 10, agent_id="a1"),
    ]
    setup.poll()  # the page still reaches r1: no gap
    assert setup.value(gaps[0], **gaps[1]) == 0.0
    setup.source.runs["a1"] = [make_run("r9", created=START + 20 + i, agent_id="a1") for i in (0,)]
    setup.poll()  # only newer runs visible: whatever came between is unknown
    assert setup.value(gaps[0], **gaps[1]) == 1.0


@pytest.mark.parametrize("names", [{}, {"a": "Ann"}])
def test_directory_names_and_adoption(names: dict[str, str]) -> None:
    directory = AgentDirectory(None, refresh_s=60)
    assert directory.due(0.0)
    new = directory.adopt([AgentEntry(k, v) for k, v in names.items()] or [AgentEntry("a")], 0.0)
    assert new == ["a"]
    assert directory.name("a") == names.get("a")
    assert not directory.due(59.0)
    assert directory.due(60.0)


def test_an_unreadable_run_is_counted_and_logged_once_however_often_it_is_seen(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    setup = Setup(tmp_path, agents=["a1"])
    setup.source.skips = [
        Skip("invalid_id", "r7/zombie", "run id cannot be part of a URL"),
        Skip("malformed_item", None, "run item must be an object, got int"),
    ]
    with caplog.at_level("WARNING"):
        for _ in range(3):
            setup.poll()
    skipped = "agent_runs_exporter_runs_skipped_total"
    assert setup.value(skipped, source="src", reason="invalid_id") == 1.0
    assert setup.value(skipped, source="src", reason="malformed_item") == 3.0  # no id: each time
    assert sum("zombie" in record.getMessage() for record in caplog.records) == 1


def test_a_run_in_flight_that_scrolls_off_the_only_page_is_given_up_and_counted(
    tmp_path: Path,
) -> None:
    setup = Setup(tmp_path, agents=["a1"])
    setup.source.cut = True
    long_run = make_run("long", created=START, agent_id="a1", status=Status.RUNNING)
    setup.source.runs = {"a1": [long_run, make_run("r1", created=START + 1, agent_id="a1")]}
    setup.poll()
    assert setup.poller.tracker.in_flight_counts() == {("src", "a1", Status.RUNNING): 1}
    newer = [make_run(f"n{i}", created=START + 10 + i, agent_id="a1") for i in range(2)]
    setup.source.runs["a1"] = newer  # 5 runs/s: the long run left the page while running
    setup.poll()
    assert setup.poller.tracker.in_flight_counts() == {}  # was: in progress for the lookback
    skipped = {"source": "src", "reason": "scrolled_off"}
    assert setup.value("agent_runs_exporter_runs_skipped_total", **skipped) == 1.0
    assert setup.value("agent_runs_exporter_page_gaps_total", source="src") == 1.0
    setup.poll()  # counted once
    assert setup.value("agent_runs_exporter_runs_skipped_total", **skipped) == 1.0
