"""Fleet bench: 1,000 Conduit agents on one workspace budget, round-robin against the scheduler.

In process, on a virtual clock: the Conduit simulator (`exporter.simulator.platforms.simulate`)
with a skewed fleet (2% busy at about a run a minute, 18% at about one an hour, 80% idle), its
workspace quota set to the budget (any request past 100 in a clock minute gets a 429), and the
real `exporter.app.Exporter` (scheduler, sources, tracker, token buckets, state file) polling it
through `httpx.ASGITransport`, its agents discovered. The event loop's clock is the exporter's
fake clock and jumps to the next timer whenever nothing is ready (`VirtualLoop`), so two
simulated hours take a minute or two, every budget wait and poll interval included.

For each world it prints, for today's round-robin (every agent every round, the bucket pacing
the requests) and for the scheduler (`exporter.poll.schedule`): the most requests the simulator
answered in any 60 s (all shards together), the completion-to-count delay p50/p99 of every run
and of the busy agents' runs (runs completed between the warm-up and the drain; the delay is the
virtual time of the poll that counted the run minus its `completed_at`), the busy agents' p99
again for the runs completed after minute 60 (the start's waves behind), runs never counted, and
the oldest poll age (the longest any agent went unpolled, sampled every minute after warm-up).
Then the same world with 4 shards sharing the budget.

    python -m bench.fleet [--tiny] [--seed N]

The simulator's seed decides which agents run when; a p99 over about a thousand busy runs moves
by a few seconds from seed to seed, so compare worlds within one seed, or over several.
"""

from __future__ import annotations

import asyncio
import bisect
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from bench.common import Report, median, parser, percentile
from exporter.app import Exporter
from exporter.config.models import load_settings
from exporter.model import Run
from exporter.simulator.platforms import simulate
from exporter.simulator.settings import SimulatorSettings
from tests.unit.fakeclock import START, FakeClock, VirtualLoop

POLL_INTERVAL_S = 15.0
BUSY_RATE = 1 / 60.0
HOURLY_RATE = 1 / 3600.0
HISTORY_S = 900.0  # runs before the start: the first polls read and trace them
SEED = 13  # the simulator's, unless --seed says otherwise


@dataclass(frozen=True, slots=True)
class Size:
    """The world: agents, budget, longest interval and how long it runs."""

    agents: int
    budget: int  # requests a minute for the whole workspace
    max_interval_s: float
    hours: float
    warmup_s: float  # every agent's first poll reads its history: not measured
    drain_s: float  # runs completing in the last `drain_s` are not measured
    settled_s: float  # by then the start's waves and trace backlog are behind (a second p99)


FULL = Size(
    1000, budget=100, max_interval_s=1800, hours=2, warmup_s=1800, drain_s=2100, settled_s=3600
)
TINY = Size(100, budget=20, max_interval_s=600, hours=0.5, warmup_s=300, drain_s=700, settled_s=900)


class Recording(httpx.AsyncBaseTransport):
    """A transport that notes the clock time of every request it passes on."""

    def __init__(self, inner: httpx.AsyncBaseTransport, clock: FakeClock) -> None:
        self.inner = inner
        self.clock = clock
        self.times: list[float] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Note the request's time and pass it on."""
        self.times.append(self.clock())
        return await self.inner.handle_async_request(request)


@dataclass(slots=True)
class Outcome:
    """What one world measured."""

    peak_60s: int = 0
    delays: list[float] = field(default_factory=list)
    busy_delays: list[float] = field(default_factory=list)
    busy_settled: list[float] = field(default_factory=list)  # runs completed after the first hour
    missing: int = 0
    oldest_age_s: float = 0.0
    longest_interval_s: float = 0.0
    throttled: int = 0


def agent_rates(agents: int) -> tuple[float, ...]:
    """Return the skewed fleet's rates: 2% busy, 18% hourly, the rest idle."""
    busy, hourly = max(1, agents // 50), agents * 18 // 100
    return (BUSY_RATE,) * busy + (HOURLY_RATE,) * hourly + (0.0,) * (agents - busy - hourly)


def config(size: Size, shard: int, shards: int, traces: bool, workdir: Path) -> Path:
    """Write one shard's configuration and return its path."""
    source = {
        "name": "fleet",
        "platform": "conduit",
        "base_url": "http://sim",
        "max_requests_per_minute": size.budget,
        "max_poll_interval": f"{size.max_interval_s:g}s",
    }
    data = {
        "poll_interval": f"{POLL_INTERVAL_S:g}s",
        "lookback": "2h",
        "state": {"path": str(workdir / f"state-{shard}-{shards}-{traces}.db")},
        "traces": {"exporter": "otlp" if traces else "none"},
        "sharding": {"shard": shard, "total_shards": shards},
        "sources": [source],
    }
    path = workdir / f"fleet-{shard}-{shards}-{traces}.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


class World:
    """One simulated workspace and the exporters (one per shard) polling it."""

    def __init__(
        self,
        size: Size,
        *,
        shards: int,
        traces: bool,
        spread: bool,
        workdir: Path,
        seed: int = SEED,
    ) -> None:
        self.size = size
        self.clock = FakeClock(START)
        rates = agent_rates(size.agents)
        settings = SimulatorSettings(
            seed=seed,
            agents=size.agents,
            rate=0.0,
            agent_rates=rates,
            history=HISTORY_S,
            rate_limit=size.budget,  # the simulator refuses (429) what a clock minute has over it
        )
        self.sim = simulate("conduit", settings, self.clock)
        agents = self.sim.world.agents
        self.busy = {agent.id for agent, rate in zip(agents, rates, strict=True) if rate > 0.01}
        self.transport = Recording(httpx.ASGITransport(app=self.sim.app), self.clock)
        self.counted: dict[str, float] = {}  # run id: when it was counted
        self.exporters = [
            self._exporter(config(size, shard, shards, traces, workdir), traces, spread)
            for shard in range(shards)
        ]
        self.oldest: list[float] = []

    def _exporter(self, path: Path, traces: bool, spread: bool) -> Exporter:
        exporter = Exporter(
            load_settings(path, environ={}),
            clock=self.clock,
            transport=self.transport,
            span_exporter=InMemorySpanExporter() if traces else None,
            environ={},
        )
        for runtime in exporter.runtimes:
            runtime.schedule.spread = spread
        record = exporter.run_metrics.record_run

        def counting(source: str, platform: str, run: Run, trace_id: str, now: float) -> None:
            self.counted.setdefault(run.id, now)
            record(source, platform, run, trace_id, now)

        exporter.run_metrics.record_run = counting  # type: ignore[method-assign]
        return exporter

    async def run(self) -> None:
        """Poll for the world's hours on the virtual clock, sampling the oldest poll age."""
        stop = asyncio.Event()
        pollers = [
            asyncio.create_task(exporter.poller.run(exporter.runtimes, stop))
            for exporter in self.exporters
        ]
        end = START + self.size.hours * 3600
        while self.clock() < end:
            await asyncio.sleep(60)
            if self.clock() >= START + self.size.warmup_s:
                self.oldest.append(self._oldest_age())
        stop.set()
        await asyncio.gather(*pollers)
        for exporter in self.exporters:
            await exporter.close()

    def _oldest_age(self) -> float:
        now = self.clock()
        return max(
            runtime.schedule.oldest_age(now)
            for exporter in self.exporters
            for runtime in exporter.runtimes
        )

    def outcome(self) -> Outcome:
        """Read the figures off the world and the exporters."""
        found = Outcome(peak_60s=_peak(self.transport.times), oldest_age_s=max(self.oldest))
        first, last = START + self.size.warmup_s, START + self.size.hours * 3600
        last -= self.size.drain_s
        for agent in self.sim.world.agents:
            for run in self.sim.world.runs(agent.id):
                done = run.completed_ms / 1000
                if not first <= done < last:
                    continue
                counted = self.counted.get(run.id)
                if counted is None:
                    found.missing += 1
                    continue
                found.delays.append(counted - done)
                if agent.id in self.busy:
                    found.busy_delays.append(counted - done)
                    if done >= START + self.size.settled_s:
                        found.busy_settled.append(counted - done)
        found.longest_interval_s = max(
            max(runtime.schedule.intervals().values(), default=0.0)
            for exporter in self.exporters
            for runtime in exporter.runtimes
        )
        found.throttled = sum(
            int(sample.value)
            for exporter in self.exporters
            for family in exporter.registry.collect()
            for sample in family.samples
            if sample.name == "agent_runs_exporter_api_requests_total"
            and sample.labels["code"] == "429"
        )
        return found


def _peak(times: list[float]) -> int:
    """Return the most requests in any 60-second window."""
    times = sorted(times)
    return max((bisect.bisect_left(times, t + 60) - i for i, t in enumerate(times)), default=0)


def measure(
    size: Size, *, shards: int, traces: bool, spread: bool, workdir: Path, seed: int = SEED
) -> Outcome:
    """Run one world on a virtual loop and return its figures."""
    world = World(size, shards=shards, traces=traces, spread=spread, workdir=workdir, seed=seed)
    loop = VirtualLoop(world.clock)
    try:
        loop.run_until_complete(world.run())
    finally:
        loop.close()
    return world.outcome()


def rows(report: Report, label: str, outcome: Outcome, size: Size) -> None:
    """Add one world's rows."""
    delays, busy = outcome.delays, outcome.busy_delays
    report.add(f"{label}: most requests in any 60 s", str(outcome.peak_60s), f"<= {size.budget}")
    report.add(
        f"{label}: delay p50 / p99 / max, all runs (s)",
        f"{median(delays):.0f} / {percentile(delays, 99):.0f} / {max(delays, default=0):.0f}"
        f" ({len(delays)} runs)",
        f"max <= longest interval + {POLL_INTERVAL_S:g}",
    )
    report.add(
        f"{label}: delay p50 / p99, busy agents' runs (s)",
        f"{median(busy):.0f} / {percentile(busy, 99):.0f} ({len(busy)} runs)",
        "p99 <= 60",
    )
    settled = outcome.busy_settled
    report.add(
        f"{label}: the same, runs completed after minute {size.settled_s / 60:g} (s)",
        f"{median(settled):.0f} / {percentile(settled, 99):.0f} ({len(settled)} runs)",
        "",
    )
    report.add(
        f"{label}: oldest poll age, longest interval at the end (s)",
        f"{outcome.oldest_age_s:.0f}, {outcome.longest_interval_s:.0f}",
        f"<= 1.5 x {size.max_interval_s:g}",
    )
    never = f"{outcome.missing}, {outcome.throttled}"
    report.add(f"{label}: runs never counted, 429s", never, "0, 0")


WORLDS = (  # label, shards, traces, spread
    ("round-robin, 1 shard, traces on", 1, True, False),
    ("scheduler, 1 shard, traces on", 1, True, True),
    ("round-robin, 1 shard, traces off", 1, False, False),
    ("scheduler, 1 shard, traces off", 1, False, True),
    ("round-robin, 4 shards, traces on", 4, True, False),
    ("scheduler, 4 shards, traces on", 4, True, True),
    ("round-robin, 4 shards, traces off", 4, False, False),
    ("scheduler, 4 shards, traces off", 4, False, True),
)


def main(argv: list[str]) -> int:
    """Run every world and print the table."""
    cli = parser(__doc__.splitlines()[0] if __doc__ else "fleet")
    cli.add_argument(
        "--seed", type=int, default=SEED, help=f"the simulator's seed (default {SEED})"
    )
    args = cli.parse_args(argv)
    size = TINY if args.tiny else FULL
    report = Report(
        f"Fleet: {size.agents} Conduit agents (2% ~1 run/min, 18% ~1/h, 80% idle), "
        f"budget {size.budget}/min, poll_interval {POLL_INTERVAL_S:g}s, max_poll_interval "
        f"{size.max_interval_s:g}s, {size.hours:g} simulated hours, seed {args.seed}"
    )
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp:
        for index, (label, shards, traces, spread) in enumerate(WORLDS):
            workdir = Path(tmp) / str(index)  # a state file of its own
            workdir.mkdir()
            outcome = measure(
                size, shards=shards, traces=traces, spread=spread, workdir=workdir, seed=args.seed
            )
            rows(report, label, outcome, size)
            print(f"measured: {label}", flush=True)
    report.print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
