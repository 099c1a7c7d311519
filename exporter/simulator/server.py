"""Serve the simulator as a blocking command (`agent-runs-exporter simulate`).

run_simulator(settings, host, port, platform="conduit") -> None
    entry point of the `simulate` CLI subcommand: build the world(s) and app for one platform or
    `all`, print each platform's base URL and agents, then serve until SIGINT or SIGTERM.
"""

from __future__ import annotations

import asyncio
import logging

from exporter.simulator.platforms import TITLES, Simulated, build
from exporter.simulator.settings import SimulatorSettings
from exporter.simulator.world import World
from exporter.web.server import RunningServer, serve_in_loop, stop_on_signals

logger = logging.getLogger(__name__)


def run_simulator(
    settings: SimulatorSettings, host: str, port: int, platform: str = "conduit"
) -> None:
    """Serve fake platform APIs for `settings` on host:port until SIGINT or SIGTERM."""
    asyncio.run(_serve_until_signalled(settings, host, port, platform))


async def _serve_until_signalled(
    settings: SimulatorSettings, host: str, port: int, platform: str
) -> None:
    app, parts = build(platform, settings)
    running = await serve_in_loop(app, host, port)
    announce(running, parts)
    stop = stop_on_signals()
    try:
        await stop.wait()
    finally:
        logger.info("stopping the simulator")
        await running.stop()


def announce(running: RunningServer, parts: list[Simulated]) -> None:
    """Print each platform's base URL and agents: the user needs them to configure a run."""
    # Printed, not logged: this is the command's output.
    for part in parts:
        url = running.url + part.prefix
        print(f"{TITLES[part.platform]} simulator listening on {url}", flush=True)
        if isinstance(part.world, World):
            print(f"  workspace_id {part.world.workspace_id}", flush=True)
        kind = "server" if part.platform == "acp" else "agent"
        for agent in part.world.agents:
            print(f"  {kind} {agent.id}  {agent.name}", flush=True)
    names = ", ".join(part.platform for part in parts)
    logger.info("simulator serving %s on %s", names, running.url)
