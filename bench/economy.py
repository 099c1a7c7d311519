"""Economy bench: upstream requests per quiet poll and per new run, for each of the four platforms.

In process, per platform and with traces on and off: the platform's simulator app
(`exporter.simulator.platforms.simulate`) and the real `exporter.app.Exporter` (poller, tracker,
state store, sinks) share one fake clock, and requests go through `httpx.ASGITransport`, so no
socket and no sleep. Agents are configured (no discovery), `page_size` is the default and there
is no request budget. With traces on, spans go to an in-memory exporter, so every counted run's
detail is fetched as in production.

1. Busy: runs arrive at `RATE` per agent. After a warm-up (the first poll reads the history and
   the agents' names), `polls` polls 5 s apart. Requests are read by endpoint from the
   exporter's `agent_runs_exporter_api_requests_total` (list: list_runs, list_executions;
   detail: get_run, list_tool_calls; anything else is other), new runs from `agent_runs_total`.
2. Quiet: arrivals paused, every run finished and read by two polls; then one more poll 5 s
   later, with nothing new upstream: its requests per agent.

Every request the exporter counted must also be in the simulator's own request log; the table
says whether the two agree.

    python -m bench.economy [--tiny]
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from bench.common import Report, parser
from exporter.app import Exporter
from exporter.config.models import load_settings
from exporter.simulator.platforms import PLATFORMS, Simulated, simulate
from exporter.simulator.settings import SimulatorSettings
from tests.unit.fakeclock import START, FakeClock

POLL_INTERVAL_S = 5.0
RATE = 0.5  # new runs per second per agent: 2.5 per agent per poll
HISTORY_S = 60.0
FINISH_S = 31 * 60.0  # longer than any simulated run lasts
LIST = frozenset({"list_runs", "list_executions"})
DETAIL = frozenset({"get_run", "list_tool_calls"})
REQUESTS = "agent_runs_exporter_api_requests_total"


@dataclass(frozen=True, slots=True)
class Size:
    """How many agents per platform, and how many polls are measured."""

    agents: int
    warmup_polls: int
    polls: int


FULL = Size(agents=5, warmup_polls=3, polls=60)
TINY = Size(agents=2, warmup_polls=1, polls=3)


@dataclass(frozen=True, slots=True)
class Requests:
    """Requests split as list, detail and other."""

    list: float = 0.0
    detail: float = 0.0
    other: float = 0.0

    @property
    def total(self) -> float:
        """Return every request."""
        return self.list + self.detail + self.other

    def __sub__(self, earlier: Requests) -> Requests:
        return Requests(
            self.list - earlier.list, self.detail - earlier.detail, self.other - earlier.other
        )


@dataclass(frozen=True, slots=True)
class Economy:
    """What one platform cost upstream, in one traces mode."""

    agents: int
    polls: int  # in the busy phase
    new_runs: float
    busy: Requests
    quiet: Requests
    agreed: bool  # the exporter's count equals the simulator's request log


class Harness:
    """One platform's simulator and an exporter polling it, on one fake clock."""

    def __init__(self, platform: str, size: Size, *, traces: bool, workdir: Path) -> None:
        self.clock = FakeClock(START)
        settings = SimulatorSettings(
            seed=11, agents=size.agents, rate=RATE, history=HISTORY_S, rate_limit=None
        )
        self.sim: Simulated = simulate(platform, settings, self.clock)
        source = {
            "name": platform,
            "platform": platform,
            "base_url": "http://sim",
            "agents": [agent.id for agent in self.sim.world.agents],
            "max_requests_per_minute": 0,
        }
        config = {
            "poll_interval": f"{POLL_INTERVAL_S:g}s",
            "lookback": "1h",
            "state": {"path": str(workdir / f"{platform}-{traces}.db")},
            "traces": {"exporter": "otlp" if traces else "none"},
            "sources": [source],
        }
        path = workdir / f"{platform}-{traces}.yaml"
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        self.exporter = Exporter(
            load_settings(path, environ={}),
            clock=self.clock,
            transport=httpx.ASGITransport(app=self.sim.app),
            span_exporter=InMemorySpanExporter() if traces else None,
            environ={},
        )

    async def poll(self, times: int) -> None:
        """Move the clock one poll interval and poll every source, `times` times."""
        for _ in range(times):
            self.clock.advance(POLL_INTERVAL_S)
            for runtime in self.exporter.runtimes:
                await self.exporter.poller.poll_once(runtime)

    def requests(self) -> Requests:
        """Return the requests the exporter made so far, split by kind of endpoint."""
        by_kind: defaultdict[str, float] = defaultdict(float)
        for family in self.exporter.registry.collect():
            for sample in family.samples:
                if sample.name == REQUESTS:
                    by_kind[_kind(sample.labels["endpoint"])] += sample.value
        return Requests(by_kind["list"], by_kind["detail"], by_kind["other"])

    def counted(self) -> float:
        """Return how many runs `agent_runs_total` counted so far."""
        return sum(
            sample.value
            for family in self.exporter.registry.collect()
            for sample in family.samples
            if sample.name == "agent_runs_total"
        )

    def upstream_total(self) -> int:
        """Return how many platform requests the simulator answered."""
        total: int = self.sim.app.state.requests.count()
        return total


def _kind(endpoint: str) -> str:
    if endpoint in LIST:
        return "list"
    return "detail" if endpoint in DETAIL else "other"


async def measure(platform: str, size: Size, *, traces: bool, workdir: Path) -> Economy:
    """Poll one platform busy, then quiet, and return what it cost upstream."""
    harness = Harness(platform, size, traces=traces, workdir=workdir)
    try:
        await harness.poll(size.warmup_polls)
        before, counted = harness.requests(), harness.counted()
        await harness.poll(size.polls)
        busy, new_runs = harness.requests() - before, harness.counted() - counted
        harness.sim.world.pause_arrivals()
        harness.clock.advance(FINISH_S)
        await harness.poll(2)
        before = harness.requests()
        await harness.poll(1)
        quiet = harness.requests() - before
        agreed = harness.requests().total == harness.upstream_total()
    finally:
        await harness.exporter.close()
    return Economy(size.agents, size.polls, new_runs, busy, quiet, agreed)


def rows(report: Report, platform: str, on: Economy, off: Economy) -> None:
    """Add one platform's rows: quiet poll, then the cost of a new run with traces on and off."""
    quiet = f"{on.quiet.total / on.agents:.2f} / {off.quiet.total / off.agents:.2f}"
    pages = on.busy.list / (on.agents * on.polls)
    busy = f"{on.agents}, {on.new_runs:.0f} / {off.new_runs:.0f}, {pages:.2f}"
    report.add(f"{platform}: agents, busy new runs (on / off), list calls per agent-poll", busy)
    report.add(f"{platform}: quiet poll, requests per agent (traces on / off)", quiet, "1")
    list_target = f"list ~{1 / (RATE * POLL_INTERVAL_S):.2f}"
    # ElizaOS tells a failure only in the detail: each ended run's detail is read, traces or not;
    # a trace needs a detail read 5 s after the end, so one read earlier for the count is repeated.
    eliza = platform == "elizaos"
    detail_on = "detail <= 2 (outcome, complete trace)" if eliza else "detail <= 1"
    detail_off = "detail 1 (outcome in detail)" if eliza else "detail 0"
    report.add(
        f"{platform}: per new run, traces on: list + detail",
        _per_run(on),
        f"{list_target}, {detail_on}",
    )
    report.add(
        f"{platform}: per new run, traces off: list + detail",
        _per_run(off),
        f"{list_target}, {detail_off}",
    )


def _per_run(economy: Economy) -> str:
    if not economy.new_runs:
        return "no new runs"
    busy, runs = economy.busy, economy.new_runs
    text = f"{busy.list / runs:.2f} + {busy.detail / runs:.2f}"
    if busy.other:
        text += f" (+ {busy.other / runs:.2f} other)"
    return f"{text} = {busy.total / runs:.2f}"


async def run_all(size: Size, workdir: Path) -> dict[str, tuple[Economy, Economy]]:
    """Measure every platform with traces on, then off."""
    found = {}
    for platform in PLATFORMS:
        on = await measure(platform, size, traces=True, workdir=workdir)
        off = await measure(platform, size, traces=False, workdir=workdir)
        found[platform] = (on, off)
    return found


def main(argv: list[str]) -> int:
    """Measure the upstream economy of every platform and print the table."""
    args = parser(__doc__.splitlines()[0] if __doc__ else "economy").parse_args(argv)
    size = TINY if args.tiny else FULL
    with tempfile.TemporaryDirectory(prefix="bench-economy-") as tmp:
        found = asyncio.run(run_all(size, Path(tmp)))
    per_poll = RATE * POLL_INTERVAL_S
    report = Report(
        f"Upstream economy: requests per quiet poll and per new run "
        f"({RATE:g} runs/s per agent, {per_poll:g} per agent per {POLL_INTERVAL_S:g} s poll, "
        f"{size.polls} busy polls)"
    )
    for platform, (on, off) in found.items():
        rows(report, platform, on, off)
    agreed = all(economy.agreed for pair in found.values() for economy in pair)
    report.add("exporter's request count = simulator's request log", "yes" if agreed else "NO")
    report.print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
