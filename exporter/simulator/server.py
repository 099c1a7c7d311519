"""Serve the simulator as a blocking command (`agent-runs-exporter simulate`).

run_simulator(settings: SimulatorSettings, host: str, port: int) -> None
    entry point of the `simulate` CLI subcommand: build a World and the fake Conduit app,
    print the base URL, workspace, agent ids and names, then serve until SIGINT or SIGTERM.
"""

from __future__ import annotations

import asyncio
import logging

from exporter.serving import RunningServer, serve_in_loop, stop_on_signals
from exporter.simulator.conduit import create_app
from exporter.simulator.world import SimulatorSettings, World

logger = logging.getLogger(__name__)


def run_simulator(settings: SimulatorSettings, host: str, port: int) -> None:
    """Serve a fake Conduit API for `settings` on host:port until SIGINT or SIGTERM."""
    asyncio.run(_serve_until_signalled(settings, host, port))


async def _serve_until_signalled(settings: SimulatorSettings, host: str, port: int) -> None:
    world = World(settings)
    running = await serve_in_loop(create_app(world), host, port)
    _announce(running, world)
    stop = stop_on_signals()
    try:
        await stop.wait()
    finally:
        logger.info("stopping the simulator")
        await running.stop()


def _announce(running: RunningServer, world: World) -> None:
    # Printed, not logged: this is the command's output, and the user needs it to configure a run.
    print(f"Conduit simulator listening on {running.url}", flush=True)
    print(f"  workspace_id {world.workspace_id}", flush=True)
    for agent in world.agents:
        print(f"  agent {agent.id}  {agent.name}", flush=True)
    logger.info("simulator serving %d agents on %s", len(world.agents), running.url)
