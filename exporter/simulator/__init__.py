"""A faithful fake of hosted agent-run APIs (Conduit today) with ground truth for tests.

`world` generates runs from a seed and an injected clock; `conduit` serves them as Conduit's
`/v1/agents...` endpoints plus `/_simulator/` controls; `server` runs an app with uvicorn.
Depends only on the platforms' payload shapes: nothing else in the package is imported.
"""

from exporter.simulator.conduit import create_app
from exporter.simulator.records import Agent, SimRun, TruthRun
from exporter.simulator.server import RunningServer, run_simulator, serve_in_loop
from exporter.simulator.world import SimulatorSettings, World

__all__ = [
    "Agent",
    "RunningServer",
    "SimRun",
    "SimulatorSettings",
    "TruthRun",
    "World",
    "create_app",
    "run_simulator",
    "serve_in_loop",
]
