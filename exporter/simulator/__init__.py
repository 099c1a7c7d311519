"""Faithful fakes of hosted agent-run APIs (Conduit, Runtype, ElizaOS, ACP) with ground truth.

`world` generates runs from a seed and an injected clock, in each platform's vocabulary (its
`Flavor`: `conduit_runs`, `runtype_runs`, `elizaos_runs`, `acp_runs`); `conduit`, `runtype`,
`elizaos` and `acp` serve them as that platform's endpoints through the shared `gate`, plus
`/_simulator/` controls; `platforms` builds one app or all of them, keyed by the source
registry's platform names; `server` is the `simulate` command. Depends only on the platforms'
payload shapes, the registry's names (`exporter.sources.registry`) and `exporter.web.server`.
"""

from exporter.simulator.conduit import create_app
from exporter.simulator.platforms import PLATFORMS, Simulated, build, simulate, simulate_all
from exporter.simulator.records import Agent, SimRun, TruthRun
from exporter.simulator.server import run_simulator
from exporter.simulator.world import BaseWorld, SimulatorSettings, World

__all__ = [
    "PLATFORMS",
    "Agent",
    "BaseWorld",
    "SimRun",
    "Simulated",
    "SimulatorSettings",
    "TruthRun",
    "World",
    "build",
    "create_app",
    "run_simulator",
    "simulate",
    "simulate_all",
]
