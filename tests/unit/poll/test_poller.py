"""The poll pipeline in process: simulator app through ASGITransport, an injected clock, real
state file, InMemorySpanExporter. Counts are checked against the simulator's ground truth."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from exporter.app import Exporter
from exporter.config.models import Settings, load_settings
from exporter.simulator.conduit import create_app
from exporter.simulator.world import SimulatorSettings, World
from exporter.sinks.traces.ids import run_trace_id
from tests.unit.fakeclock import START, FakeClock
from tests.unit.sinks.test_span_queue import Collector

TOKEN = "sim-token"


def settings(tmp_path: Path, world: World, **overrides: Any) -> Settings:
    config: dict[str, Any] = {
        "listen": "127.0.0.1:0",
        "poll_interval": "5s",
        "lookback": "1h",
        "state": {"path": str(tmp_path / "state.db")},
        "traces": {"exporter": "otlp"},
        "sources": [
            {
                "name": "support",
                "platform": "conduit",
                "base_url": "http://sim",
                "token": TOKEN,
                "agents": [agent.id for agent in world.agents],
                "page_size": 20,
                "max_requests_per_minute": 0,  # budgets are tested on their own
            }
        ],
    } | overrides
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return load_settings(path, environ={})


class Harness:
    """A simulated world and an exporter polling it, sharing one fake clock."""

    def __init__(self, tmp_path: Path, *, seed: int = 5, rate: float = 0.4) -> None:
        self.tmp_path = tmp_path
        self.clock = FakeClock(START)
        sim = SimulatorSettings(
            seed=seed, agents=2, rate=rate, history=300, rate_limit=None, token=TOKEN
        )
        self.world = World(sim, clock=self.clock)
        self.span_exporters: list[InMemorySpanExporter] = []
        self.requests: list[httpx.Request] = []
        self.exporter = self.start()

    def transport(self) -> httpx.AsyncBaseTransport:
        app = create_app(self.world)
        inner = httpx.ASGITransport(app=app)
        requests = self.requests

        class Recording(httpx.AsyncBaseTransport):
            async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
                requests.append(request)
                return await inner.handle_async_request(request)

        return Recording()

    def start(
        self, transport: httpx.AsyncBaseTransport | None = None, **overrides: Any
    ) -> Exporter:
        # Each exporter shuts its span exporter down on close: give every process its own.
        self.span_exporters.append(InMemorySpanExporter())
        return Exporter(
            settings(self.tmp_path, self.world, **overrides),
            clock=self.clock,
            transport=transport or self.transport(),
            span_exporter=self.span_exporters[-1],
            environ={},
        )

    def spans(self) -> list[Any]:
        return [span for exporter in self.span_exporters for span in exporter.get_finished_spans()]

    def poll(self, times: int = 1, step: float = 5.0) -> None:
        async def go() -> None:
            for _ in range(times):
                self.clock.now += step
                for runtime in self.exporter.runtimes:
                    await self.exporter.poller.poll_once(runtime)

        asyncio.run(go())

    def restart(self) -> None:
        asyncio.run(self.exporter.close())
        self.exporter = self.start()

    def finish(self) -> None:
        """Stop arrivals, let every run end, poll until the exporter has seen them all."""
        self.world.pause_arrivals()
        self.clock.now += 31 * 60  # past the longest possible run, still within lookback
        self.poll(2)
        assert self.exporter.traces is not None
        assert self.exporter.traces.force_flush(5)
        self.exporter.poller.commit()  # settles what the flush exported

    def sample(self, name: str, **labels: str) -> float:
        value = self.exporter.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value

    def counted(self) -> Counter[tuple[str, str]]:
        out: Counter[tuple[str, str]] = Counter()
        for family in self.exporter.registry.collect():
            if family.name == "agent_runs":
                for s in family.samples:
                    if s.name == "agent_runs_total":
                        out[(s.labels["agent_id"], s.labels["status"])] += int(s.value)
        return +out

    def truth(self) -> Counter[tuple[str, str]]:
        return Counter(
            (r.agent_id, r.status)
            for r in self.world.truth()
            if r.status in ("completed", "failed")
        )


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(tmp_path)
    yield harness
    # Stop the last exporter's span thread: an OTLP exporter left retrying a dead collector
    # draws on the global `random`, which Hypothesis then reports in a later property test.
    asyncio.run(harness.exporter.close())


def test_counts_equal_ground_truth_and_every_run_has_one_root_span(harness: Harness) -> None:
    harness.poll(20)
    harness.finish()
    truth = harness.truth()
    assert sum(truth.values()) > 100
    assert harness.counted() == truth
    roots = [s for s in harness.spans() if s.parent is None]
    by_trace = Counter(f"{s.context.trace_id:032x}" for s in roots)
    expected = {run_trace_id("support", r.id, r.trace_id) for r in harness.world.truth()}
    assert set(by_trace) == expected
    assert set(by_trace.values()) == {1}
    names = {f"invoke_agent {agent.name}" for agent in harness.world.agents}
    assert {s.name for s in roots} == names


def test_tool_spans_match_each_runs_tool_trace(harness: Harness) -> None:
    harness.poll(6)
    harness.finish()
    spans = harness.spans()
    children = Counter(f"{s.context.trace_id:032x}" for s in spans if s.parent is not None)
    for run in harness.world.truth():
        assert children[run_trace_id("support", run.id, run.trace_id)] == run.tool_steps
    tools = sum(
        s.value
        for f in harness.exporter.registry.collect()
        if f.name == "agent_tool_calls"
        for s in f.samples
        if s.name == "agent_tool_calls_total"
    )
    assert tools == sum(r.tool_steps for r in harness.world.truth())


def test_restart_in_the_middle_neither_recounts_nor_loses(harness: Harness) -> None:
    harness.poll(8)
    before = harness.counted()
    harness.restart()
    assert harness.counted() == before  # cumulative values come back from the state file
    harness.clock.now += 60  # runs finish while the exporter is "down"
    harness.poll(8)
    harness.finish()
    assert harness.counted() == harness.truth()
    roots = [s for s in harness.spans() if s.parent is None]
    ids = {(s.context.trace_id, s.context.span_id) for s in roots}
    per_trace = Counter(trace for trace, _ in ids)
    assert set(per_trace.values()) == {1}  # a re-sent root span keeps its ids
    assert len(per_trace) == sum(harness.truth().values())


def test_quiet_poll_costs_one_request_per_agent(harness: Harness) -> None:
    harness.poll(3)
    harness.finish()
    harness.requests.clear()
    harness.poll(1)
    assert [r.url.path.count("/") for r in harness.requests] == [4, 4]  # two list calls, no get-run


def test_paging_reaches_a_run_that_finished_deep_in_older_pages(tmp_path: Path) -> None:
    h = Harness(tmp_path, rate=2.0)  # 20 runs a page, ~10 new runs an agent each poll
    h.poll(10)
    h.finish()
    assert h.counted() == h.truth()
    pages = Counter(
        r.url.params.get("cursor") is not None for r in h.requests if r.url.path.endswith("/runs")
    )
    assert pages[True] > 0  # some polls had to follow the cursor


def test_known_label_sets_start_at_zero(harness: Harness) -> None:
    agent = harness.world.agents[0].id
    labels = {"source": "support", "platform": "conduit", "agent_id": agent}
    for disposition in ("none", "resolved", "escalated"):
        assert (
            harness.exporter.registry.get_sample_value(
                "agent_runs_total", labels | {"status": "failed", "disposition": disposition}
            )
            == 0.0
        )
    assert (
        harness.exporter.registry.get_sample_value(
            "agent_runs_exporter_poll_errors_total", {"source": "support", "reason": "unauthorized"}
        )
        == 0.0
    )
    assert harness.sample("agent_runs_in_progress", **labels, status="running") == 0.0


def test_metrics_become_visible_only_after_commit(harness: Harness) -> None:
    source = harness.exporter.runtimes[0]
    agent = source.agents[0]

    async def poll_without_commit() -> None:
        harness.clock.now += 5
        await harness.exporter.poller.agent_poll.run(source, agent)

    asyncio.run(poll_without_commit())
    assert sum(harness.counted().values()) == 0
    harness.exporter.poller.commit()
    assert sum(harness.counted().values()) > 0


def test_bad_token_marks_the_source_down_with_its_reason(harness: Harness, tmp_path: Path) -> None:
    good = settings(tmp_path, harness.world).sources[0].model_dump()
    bad = good | {"name": "wrong", "token": "not-the-token"}
    good["token"] = TOKEN
    harness.exporter = harness.start(sources=[good, bad])
    harness.poll(2)
    assert harness.sample("agent_runs_exporter_up", source="wrong") == 0
    assert harness.sample("agent_runs_exporter_up", source="support") == 1
    assert (
        harness.sample(
            "agent_runs_exporter_poll_errors_total", source="wrong", reason="unauthorized"
        )
        == 4
    )
    ready, report = harness.exporter.health.ready(harness.clock())
    assert not ready
    assert report["wrong"]["reason"] == "unauthorized"
    assert report["support"]["ready"]
    assert sum(harness.counted().values()) > 0


def test_malformed_page_fails_that_poll_only(harness: Harness) -> None:
    broken = harness.world.agents[0].id
    inner = harness.transport()

    class Garbling(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if broken in request.url.path:
                return httpx.Response(200, text="{truncated")
            return await inner.handle_async_request(request)

    harness.exporter = harness.start(transport=Garbling())
    harness.poll(3)
    assert (
        harness.sample(
            "agent_runs_exporter_poll_errors_total", source="support", reason="malformed_page"
        )
        == 3
    )
    assert harness.sample("agent_runs_exporter_up", source="support") == 0
    counted_agents = {agent for agent, _ in harness.counted()}
    assert counted_agents == {harness.world.agents[1].id}


def test_unreachable_collector_never_blocks_polling(harness: Harness, tmp_path: Path) -> None:
    harness.exporter = Exporter(
        settings(
            tmp_path,
            harness.world,
            traces={"exporter": "otlp", "endpoint": "http://127.0.0.1:9", "timeout": "1s"},
        ),
        clock=harness.clock,
        transport=harness.transport(),
        environ={},
    )
    harness.poll(3)
    assert sum(harness.counted().values()) > 0
    assert harness.sample("agent_runs_exporter_up", source="support") == 1


def test_a_trace_backlog_waits_for_later_cycles_instead_of_delaying_polls(harness: Harness) -> None:
    inner = harness.transport()
    clock = harness.clock

    class SlowDetails(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.url.path.count("/") == 5:  # get-run: one second each on the fake clock
                clock.advance(1.0)
            return await inner.handle_async_request(request)

    harness.exporter = harness.start(transport=SlowDetails())
    harness.poll(1)
    backlog = harness.sample("agent_runs_exporter_trace_backlog", source="support")
    assert backlog > 0  # the first chunk used up the cycle's budget
    assert sum(harness.counted().values()) > backlog  # every run is counted all the same
    harness.world.pause_arrivals()  # ~10 details per cycle: fewer than slow-detail time brings
    harness.poll(5)
    assert harness.sample("agent_runs_exporter_trace_backlog", source="support") < backlog
    harness.finish()
    harness.poll(25)  # each cycle traces what its 10 s of slow details allow
    assert harness.sample("agent_runs_exporter_trace_backlog", source="support") == 0
    assert harness.exporter.traces is not None
    assert harness.exporter.traces.force_flush(5)
    roots = {s.context.trace_id for s in harness.spans() if s.parent is None}
    assert len(roots) == sum(harness.truth().values())


def test_a_collector_outage_delays_traces_but_loses_none(harness: Harness, tmp_path: Path) -> None:
    collector = Collector(up=False)
    harness.exporter = Exporter(
        settings(tmp_path, harness.world, traces={"exporter": "otlp", "queue_size": 40}),
        clock=harness.clock,
        transport=harness.transport(),
        span_exporter=collector,
        environ={},
    )
    harness.poll(4)
    assert sum(harness.counted().values()) > 40  # polling and metrics go on
    assert harness.sample("agent_runs_exporter_up", source="support") == 1
    assert harness.sample("agent_runs_exporter_trace_backlog", source="support") > 0
    assert collector.received == []
    collector.up = True
    harness.finish()
    traces = harness.exporter.traces
    assert traces is not None
    for _ in range(40):  # each cycle queues what fits in 40 spans; the flush empties the queue
        harness.poll(1)
        assert traces.force_flush(5)
    harness.exporter.poller.commit()
    assert harness.sample("agent_runs_exporter_trace_backlog", source="support") == 0
    roots = {s.context.trace_id for s in collector.received if s.parent is None}
    assert len(roots) == sum(harness.truth().values())
