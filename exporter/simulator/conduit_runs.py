"""Draw Conduit agents and runs: the `Flavor` of the simulated Conduit world."""

from __future__ import annotations

import math
import random
from dataclasses import asdict, replace
from typing import Any

from exporter.simulator import catalogue, quirks, timeline
from exporter.simulator.records import Agent, SimRun, conduit_id, truth_of
from exporter.simulator.settings import SimulatorSettings

_MAX_RUNNING_S = 30 * 60.0
_MEDIAN_RUNNING_S = 4.0
# Optional fields that drift, as the exporter names them, and how each goes bad.
DRIFTS: quirks.Drifts = {
    "total_cost": lambda cost: {"amount": cost, "currency": "USD"},
    "token_usage.input": lambda tokens: f"{tokens / 1000:.1f}k",
    "trace_id": lambda trace: {"id": trace},
}


def _maybe(rng: random.Random, null_ratio: float, value: str) -> str | None:
    return None if rng.random() < null_ratio else value


class ConduitFlavor:
    """Conduit's vocabulary: `ag...` agents in one `j57...` workspace, `ar...` runs."""

    platform = "conduit"

    def __init__(self, settings: SimulatorSettings) -> None:
        self.settings = settings
        self.workspace_id = settings.workspace_id or ""

    def begin(self, master: random.Random) -> None:
        """Draw the workspace id unless the settings fix it."""
        self.workspace_id = self.settings.workspace_id or conduit_id(master, "j57", 28)

    def new_agent(self, master: random.Random, index: int, start: float) -> Agent:
        """Draw agent number `index`: a profile from the catalogue and Conduit ids."""
        name, description = timeline.profile(catalogue.AGENT_PROFILES, index)
        return Agent(
            id=conduit_id(master, "ag"),
            name=name,
            description=description,
            workspace_id=self.workspace_id,
            trigger_id=conduit_id(master, "tr"),
            internal=index % 3 == 2,
            created_ms=timeline.created_long_ago(master, start),
        )

    def new_run(
        self, rng: random.Random, agent: Agent, at: float, previous: SimRun | None
    ) -> SimRun:
        """Draw the agent's run arriving at `at`: accepted, then running, then terminal."""
        scale = self.settings.duration_scale
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
        run = SimRun(
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
        return replace(run, drift=self._drift(run)) if self.settings.drift_ratio else run

    def _drift(self, run: SimRun) -> str | None:
        values = {
            "total_cost": run.total_cost,
            "token_usage.input": run.input_tokens,
            "trace_id": run.trace_id,
        }
        ratio, seed = self.settings.drift_ratio, run.detail_seed
        return quirks.drift_of(seed, ratio, DRIFTS, lambda name: values[name] is not None)

    def truth(self, run: SimRun, now_ms: int) -> dict[str, Any]:
        """Return the run's ground truth as a JSON-ready dict."""
        return asdict(truth_of(run, now_ms))


def _tokens(rng: random.Random) -> tuple[int, int] | None:
    if rng.random() < 0.05:
        return None
    return int(rng.lognormvariate(math.log(1800), 0.6)), int(rng.lognormvariate(math.log(300), 0.7))


def _cost(input_tokens: int, output_tokens: int) -> float:
    # Priced like a mid-tier model: $3 per million input tokens, $15 per million output tokens.
    return round(input_tokens * 3e-6 + output_tokens * 15e-6, 6)
