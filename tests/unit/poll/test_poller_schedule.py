"""The poller on a tight budget: it polls the agents due, stays under the budget, says so."""

from __future__ import annotations

import asyncio
import bisect
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from exporter.app import Exporter
from exporter.config.models import load_settings
from exporter.simulator.conduit import create_app
from exporter.simulator.world import SimulatorSettings, World
from tests.unit.fakeclock import START, FakeClock, VirtualLoop

AGENTS = 30
BUDGET = 20  # requests a minute: 30 agents every 15 s would need 120
MINUTES = 30


class Recording(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport, clock: FakeClock) -> None:
        self.inner, self.clock, self.times = inner, clock, list[float]()
        self.paths: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.times.append(self.clock())
        self.paths.append(request.url.path)
        return await self.inner.handle_async_request(request)


def exporter(tmp_path: Path, world: World, transport: httpx.AsyncBaseTransport) -> Exporter:
    config: dict[str, Any] = {
        "poll_interval": "15s",
        "lookback": "1h",
        "state": {"path": str(tmp_path / "state.db")},
        "traces": {"exporter": "none"},
        "sources": [
            {
                "name": "fleet",
                "platform": "conduit",
                "base_url": "http://sim",
                "agents": [agent.id for agent in world.agents],
                "max_requests_per_minute": BUDGET,
                "max_poll_interval": "10m",
            }
        ],
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return Exporter(load_settings(path, environ={}), clock=world.clock, transport=transport)


def run_for(clock: FakeClock, target: Exporter, minutes: float) -> None:
    async def go() -> None:
        stop = asyncio.Event()
        poller = asyncio.create_task(target.poller.run(target.runtimes, stop))
        await asyncio.sleep(minutes * 60)
        stop.set()
        await poller
        await target.close()

    loop = VirtualLoop(clock)
    try:
        loop.run_until_complete(go())
    finally:
        loop.close()


@dataclass
class Polled:
    world: World
    target: Exporter
    transport: Recording
    warnings: list[str]


class Warnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture(scope="module")
def polled(tmp_path_factory: pytest.TempPathFactory) -> Polled:
    """Run the exporter for half an hour of virtual time, once for the module."""
    clock = FakeClock(START)
    rates = (1 / 30,) + (0.0,) * (AGENTS - 1)  # one busy agent, the rest idle
    sim = SimulatorSettings(seed=3, agents=AGENTS, rate=0.0, agent_rates=rates, history=600)
    world = World(sim, clock=clock)
    transport = Recording(httpx.ASGITransport(app=create_app(world)), clock)
    target = exporter(tmp_path_factory.mktemp("fleet"), world, transport)
    handler = Warnings()
    logger = logging.getLogger("exporter.poll.poller")
    logger.addHandler(handler)
    try:
        run_for(clock, target, MINUTES)
    finally:
        logger.removeHandler(handler)
    return Polled(world, target, transport, handler.messages)


def sample(target: Exporter, name: str, **labels: str) -> float | None:
    return target.registry.get_sample_value(name, labels)


def test_a_tight_budget_is_never_exceeded_and_no_request_is_refused(
    polled: Polled,
) -> None:
    target, transport = polled.target, polled.transport
    times = sorted(transport.times)
    busiest = max(bisect.bisect_left(times, t + 60) - i for i, t in enumerate(times))
    assert busiest <= BUDGET
    assert len(times) > 0.8 * (BUDGET - 2) * MINUTES  # and the budget is used
    refused = sample(
        target, "agent_runs_exporter_api_requests_total", source="fleet", endpoint="list_runs",
        code="429",
    )  # fmt: skip
    assert refused in (None, 0.0)


def test_the_busy_agent_is_polled_often_and_every_run_is_counted(
    polled: Polled,
) -> None:
    world, target = polled.world, polled.target
    busy, idle = world.agents[0].id, world.agents[1].id
    interval = "agent_runs_exporter_agent_poll_interval_seconds"
    busy_interval = sample(target, interval, source="fleet", agent_id=busy)
    idle_interval = sample(target, interval, source="fleet", agent_id=idle)
    assert busy_interval is not None
    assert idle_interval is not None
    assert 15 <= busy_interval < idle_interval <= 600
    ended = [run for run in world.runs(busy) if run.completed_ms / 1000 < world.clock() - 120]
    counted = sum(
        found.value
        for family in target.registry.collect()
        for found in family.samples
        if found.name == "agent_runs_total" and found.labels["agent_id"] == busy
    )
    assert counted >= len(ended) > 20


def test_it_says_once_that_the_budget_cannot_poll_every_agent_at_poll_interval(
    polled: Polled,
) -> None:
    target = polled.target
    warnings = [message for message in polled.warnings if "needs" in message]
    assert len(warnings) == 1
    assert "30 agents every 15s needs 120 requests a minute" in warnings[0]
    oldest = sample(target, "agent_runs_exporter_oldest_poll_age_seconds", source="fleet")
    assert oldest is not None
    assert 0 < oldest <= 1.5 * 600
    waited = sample(target, "agent_runs_exporter_budget_wait_seconds_total", source="fleet")
    assert waited is not None
    assert waited > 0


def test_name_lookups_take_only_their_share_of_a_tight_budget(polled: Polled) -> None:
    transport = polled.transport
    lookups = [
        at - START
        for at, path in zip(transport.times, transport.paths, strict=True)
        if path.startswith("/v1/agents/") and not path.endswith("/runs")
    ]
    # 5% of 18 a minute: about one lookup a minute, not 30 holding up the first rounds
    assert sum(1 for at in lookups if at < 120) <= 3
    assert len(lookups) >= 20  # and the names are learned all the same, in half an hour
    named = polled.target.runtimes[0].directory.names
    assert len(named) >= 20
