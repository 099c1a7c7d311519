"""Generate a deterministic stream of Conduit agent runs as an injected clock advances.

Pure: no HTTP, no global RNG, no sleeping. Each agent draws from its own `random.Random` seeded
from `SimulatorSettings.seed`, so the same seed and the same clock readings give the same runs.
A run's times are fixed when it is generated; its status is derived from them at read time.
"""

from __future__ import annotations

import bisect
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from exporter.simulator import catalogue
from exporter.simulator.records import Agent, SimRun, TruthRun, conduit_id, iso_ms, truth_of

__all__ = ["Agent", "Clock", "SimRun", "SimulatorSettings", "TruthRun", "World", "iso_ms"]

Clock = Callable[[], float]

_MAX_RUNNING_S = 30 * 60.0
_MEDIAN_RUNNING_S = 4.0


@dataclass(frozen=True, slots=True)
class SimulatorSettings:
    """Knobs of the simulated world (load, durations) and of the fake server (faults, auth)."""

    seed: int = 7
    agents: int = 3
    rate: float = 0.5  # new runs per second per agent (Poisson)
    failure_ratio: float = 0.1
    duration_scale: float = 1.0
    history: float = 600.0  # seconds of runs generated before the start
    retention: float = 24 * 3600.0  # runs older than this are pruned
    workspace_id: str | None = None  # None: derived from the seed
    latency: float = 0.0  # seconds added to each response
    error_ratio: float = 0.0  # share of requests answered 500/502/503
    throttle_ratio: float = 0.0  # share of requests answered 429
    retry_after: int = 1  # Retry-After seconds of an injected 429
    rate_limit: int | None = 120  # Conduit's requests per minute per workspace; None: unlimited
    slow_ratio: float = 0.0  # share of requests answered only after slow_seconds
    slow_seconds: float = 5.0
    malformed_ratio: float = 0.0  # share of requests answered 200 with a truncated body
    token: str | None = None  # required bearer token; None: no auth

    def __post_init__(self) -> None:
        problems = [name for name, ok in self._checks() if not ok]
        if problems:
            raise ValueError("invalid simulator settings: " + ", ".join(problems))

    def _checks(self) -> list[tuple[str, bool]]:
        return [
            ("agents must be >= 1", self.agents >= 1),
            ("rate must be >= 0", self.rate >= 0),
            ("failure_ratio must be in [0, 1]", 0 <= self.failure_ratio <= 1),
            ("duration_scale must be > 0", self.duration_scale > 0),
            ("history must be >= 0", self.history >= 0),
            ("retention must be > 0", self.retention > 0),
            ("latency must be >= 0", self.latency >= 0),
            ("error_ratio must be in [0, 1]", 0 <= self.error_ratio <= 1),
            ("throttle_ratio must be in [0, 1]", 0 <= self.throttle_ratio <= 1),
            ("retry_after must be >= 0", self.retry_after >= 0),
            ("rate_limit must be >= 1 or None", self.rate_limit is None or self.rate_limit >= 1),
            ("slow_ratio must be in [0, 1]", 0 <= self.slow_ratio <= 1),
            ("slow_seconds must be >= 0", self.slow_seconds >= 0),
            ("malformed_ratio must be in [0, 1]", 0 <= self.malformed_ratio <= 1),
        ]


@dataclass(slots=True)
class _Stream:
    agent: Agent
    rng: random.Random
    next_at: float
    runs: list[SimRun] = field(default_factory=list)


def _maybe(rng: random.Random, null_ratio: float, value: str) -> str | None:
    return None if rng.random() < null_ratio else value


class World:
    """Hold every simulated agent and its runs, generating arrivals up to the clock's reading."""

    def __init__(self, settings: SimulatorSettings | None = None, clock: Clock = time.time) -> None:
        self.settings = settings or SimulatorSettings()
        self.clock = clock
        master = random.Random(self.settings.seed)
        self.workspace_id = self.settings.workspace_id or conduit_id(master, "j57", 28)
        start = clock()
        self._streams = [
            self._stream(master, index, start) for index in range(self.settings.agents)
        ]
        self.agents = tuple(stream.agent for stream in self._streams)
        self._by_agent = {stream.agent.id: stream for stream in self._streams}
        self._by_id: dict[str, SimRun] = {}
        self._paused_at: float | None = None
        self._advance(start)

    def _stream(self, master: random.Random, index: int, start: float) -> _Stream:
        name, description = catalogue.AGENT_PROFILES[index % len(catalogue.AGENT_PROFILES)]
        if index >= len(catalogue.AGENT_PROFILES):
            name = f"{name} {index // len(catalogue.AGENT_PROFILES) + 1}"
        agent = Agent(
            id=conduit_id(master, "ag"),
            name=name,
            description=description,
            workspace_id=self.workspace_id,
            trigger_id=conduit_id(master, "tr"),
            internal=index % 3 == 2,
            created_ms=int((start - master.uniform(30, 400) * 86400) * 1000),
        )
        stream = _Stream(agent, random.Random(master.getrandbits(64)), 0.0)
        stream.next_at = start - self.settings.history + self._gap(stream.rng)
        return stream

    @property
    def paused(self) -> bool:
        """Say whether new arrivals are paused."""
        return self._paused_at is not None

    def now_ms(self) -> int:
        """Read the clock, generate every run that arrived by then, and return it in ms."""
        now = self.clock()
        self._advance(now)
        return math.floor(now * 1000)

    def agent(self, agent_id: str) -> Agent | None:
        """Return the agent with this id, or None."""
        stream = self._by_agent.get(agent_id)
        return stream.agent if stream else None

    def runs(self, agent_id: str) -> Sequence[SimRun]:
        """Return an agent's retained runs, oldest first by (created_ms, id)."""
        stream = self._by_agent.get(agent_id)
        return stream.runs if stream else ()

    def run(self, agent_id: str, run_id: str) -> SimRun | None:
        """Return one run of one agent by its `ar...` id, or None."""
        found = self._by_id.get(run_id)
        return found if found is not None and found.agent_id == agent_id else None

    def pause_arrivals(self) -> None:
        """Stop creating new runs; runs already created still progress to a terminal status."""
        if self._paused_at is None:
            now = self.clock()
            self._advance(now)
            self._paused_at = now

    def resume_arrivals(self) -> None:
        """Start creating runs again, as if the paused interval never happened."""
        if self._paused_at is not None:
            now = self.clock()
            for stream in self._streams:
                stream.next_at += max(0.0, now - self._paused_at)
            self._paused_at = None
            self._advance(now)

    def truth(self) -> list[TruthRun]:
        """Return every retained run with its current status, oldest first per agent."""
        now_ms = self.now_ms()
        return [truth_of(run, now_ms) for stream in self._streams for run in stream.runs]

    def _advance(self, now: float) -> None:
        if self._paused_at is None:
            for stream in self._streams:
                self._arrive(stream, now)
        self._prune(math.floor(now * 1000))

    def _arrive(self, stream: _Stream, now: float) -> None:
        while stream.next_at <= now:
            new = self._new_run(stream, stream.next_at)
            bisect.insort(stream.runs, new, key=lambda run: run.key)
            self._by_id[new.id] = new
            stream.next_at += self._gap(stream.rng)

    def _prune(self, now_ms: int) -> None:
        cutoff = now_ms - int(self.settings.retention * 1000)
        for stream in self._streams:
            cut = bisect.bisect_left(stream.runs, cutoff, key=lambda run: run.created_ms)
            for old in stream.runs[:cut]:
                del self._by_id[old.id]
            del stream.runs[:cut]

    def _gap(self, rng: random.Random) -> float:
        rate = self.settings.rate
        return rng.expovariate(rate) if rate > 0 else math.inf

    def _new_run(self, stream: _Stream, at: float) -> SimRun:
        rng, agent, scale = stream.rng, stream.agent, self.settings.duration_scale
        created_ms = math.floor(at * 1000)
        accepted_ms = max(1, round(rng.uniform(0.1, 2.0) * scale * 1000))
        running_s = min(
            rng.lognormvariate(math.log(_MEDIAN_RUNNING_S * scale), 0.9), _MAX_RUNNING_S
        )
        failed = rng.random() < self.settings.failure_ratio
        table = catalogue.FAILED_DISPOSITIONS if failed else catalogue.COMPLETED_DISPOSITIONS
        tokens = _tokens(rng)
        triggered = rng.random() < 0.25
        tool_steps = None if rng.random() < 0.04 else min(8, int(rng.expovariate(1 / 2.5)))
        return SimRun(
            id=conduit_id(rng, "ar"),
            run_id=f"run_{rng.getrandbits(32):08x}",
            agent_id=agent.id,
            workspace_id=agent.workspace_id,
            created_ms=created_ms,
            started_ms=created_ms + accepted_ms,
            completed_ms=created_ms + accepted_ms + max(1, round(running_s * 1000)),
            failed=failed,
            disposition=catalogue.weighted(rng, table),
            error=rng.choice(catalogue.RUN_ERRORS) if failed else None,
            contact_id=_maybe(rng, 0.10, conduit_id(rng, "co")),
            conversation_id=_maybe(rng, 0.05, conduit_id(rng, "cv")),
            trigger_id=agent.trigger_id if triggered else None,
            trigger_event_id=conduit_id(rng, "te") if triggered else None,
            session_id=_maybe(rng, 0.10, f"sess_{rng.getrandbits(24):06x}"),
            input_tokens=tokens[0] if tokens else None,
            output_tokens=tokens[1] if tokens else None,
            total_cost=None if agent.internal or not tokens else _cost(*tokens),
            trace_id=_maybe(rng, 0.03, f"{rng.getrandbits(64):016x}"),
            tool_steps=tool_steps,
            tool_nulls=1 if tool_steps and rng.random() < 0.05 else 0,
            detail_seed=rng.getrandbits(64),
        )


def _tokens(rng: random.Random) -> tuple[int, int] | None:
    if rng.random() < 0.05:
        return None
    return int(rng.lognormvariate(math.log(1800), 0.6)), int(rng.lognormvariate(math.log(300), 0.7))


def _cost(input_tokens: int, output_tokens: int) -> float:
    # Priced like a mid-tier model: $3 per million input tokens, $15 per million output tokens.
    return round(input_tokens * 3e-6 + output_tokens * 15e-6, 6)
