"""Build the fake app of one platform, or of all of them mounted under `/<platform>` in one server.

conduit  runtype  elizaos  acp      one world and one app each, seeded per platform
all                                 /conduit, /runtype, /elizaos, /acp: each base URL is
                                    http://host:port/<platform>, with its own /_simulator/

Platforms are the source registry's names; every registered platform needs a builder below, and
importing this module fails loudly when one has none.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.routing import Mount

from exporter.simulator import acp, conduit, elizaos, runtype
from exporter.simulator.settings import SimulatorSettings
from exporter.simulator.world import BaseWorld, Clock, World
from exporter.sources.registry import PLATFORMS as SPECS

PLATFORMS = tuple(SPECS)
ALL = "all"
TITLES = {name: platform.title for name, platform in SPECS.items()}
Builder = Callable[[SimulatorSettings, Clock], Starlette]


@dataclass(frozen=True, slots=True)
class Simulated:
    """One platform's world and the app serving it, and where it is mounted (`""`: at the root)."""

    platform: str
    world: BaseWorld[Any, Any]
    app: Starlette
    prefix: str = ""


def _conduit(settings: SimulatorSettings, clock: Clock) -> Starlette:
    return conduit.create_app(World(settings, clock))


def check_registered(builders: Mapping[str, Builder], platforms: Iterable[str]) -> None:
    """Raise LookupError unless every platform has a builder and every builder a platform."""
    missing = [name for name in platforms if name not in builders]
    extra = [name for name in builders if name not in set(platforms)]
    if missing or extra:
        raise LookupError(
            f"the simulator's platforms differ from the source registry: no simulator for "
            f"{missing or 'none'}, no registered platform for {extra or 'none'} "
            "(add the platform's line to _BUILDERS in exporter/simulator/platforms.py)"
        )


_BUILDERS: dict[str, Builder] = {
    "conduit": _conduit,
    "runtype": lambda settings, clock: runtype.create_app(runtype.runtype_world(settings, clock)),
    "elizaos": lambda settings, clock: elizaos.create_app(elizaos.elizaos_world(settings, clock)),
    "acp": lambda settings, clock: acp.create_app(acp.acp_world(settings, clock)),
}
check_registered(_BUILDERS, PLATFORMS)


def simulate(platform: str, settings: SimulatorSettings, clock: Clock = time.time) -> Simulated:
    """Build one platform's world and app; raise ValueError for an unknown platform."""
    if platform not in _BUILDERS:
        raise ValueError(f"unknown platform {platform!r}: choose one of {', '.join(PLATFORMS)}")
    app = _BUILDERS[platform](settings, clock)
    return Simulated(platform, app.state.world, app)


def simulate_all(
    settings: SimulatorSettings, clock: Clock = time.time
) -> tuple[Starlette, list[Simulated]]:
    """Build every platform, each mounted under `/<platform>` of one app."""
    parts = [simulate(name, settings, clock) for name in PLATFORMS]
    mounted = [Simulated(p.platform, p.world, p.app, f"/{p.platform}") for p in parts]
    app = Starlette(routes=[Mount(part.prefix, app=part.app) for part in mounted])
    app.state.platforms = {part.platform: part for part in mounted}
    return app, mounted


def build(
    platform: str, settings: SimulatorSettings, clock: Clock = time.time
) -> tuple[Starlette, list[Simulated]]:
    """Build the app to serve for `platform` (one name or `all`) and what it holds."""
    if platform == ALL:
        return simulate_all(settings, clock)
    part = simulate(platform, settings, clock)
    return part.app, [part]
