"""Generate a deterministic stream of agent runs, in one platform's vocabulary, as a clock advances.

Pure: no HTTP, no global RNG, no sleeping. The arrival engine (`BaseWorld`) is shared by every
platform: each agent draws Poisson arrivals from its own `random.Random`, seeded from
`SimulatorSettings.seed` (salted per platform), so the same seed and the same clock readings give
the same runs. A `Flavor` says what an agent and a run of one platform look like; a run's times
are fixed when it is generated and its status is derived from them at read time.
"""

from __future__ import annotations

import bisect
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from exporter.simulator.conduit_runs import ConduitFlavor
from exporter.simulator.records import Agent, SimRun, TruthRun, iso_ms, truth_of
from exporter.simulator.settings import SimulatorSettings

__all__ = [
    "Agent",
    "BaseWorld",
    "Clock",
    "Flavor",
    "SimRun",
    "SimulatorSettings",
    "TruthRun",
    "World",
    "iso_ms",
]

Clock = Callable[[], float]


class AgentLike(Protocol):
    """What the engine needs of an agent: an id and a display name."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...


class RunLike(Protocol):
    """What the engine needs of a run: ids, a creation time and a status derived from time."""

    @property
    def id(self) -> str: ...
    @property
    def agent_id(self) -> str: ...
    @property
    def created_ms(self) -> int: ...
    @property
    def key(self) -> tuple[int, str]: ...
    def status(self, now_ms: int) -> str: ...
    def terminal(self, now_ms: int) -> bool: ...


A = TypeVar("A", bound=AgentLike)
R = TypeVar("R", bound=RunLike)


class Flavor(Protocol[A, R]):
    """One platform's vocabulary: how its agents and runs are drawn and told as ground truth."""

    platform: str

    def begin(self, master: random.Random) -> None:
        """Draw world-wide values (e.g. a workspace id) before any agent."""

    def new_agent(self, master: random.Random, index: int, start: float) -> A:
        """Draw agent number `index` from the world's master RNG."""

    def new_run(self, rng: random.Random, agent: A, at: float, previous: R | None) -> R:
        """Draw the agent's run arriving at `at`; `previous` is its latest run, if any."""

    def truth(self, run: R, now_ms: int) -> dict[str, Any]:
        """Return the run's ground truth at `now_ms`: at least id, agent_id, status, terminal."""


@dataclass(slots=True)
class _Stream(Generic[A, R]):
    agent: A
    rng: random.Random
    next_at: float
    rate: float  # new runs per second
    runs: list[R] = field(default_factory=list)


def master_rng(platform: str, seed: int) -> random.Random:
    """Return the master RNG of a platform's world; Conduit keeps the bare seed."""
    return random.Random(seed if platform == "conduit" else f"{platform}/{seed}")


class BaseWorld(Generic[A, R]):
    """Hold every simulated agent and its runs, generating arrivals up to the clock's reading."""

    def __init__(self, flavor: Flavor[A, R], settings: SimulatorSettings, clock: Clock) -> None:
        self.flavor, self.settings, self.clock = flavor, settings, clock
        self.platform = flavor.platform
        master = master_rng(flavor.platform, settings.seed)
        flavor.begin(master)
        start = clock()
        self._streams = [self._stream(master, index, start) for index in range(settings.agents)]
        self.agents: tuple[A, ...] = tuple(stream.agent for stream in self._streams)
        self._by_agent = {stream.agent.id: stream for stream in self._streams}
        self._by_id: dict[str, R] = {}
        self._paused_at: float | None = None
        self._advance(start)

    def _stream(self, master: random.Random, index: int, start: float) -> _Stream[A, R]:
        agent = self.flavor.new_agent(master, index, start)
        rates = self.settings.agent_rates
        rate = rates[index] if index < len(rates) else self.settings.rate
        stream: _Stream[A, R] = _Stream(agent, random.Random(master.getrandbits(64)), 0.0, rate)
        stream.next_at = start - self.settings.history + self._gap(stream)
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

    def agent(self, agent_id: str) -> A | None:
        """Return the agent with this id, or None."""
        stream = self._by_agent.get(agent_id)
        return stream.agent if stream else None

    def runs(self, agent_id: str) -> Sequence[R]:
        """Return an agent's retained runs, oldest first by (created_ms, id)."""
        stream = self._by_agent.get(agent_id)
        return stream.runs if stream else ()

    def run(self, agent_id: str, run_id: str) -> R | None:
        """Return one run of one agent by its id, or None."""
        found = self._by_id.get(run_id)
        return found if found is not None and found.agent_id == agent_id else None

    def find_run(self, run_id: str) -> R | None:
        """Return a retained run of any agent by its id, or None."""
        return self._by_id.get(run_id)

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

    def truth_rows(self) -> list[dict[str, Any]]:
        """Return every retained run's ground truth as JSON-ready dicts, oldest first per agent."""
        now_ms = self.now_ms()
        return [self.flavor.truth(run, now_ms) for stream in self._streams for run in stream.runs]

    def truth_header(self) -> dict[str, Any]:
        """Return world-wide facts for the truth endpoint beyond agents and runs."""
        return {}

    def _advance(self, now: float) -> None:
        if self._paused_at is None:
            for stream in self._streams:
                self._arrive(stream, now)
        self._prune(math.floor(now * 1000))

    def _arrive(self, stream: _Stream[A, R], now: float) -> None:
        while stream.next_at <= now:
            previous = stream.runs[-1] if stream.runs else None
            new = self.flavor.new_run(stream.rng, stream.agent, stream.next_at, previous)
            bisect.insort(stream.runs, new, key=lambda run: run.key)
            self._by_id[new.id] = new
            stream.next_at += self._gap(stream)

    def _prune(self, now_ms: int) -> None:
        cutoff = now_ms - int(self.settings.retention * 1000)
        for stream in self._streams:
            cut = bisect.bisect_left(stream.runs, cutoff, key=lambda run: run.created_ms)
            for old in stream.runs[:cut]:
                del self._by_id[old.id]
            del stream.runs[:cut]

    def _gap(self, stream: _Stream[A, R]) -> float:
        rate = stream.rate
        return stream.rng.expovariate(rate) if rate > 0 else math.inf


class World(BaseWorld[Agent, SimRun]):
    """The simulated Conduit world: one workspace, its agents and their runs."""

    def __init__(self, settings: SimulatorSettings | None = None, clock: Clock = time.time) -> None:
        self._conduit = ConduitFlavor(settings or SimulatorSettings())
        super().__init__(self._conduit, self._conduit.settings, clock)

    @property
    def workspace_id(self) -> str:
        """Return the workspace every agent belongs to."""
        return self._conduit.workspace_id

    def truth(self) -> list[TruthRun]:
        """Return every retained run with its current status, oldest first per agent."""
        now_ms = self.now_ms()
        return [truth_of(run, now_ms) for agent in self.agents for run in self.runs(agent.id)]

    def truth_header(self) -> dict[str, Any]:
        """Return the workspace id, which Conduit's truth has always carried."""
        return {"workspace_id": self.workspace_id}
