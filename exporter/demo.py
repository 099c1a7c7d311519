"""`agent-runs-exporter demo`: the built-in simulator as upstream and the exporter polling it.

It writes a real config file to the demo directory (so the user sees what a config looks like),
starts the simulator on a free loopback port, and runs the exporter against it with spans going to
a file, until Ctrl-C or `--duration`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
from dataclasses import replace
from pathlib import Path

import yaml

from exporter.app import serve
from exporter.config import load_settings
from exporter.serving import RunningServer, serve_in_loop, stop_on_signals
from exporter.simulator.conduit import create_app
from exporter.simulator.world import SimulatorSettings, World

log = logging.getLogger(__name__)

DEMO_TOKEN = "demo-token"  # the simulator's own, not a secret
DEMO_POLL_INTERVAL = "5s"


def demo_config(
    simulator: RunningServer, world: World, directory: Path, listen: str
) -> dict[str, object]:
    """Return the exporter config that points at the running simulator."""
    return {
        "listen": listen,
        "poll_interval": DEMO_POLL_INTERVAL,
        "lookback": "1h",
        "state": {"path": str(directory / "state.db")},
        "traces": {"exporter": "file", "file": str(directory / "spans.jsonl")},
        "sources": [
            {
                "name": "demo",
                "platform": "conduit",
                "base_url": simulator.url,
                "token": DEMO_TOKEN,
                "agents": [agent.id for agent in world.agents],
                "max_requests_per_minute": 0,  # the demo simulator has no rate limit either
            }
        ],
    }


def _fresh_directory(directory: Path) -> None:
    # The simulator invents a new world each time: old state would only confuse the counts.
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("state.db", "state.db-wal", "state.db-shm", "spans.jsonl"):
        with contextlib.suppress(FileNotFoundError):
            (directory / name).unlink()


async def run_demo(args: argparse.Namespace, sim_settings: SimulatorSettings) -> int:
    """Run simulator and exporter together; return the exit code."""
    directory = Path(args.dir)
    _fresh_directory(directory)
    world = World(_with_token(sim_settings))
    simulator = await serve_in_loop(create_app(world), args.host, args.port)
    config_path = directory / "config.yaml"
    config = demo_config(simulator, world, directory, args.listen)
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    settings = load_settings(config_path)
    stop = stop_on_signals()
    if args.duration is not None:
        asyncio.get_running_loop().call_later(args.duration, stop.set)
    _announce(simulator, config_path, directory, args.listen)
    try:
        return await serve(settings, stop)
    finally:
        await simulator.stop()


def _with_token(settings: SimulatorSettings) -> SimulatorSettings:
    return replace(settings, token=settings.token or DEMO_TOKEN)


def _announce(simulator: RunningServer, config: Path, directory: Path, listen: str) -> None:
    host, _, port = listen.rpartition(":")
    shown = "127.0.0.1" if host in ("0.0.0.0", "", "[::]") else host
    print(
        "\nagent-runs-exporter demo: the built-in Conduit simulator is the upstream.\n"
        f"  metrics    http://{shown}:{port}/metrics   (first runs counted within ~5 s)\n"
        f"  readiness  http://{shown}:{port}/readyz\n"
        f"  spans      {directory / 'spans.jsonl'}   (OTLP JSON, one export request per line)\n"
        f"  config     {config}\n"
        f"  simulator  {simulator.url}/v1/agents\n"
        "Press Ctrl-C to stop.\n",
        flush=True,
    )
