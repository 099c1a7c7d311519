"""The simulator's knobs: load, durations and quirks of the world; faults and auth of the servers.

Quirks are how the real platforms depart from their documents (issue 15): a status nobody listed,
an optional field that drifts, an ElizaOS run that never ends or files model calls late. Each is
off at 0, decided per run from the run's own seed (`quirks.py`), so turning one on changes no
other draw of the world.
"""

from __future__ import annotations

from dataclasses import dataclass

_QUIRKS = ("unknown_status_ratio", "drift_ratio", "never_ending_ratio", "late_event_ratio")


@dataclass(frozen=True, slots=True)
class SimulatorSettings:
    """Knobs of the simulated world (load, durations) and of the fake server (faults, auth)."""

    seed: int = 7
    agents: int = 3
    rate: float = 0.5  # new runs per second per agent (Poisson)
    agent_rates: tuple[float, ...] = ()  # per agent by index, a skewed fleet; the rest at `rate`
    failure_ratio: float = 0.1
    duration_scale: float = 1.0
    history: float = 600.0  # seconds of runs generated before the start
    retention: float = 24 * 3600.0  # runs older than this are pruned
    workspace_id: str | None = None  # Conduit only; None: derived from the seed
    latency: float = 0.0  # seconds added to each response
    error_ratio: float = 0.0  # share of requests answered 500/502/503
    throttle_ratio: float = 0.0  # share of requests answered 429
    retry_after: int = 1  # Retry-After seconds of an injected 429
    rate_limit: int | None = 120  # per minute per platform app (Conduit's quota); None: off
    slow_ratio: float = 0.0  # share of requests answered only after slow_seconds
    slow_seconds: float = 5.0
    malformed_ratio: float = 0.0  # share of requests answered 200 with a truncated body
    token: str | None = None  # required token (each platform's own header); None: no auth
    unknown_status_ratio: float = 0.0  # share of ended runs with a status outside the documented
    #   set (Runtype: an open enum; ElizaOS: `muted`, `self`... which its list folds to `started`)
    drift_ratio: float = 0.0  # share of runs with one malformed optional field (every platform)
    never_ending_ratio: float = 0.0  # ElizaOS: share of runs superseded in their room, never ending
    late_event_ratio: float = 0.0  # ElizaOS: share of runs filing model calls seconds after the end

    def __post_init__(self) -> None:
        problems = [name for name, ok in self._checks() if not ok]
        if problems:
            raise ValueError("invalid simulator settings: " + ", ".join(problems))

    def _checks(self) -> list[tuple[str, bool]]:
        return [
            ("agents must be >= 1", self.agents >= 1),
            ("rate must be >= 0", self.rate >= 0),
            ("agent_rates must be >= 0", all(rate >= 0 for rate in self.agent_rates)),
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
            *[(f"{name} must be in [0, 1]", 0 <= getattr(self, name) <= 1) for name in _QUIRKS],
        ]
