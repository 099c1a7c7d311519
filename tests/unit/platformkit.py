"""One platform's simulator and the real exporter polling it in process, on one fake clock."""

from __future__ import annotations

import asyncio
from collections import Counter
from importlib import import_module
from pathlib import Path
from typing import Any

import httpx
import yaml
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from exporter.app import Exporter
from exporter.config.models import load_settings
from exporter.simulator.platforms import simulate
from exporter.simulator.settings import SimulatorSettings
from exporter.sources.registry import PLATFORMS as SPECS
from tests.unit.fakeclock import START, FakeClock

TOKEN = "platform-test-token"
STATUS_MAPS = {name: import_module(f"exporter.sources.{name}").STATUS_MAP for name in SPECS}


class PlatformHarness:
    """One platform's simulator and an exporter polling it, sharing one fake clock."""

    def __init__(
        self, tmp_path: Path, platform: str, *, discover: bool, traces: str = "otlp", **knobs: Any
    ) -> None:
        self.platform = platform
        self.clock = FakeClock(START)
        world = {"seed": 11, "agents": 2, "rate": 0.3, "history": 200} | knobs
        self.settings = SimulatorSettings(**world, rate_limit=None, token=TOKEN)
        self.sim = simulate(platform, self.settings, self.clock)
        self.spans = InMemorySpanExporter()
        source: dict[str, Any] = {
            "name": platform,
            "platform": platform,
            "base_url": "http://sim",
            "token": TOKEN,
            "page_size": 20 if platform != "acp" else 100,
            "max_requests_per_minute": 0,  # budgets are tested on their own (test_budget)
        }
        if not discover:
            source["agents"] = [agent.id for agent in self.sim.world.agents]
        config = {
            "poll_interval": "5s",
            "lookback": "1h",
            "state": {"path": str(tmp_path / "state.db")},
            "traces": {"exporter": traces},
            "sources": [source],
        }
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(config))
        self.exporter = Exporter(
            load_settings(path, environ={}),
            clock=self.clock,
            transport=httpx.ASGITransport(app=self.sim.app),
            span_exporter=self.spans,
            environ={},
        )

    def poll(self, times: int = 1, step: float = 5.0) -> None:
        async def go() -> None:
            for _ in range(times):
                self.clock.now += step
                for runtime in self.exporter.runtimes:
                    assert await self.exporter.poller.poll_once(runtime)

        asyncio.run(go())

    def finish(self) -> None:
        self.sim.world.pause_arrivals()
        self.clock.now += 31 * 60
        self.poll(2)
        if self.exporter.traces is not None:
            assert self.exporter.traces.force_flush(5)

    def truth(self) -> list[dict[str, Any]]:
        async def go() -> dict[str, Any]:
            transport = httpx.ASGITransport(app=self.sim.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
                response = await client.get("/_simulator/truth")
                response.raise_for_status()
                body: dict[str, Any] = response.json()
                return body

        return list(asyncio.run(go())["runs"])

    def expected(self) -> Counter[tuple[str, str]]:
        """Return the (agent, status) counts the truth says: an undocumented status is unknown."""
        return Counter(
            (run["agent_id"], self.status(run)) for run in self.truth() if run["terminal"]
        )

    def status(self, run: dict[str, Any]) -> str:
        """Return the status the exporter should count a terminal truth row as."""
        documented = run["documented"]
        return STATUS_MAPS[self.platform][run["status"]].value if documented else "unknown"

    def counted(self) -> Counter[tuple[str, str]]:
        out: Counter[tuple[str, str]] = Counter()
        for family in self.exporter.registry.collect():
            for sample in family.samples:
                if sample.name == "agent_runs_total":
                    out[(sample.labels["agent_id"], sample.labels["status"])] += int(sample.value)
        return +out

    def sample(self, name: str, **labels: str) -> float | None:
        return self.exporter.registry.get_sample_value(name, labels)

    def by_label(self, name: str, label: str) -> Counter[str]:
        """Sum a metric's samples by the value of one of its labels."""
        out: Counter[str] = Counter()
        for family in self.exporter.registry.collect():
            for sample in family.samples:
                if sample.name == name:
                    out[sample.labels[label]] += int(sample.value)
        return +out

    def roots(self) -> dict[str, dict[str, Any]]:
        """Return the attributes of each run's own span (`invoke_agent`), by run id."""
        return {
            str(span.attributes["agent_run.id"]): dict(span.attributes)
            for span in self.spans.get_finished_spans()
            if span.attributes is not None
            and span.attributes.get("gen_ai.operation.name") == "invoke_agent"
        }
