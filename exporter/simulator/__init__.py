"""A faithful fake of hosted agent-run APIs (Conduit today) with ground truth for tests.

`world` generates runs from a seed and an injected clock; `conduit` serves them as Conduit's
`/v1/agents...` endpoints plus `/_simulator/` controls; `server` is the `simulate` command.
Depends only on the platforms' payload shapes (and `exporter.serving` to serve them).
"""

from exporter.simulator.conduit import create_app
from exporter.simulator.records import Agent, SimRun, TruthRun
from exporter.simulator.server import run_simulator
from exporter.simulator.world import SimulatorSettings, World

__all__ = [
    "Agent",
    "SimRun",
    "SimulatorSettings",
    "TruthRun",
    "World",
    "create_app",
    "run_simulator",
]
