"""The platform registry: each platform's spec by name (`configured` builds sources from them).

    PLATFORMS["conduit"]   the `SPEC` declared in exporter/sources/conduit.py
    spec("nope")           ValueError naming the known platforms: never a silent default

Adding a platform is one source module with its `SPEC` and one line below; the config `Platform`
literal, the chart's schema, the simulator's table and docs/platforms.md are pinned to this
registry by tests (tests/unit/sources/test_registry.py). See "Adding a platform" in the docs.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from exporter.sources import acp, conduit, elizaos, runtype
from exporter.sources.base import PlatformSpec

PLATFORMS: Mapping[str, PlatformSpec] = MappingProxyType(
    {
        platform.name: platform
        for platform in (
            conduit.SPEC,
            runtype.SPEC,
            elizaos.SPEC,
            acp.SPEC,
        )
    }
)


def spec(name: str) -> PlatformSpec:
    """Return the spec of platform `name`, or raise ValueError naming the known platforms."""
    found = PLATFORMS.get(name)
    if found is None:
        raise ValueError(f"unknown platform {name!r}: known platforms are {', '.join(PLATFORMS)}")
    return found
