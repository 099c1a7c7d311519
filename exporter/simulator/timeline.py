"""The life of one simulated run as fixed instants, shared by the Runtype, ElizaOS and ACP worlds.

    created_ms ──queued──► started_ms ──running (─paused─ running)──► completed_ms ──► outcome

A run's phase at any instant is derived from these times, so a run is generated once and never
updated; each platform names the phases in its own status vocabulary.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from exporter.simulator.settings import SimulatorSettings

QUEUED, RUNNING, PAUSED, DONE = "queued", "running", "paused", "done"
_MAX_RUNNING_S = 30 * 60.0
_MEDIAN_RUNNING_S = 4.0


@dataclass(frozen=True, slots=True)
class Timeline:
    """When a run was created, started, (paused,) and finished, and how it ended."""

    created_ms: int
    started_ms: int
    completed_ms: int
    outcome: str  # the platform's terminal status
    pause: tuple[int, int] | None = None  # [from, until) inside the running phase

    def phase(self, now_ms: int) -> str:
        """Return QUEUED, RUNNING, PAUSED or DONE at `now_ms`."""
        if now_ms < self.started_ms:
            return QUEUED
        if now_ms >= self.completed_ms:
            return DONE
        if self.pause is not None and self.pause[0] <= now_ms < self.pause[1]:
            return PAUSED
        return RUNNING

    def terminal(self, now_ms: int) -> bool:
        """Say whether the run has finished at `now_ms`."""
        return now_ms >= self.completed_ms

    @property
    def duration_ms(self) -> int:
        """Return the time from start to finish."""
        return self.completed_ms - self.started_ms


class TimedRun:
    """What every Runtype, ElizaOS and ACP run derives from its `times`: sort key and status.

    A mixin for frozen slotted dataclasses that have `id` and `times` fields.
    """

    __slots__ = ()
    id: str
    times: Timeline

    @property
    def created_ms(self) -> int:
        """Return when the run was created."""
        return self.times.created_ms

    @property
    def key(self) -> tuple[int, str]:
        """Return the (created_ms, id) sort key used for ordering and cursors."""
        return (self.times.created_ms, self.id)

    def status(self, now_ms: int) -> str:
        """Return the run's status at `now_ms`: its phase, or its outcome once done."""
        phase = self.times.phase(now_ms)
        return self.times.outcome if phase == DONE else phase

    def terminal(self, now_ms: int) -> bool:
        """Say whether the run has finished at `now_ms`."""
        return self.times.terminal(now_ms)


def profile(
    profiles: Sequence[tuple[str, str]], index: int, separator: str = " "
) -> tuple[str, str]:
    """Return (name, description) of agent `index`, numbering the names once the list repeats."""
    name, description = profiles[index % len(profiles)]
    if index >= len(profiles):
        name = f"{name}{separator}{index // len(profiles) + 1}"
    return name, description


def created_long_ago(master: random.Random, start: float) -> int:
    """Draw an agent's creation time, 30 to 400 days before `start`, in epoch ms."""
    return int((start - master.uniform(30, 400) * 86400) * 1000)


def draw_timeline(
    rng: random.Random,
    at: float,
    settings: SimulatorSettings,
    failures: Sequence[tuple[str, float]],
    *,
    queue_s: tuple[float, float] = (0.1, 2.0),
    pause_ratio: float = 0.0,
) -> Timeline:
    """Draw a run arriving at `at`; it fails with `settings.failure_ratio`, as one of `failures`.

    `failures` weighs the platform's failed terminal statuses; success is always "completed".
    A share `pause_ratio` of runs pauses once mid-run, for a while, and then goes on.
    """
    scale = settings.duration_scale
    created = math.floor(at * 1000)
    started = created + round(rng.uniform(*queue_s) * scale * 1000)
    running_s = min(rng.lognormvariate(math.log(_MEDIAN_RUNNING_S * scale), 0.9), _MAX_RUNNING_S)
    running = max(1, round(running_s * 1000))
    outcome = "completed"
    if rng.random() < settings.failure_ratio:
        names, weights = zip(*failures, strict=True)
        outcome = rng.choices(names, weights=weights)[0]
    pause = None
    if rng.random() < pause_ratio:
        begins = started + round(running * rng.uniform(0.2, 0.6))
        length = round(rng.uniform(2.0, 20.0) * scale * 1000)
        pause = (begins, begins + length)
        running += length
    return Timeline(created, started, started + running, outcome, pause)


def max_span_ms(settings: SimulatorSettings) -> int:
    """Return the longest a drawn run can take from creation to its end."""
    return round((_MAX_RUNNING_S + 22.0 * settings.duration_scale) * 1000) + 1
