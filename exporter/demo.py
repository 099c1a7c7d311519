"""`agent-runs-exporter demo`: the built-in simulator as upstream and the exporter polling it.

It writes a real config file to the demo directory (so the user sees what a config looks like),
starts the simulator of all four platforms on a free loopback port (under /conduit, /runtype,
/elizaos and /acp), and runs the exporter against it with one source per platform and spans going
to a file, until Ctrl-C or `--duration`. Conduit agents and ACP servers are listed in the config;
Runtype and ElizaOS agents are left out, so the exporter discovers them.
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
from exporter.config.models import load_settings
from exporter.simulator.platforms import Simulated, simulate_all
from exporter.simulator.settings import SimulatorSettings
from exporter.web.server import RunningServer, serve_in_loop, stop_on_signals

log = logging.getLogger(__name__)

DEMO_TOKEN = "demo-token"  # the simulator's own, not a secret
DEMO_POLL_INTERVAL = "5s"
LISTED = ("conduit", "acp")  # platforms whose agents the demo config lists; others discover


def demo_source(part: Simulated, base_url: str) -> dict[str, object]:
    """Return the config of the source that polls one simulated platform."""
    source: dict[str, object] = {
        "name": part.platform,
        "platform": part.platform,
        "base_url": base_url + part.prefix,
        "token": DEMO_TOKEN,
        "max_requests_per_minute": 0,  # the demo's simulator has no rate limit either
    }
    if part.platform in LISTED:
        source["agents"] = [agent.id for agent in part.world.agents]
    return source


def demo_config(
    simulator: RunningServer, parts: list[Simulated], directory: Path, listen: str
) -> dict[str, object]:
    """Return the exporter config that points one source at each simulated platform."""
    return {
        "listen": listen,
        "poll_interval": DEMO_POLL_INTERVAL,
        "lookback": "1h",
        "state": {"path": str(directory / "state.db")},
        "traces": {"exporter": "file", "file": str(directory / "spans.jsonl")},
        "sources": [demo_source(part, simulator.url) for part in parts],
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
    app, parts = simulate_all(_with_token(sim_settings))
    simulator = await serve_in_loop(app, args.host, args.port)
    config_path = directory / "config.yaml"
    config = demo_config(simulator, parts, directory, args.listen)
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    settings = load_settings(config_path)
    stop = stop_on_signals()
    if args.duration is not None:
        asyncio.get_running_loop().call_later(args.duration, stop.set)
    _announce(simulator, parts, config_path, directory, args.listen)
    try:
        return await serve(settings, stop)
    finally:
        await simulator.stop()


def _with_token(settings: SimulatorSettings) -> SimulatorSettings:
    return replace(settings, token=settings.token or DEMO_TOKEN)


def _announce(
    simulator: RunningServer, parts: list[Simulated], config: Path, directory: Path, listen: str
) -> None:
    host, _, port = listen.rpartition(":")
    shown = "127.0.0.1" if host in ("0.0.0.0", "", "[::]") else host
    upstreams = "".join(
        f"  {part.platform:<9}  {simulator.url}{part.prefix}"
        f"   ({len(part.world.agents)} {_agent_word(part)}"
        f"{'' if part.platform in LISTED else ', discovered'})\n"
        for part in parts
    )
    print(
        "\nagent-runs-exporter demo: the built-in simulator fakes Conduit, Runtype, ElizaOS and\n"
        "ACP; the exporter polls all four.\n"
        f"  metrics    http://{shown}:{port}/metrics   (first runs counted within ~5 s)\n"
        f"  readiness  http://{shown}:{port}/readyz\n"
        f"  spans      {directory / 'spans.jsonl'}   (OTLP JSON, one export request per line)\n"
        f"  config     {config}\n"
        f"upstreams (ground truth at <url>/_simulator/truth):\n{upstreams}"
        "Press Ctrl-C to stop.\n",
        flush=True,
    )


def _agent_word(part: Simulated) -> str:
    return "servers" if part.platform == "acp" else "agents"
