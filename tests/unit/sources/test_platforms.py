"""Every platform end to end in process: its simulator, the real exporter, a fake clock.

For each platform: poll while runs arrive (with discovery where the platform lists agents), let
every run finish, and compare `agent_runs_total` with the simulator's ground truth, run by run
status; then check that every terminal run has exactly one root span.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from importlib import import_module
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from exporter.app import Exporter
from exporter.config.models import load_settings
from exporter.model import Run
from exporter.simulator.platforms import PLATFORMS, simulate
from exporter.simulator.settings import SimulatorSettings
from exporter.sources.registry import PLATFORMS as SPECS
from tests.unit.fakeclock import START, FakeClock

TOKEN = "platform-test-token"
STATUS_MAPS = {name: import_module(f"exporter.sources.{name}").STATUS_MAP for name in SPECS}


class PlatformHarness:
    """One platform's simulator and an exporter polling it, sharing one fake clock."""

    def __init__(
        self,
        tmp_path: Path,
        platform: str,
        *,
        discover: bool,
        traces: str = "otlp",
        **knobs: Any,
    ) -> None:
        self.platform = platform
        self.clock = FakeClock(START)
        settings = SimulatorSettings(
            seed=11, agents=2, rate=0.3, history=200, rate_limit=None, token=TOKEN, **knobs
        )
        self.sim = simulate(platform, settings, self.clock)
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
        mapping = STATUS_MAPS[self.platform]
        return Counter(
            (run["agent_id"], mapping[run["status"]].value)
            for run in self.truth()
            if run["terminal"]
        )

    def counted(self) -> Counter[tuple[str, str]]:
        out: Counter[tuple[str, str]] = Counter()
        for family in self.exporter.registry.collect():
            for sample in family.samples:
                if sample.name == "agent_runs_total":
                    out[(sample.labels["agent_id"], sample.labels["status"])] += int(sample.value)
        return +out

    def sample(self, name: str, **labels: str) -> float | None:
        return self.exporter.registry.get_sample_value(name, labels)


def record_trace_ids(harness: PlatformHarness) -> list[str]:
    """Return the list every run's exemplar trace id is appended to as the run is counted."""
    recorded: list[str] = []
    record = harness.exporter.run_metrics.record_run

    def recording(source: str, platform: str, run: Run, trace_id: str, now: float) -> None:
        recorded.append(trace_id)
        record(source, platform, run, trace_id, now)

    harness.exporter.run_metrics.record_run = recording  # type: ignore[method-assign]
    return recorded


@pytest.mark.parametrize("platform", PLATFORMS)
def test_counts_match_the_simulator_and_every_run_has_one_root_span(
    tmp_path: Path, platform: str
) -> None:
    harness = PlatformHarness(tmp_path, platform, discover=platform != "acp")
    recorded = record_trace_ids(harness)
    harness.poll(12)
    harness.finish()
    expected = harness.expected()
    assert sum(expected.values()) > 20
    assert harness.counted() == expected
    spans = harness.spans.get_finished_spans()
    roots = Counter(  # a run's own span; a nested sub-agent's has its parent's tool call above
        span.attributes["agent_run.id"]
        for span in spans
        if span.attributes is not None
        and span.attributes.get("gen_ai.operation.name") == "invoke_agent"
    )
    terminal = {run["id"] for run in harness.truth() if run["terminal"]}
    assert set(roots) == terminal
    assert set(roots.values()) == {1}
    present = {(span.context.trace_id, span.context.span_id) for span in spans if span.context}
    for span in spans:  # every parent is there, in the same trace
        assert span.parent is None or (span.parent.trace_id, span.parent.span_id) in present
    traces = {f"{span.context.trace_id:032x}" for span in spans if span.context}
    assert set(recorded) <= traces  # every exemplar opens a trace that exists (nested ones too)
    endpoints = {
        sample.labels["endpoint"]
        for family in harness.exporter.registry.collect()
        for sample in family.samples
        if sample.name == "agent_runs_exporter_api_requests_total"
    }
    assert endpoints == set(SPECS[platform].endpoints)  # every request's endpoint is declared


@pytest.mark.parametrize("platform", [p.name for p in SPECS.values() if p.discovers_agents])
def test_discovered_agents_carry_their_names(tmp_path: Path, platform: str) -> None:
    harness = PlatformHarness(tmp_path, platform, discover=True)
    harness.poll()
    for agent in harness.sim.world.agents:
        labels = {"source": platform, "platform": platform, "agent_id": agent.id}
        assert (
            harness.sample("agent_runs_exporter_agent_info", agent_name=agent.name, **labels) == 1
        )


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_quiet_poll_reads_one_page_per_agent(tmp_path: Path, platform: str) -> None:
    harness = PlatformHarness(tmp_path, platform, discover=False)
    harness.poll(6)
    harness.finish()  # every run ended and was read: the read positions are at the newest run

    def requests() -> float:
        return sum(
            sample.value
            for family in harness.exporter.registry.collect()
            for sample in family.samples
            if sample.name == "agent_runs_exporter_api_requests_total"
        )

    before = requests()
    harness.poll()
    assert requests() - before == len(harness.sim.world.agents)


def test_elizaos_failures_recorded_as_completed_are_counted_failed_with_traces_off(
    tmp_path: Path,
) -> None:
    # ElizaOS 1.7.2 lists a failed run `completed`; only its detail's RUN_ENDED has the error.
    harness = PlatformHarness(tmp_path, "elizaos", discover=True, traces="none")
    harness.poll(12)
    harness.finish()
    expected = harness.expected()
    assert sum(n for (_agent, status), n in expected.items() if status == "failed") > 0
    assert harness.counted() == expected
    skipped = "agent_runs_exporter_runs_skipped_total"
    assert harness.sample(skipped, source="elizaos", reason="detail_failed") == 0


def test_acp_runs_listed_without_a_usable_created_at_are_all_counted(tmp_path: Path) -> None:
    # Every ACP field is optional: a third of the runs come without createdAt or with a bad one.
    harness = PlatformHarness(tmp_path, "acp", discover=False, traces="none", drift_ratio=0.3)
    harness.poll(12)
    harness.finish()
    expected = harness.expected()
    assert harness.counted() == expected
    drifted = sum(1 for run in harness.truth() if run["terminal"] and run["drift"])
    assert drifted > 5
    invalid = harness.sample(
        "agent_runs_exporter_fields_invalid_total", source="acp", field="createdAt"
    )
    assert invalid == drifted
    for reason in ("malformed_item", "scrolled_off", "in_flight_expired"):
        assert (
            harness.sample("agent_runs_exporter_runs_skipped_total", source="acp", reason=reason)
            == 0
        )
