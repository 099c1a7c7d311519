"""The platform registry: one spec per platform, and everything else pinned to it.

The config literal, the chart's schema, the simulator's table, docs/platforms.md and the README's
request budgets must name exactly the registered platforms, with the facts their specs declare.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import get_args

import pytest
from starlette.applications import Starlette

from exporter.config.source import Platform, SourceSettings
from exporter.simulator.platforms import PLATFORMS as SIMULATED
from exporter.simulator.platforms import TITLES, check_registered
from exporter.sources.base import PlatformSpec
from exporter.sources.registry import PLATFORMS, spec
from exporter.wiring import auth_headers, budget_spec, build_source

ROOT = Path(__file__).resolve().parents[3]
NAMES = tuple(PLATFORMS)
SPECS = list(PLATFORMS.values())


def ids(platform: PlatformSpec) -> str:
    return platform.name


def section(text: str, heading: str) -> str:
    """Return the Markdown section under `heading` (up to the next heading of its level)."""
    level = heading.split(" ", 1)[0]
    start = text.index(heading + "\n") if heading + "\n" in text else text.index(heading)
    rest = text[start + len(heading) :]
    end = re.search(rf"^{level} ", rest, flags=re.MULTILINE)
    return rest[: end.start()] if end else rest


def docs_sections() -> dict[str, tuple[str, str]]:
    """Return docs/platforms.md's platform sections (title, body) by their `platform:` value."""
    text = (ROOT / "docs" / "platforms.md").read_text(encoding="utf-8")
    found = re.finditer(r"^## (.+) \(`platform: ([a-z0-9_]+)`\)$", text, flags=re.MULTILINE)
    return {match[2]: (match[1], section(text, match[0])) for match in found}


def row(body: str, name: str) -> str:
    """Return the second cell of the table row `| name | ... |` in `body`."""
    match = re.search(rf"^\| {name} \| (.+) \|$", body, flags=re.MULTILINE)
    assert match is not None, f"no '{name}' row"
    return match[1]


def test_names_are_the_spec_names() -> None:
    assert NAMES == ("conduit", "runtype", "elizaos", "acp")
    assert all(name == platform.name for name, platform in PLATFORMS.items())


def test_an_unknown_platform_raises_naming_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown platform 'acme': known platforms are conduit"):
        spec("acme")
    with pytest.raises(ValueError, match="unknown platform"):
        auth_headers("", "token")


def test_the_config_literal_is_the_registry() -> None:
    assert get_args(Platform) == NAMES


def test_the_chart_schema_enum_is_the_registry() -> None:
    path = ROOT / "helm" / "agent-runs-exporter" / "values.schema.json"
    schema = json.loads(path.read_text(encoding="utf-8"))
    source = schema["properties"]["sources"]["items"]
    assert tuple(source["properties"]["platform"]["enum"]) == NAMES


def test_every_registered_platform_has_a_simulator() -> None:
    assert SIMULATED == NAMES
    assert {platform.name: platform.title for platform in SPECS} == TITLES


def test_a_platform_without_a_simulator_fails_loudly() -> None:
    def app(settings: object, clock: object) -> Starlette:
        return Starlette()

    check_registered({"conduit": app}, ["conduit"])
    with pytest.raises(LookupError, match=r"no simulator for \['runtype'\]"):
        check_registered({"conduit": app}, ["conduit", "runtype"])
    with pytest.raises(LookupError, match=r"no registered platform for \['acme'\]"):
        check_registered({"conduit": app, "acme": app}, ["conduit"])


def test_the_docs_have_one_section_per_platform() -> None:
    sections = docs_sections()
    assert tuple(sections) == NAMES
    text = (ROOT / "docs" / "platforms.md").read_text(encoding="utf-8")
    header = section(text, "## Status mapping").strip().splitlines()[0]
    assert [cell.strip() for cell in header.strip("|").split("|")][1:] == list(TITLES.values())


@pytest.mark.parametrize("platform", SPECS, ids=ids)
def test_the_docs_state_the_spec_facts(platform: PlatformSpec) -> None:
    title, body = docs_sections()[platform.name]
    assert title.startswith(platform.title)
    assert ("none to discover" not in row(body, "agents")) == platform.discovers_agents
    auth = platform.auth
    assert row(body, "auth").startswith(f"`{auth.name}: {auth.scheme + ' ' if auth.scheme else ''}")
    budget, limit = row(body, "budget"), platform.rate_limit
    assert budget.startswith(f"{limit.default} requests a minute by default")
    if limit.documented is None:
        assert "documents no limit" in budget
    else:
        assert f"documents {limit.documented} per " in budget
    assert ("per workspace" in budget) == limit.per_workspace


def readme_budget_clauses() -> list[str]:
    """Return the README's "Request budgets" text as clauses: table rows, else sentence parts."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    body = section(text, "## Request budgets").split("\n\n- ", 1)[0]  # before the bullet list
    rows = [line for line in body.splitlines() if line.startswith("|")]
    return rows or re.split(r"[.;]\s", body.replace("\n", " "))


@pytest.mark.parametrize("platform", SPECS, ids=ids)
def test_the_readme_states_each_default_budget(platform: PlatformSpec) -> None:
    limit = platform.rate_limit
    numbers = [limit.default] + ([limit.documented] if limit.documented is not None else [])
    matching = [
        clause
        for clause in readme_budget_clauses()
        if platform.title in clause
        and all(re.search(rf"\b{number}\b", clause) for number in numbers)
    ]
    assert matching, f"README's Request budgets does not say {numbers} for {platform.title}"
    if limit.per_workspace:
        assert any("per workspace" in clause for clause in matching)


def test_defaults_stay_below_documented_limits() -> None:
    for platform in SPECS:
        limit = platform.rate_limit
        if limit.documented is None:
            assert limit.default == 60, platform.name  # undocumented: stay modest
        else:
            assert 0 < limit.default < limit.documented, platform.name
    assert [p.name for p in SPECS if p.rate_limit.per_workspace] == ["conduit"]
    assert [p.name for p in SPECS if not p.discovers_agents] == ["acp"]


def settings_for(platform: PlatformSpec, **extra: object) -> SourceSettings:
    return SourceSettings.model_validate(
        {"name": "s", "platform": platform.name, "base_url": "https://u.test", "agents": ["a"]}
        | extra
    )


@pytest.mark.parametrize("platform", SPECS, ids=ids)
def test_each_spec_builds_its_platform_source(platform: PlatformSpec) -> None:
    def on_response(endpoint: str, code: str) -> None:
        return None

    source = build_source(settings_for(platform), on_response=on_response)
    asyncio.run(source.aclose())
    assert (source.platform, source.name) == (platform.name, "s")
    assert platform.endpoints
    assert len(set(platform.endpoints)) == len(platform.endpoints)


@pytest.mark.parametrize("platform", SPECS, ids=ids)
def test_each_budget_comes_from_the_spec(platform: PlatformSpec) -> None:
    asked = budget_spec(settings_for(platform, token="t"))
    assert asked.limit == platform.rate_limit.default
    assert (asked.workspace is not None) == platform.rate_limit.per_workspace
    assert budget_spec(settings_for(platform, max_requests_per_minute=7)).limit == 7


@pytest.mark.parametrize("platform", SPECS, ids=ids)
def test_listing_agents_is_required_exactly_where_the_platform_cannot_discover(
    platform: PlatformSpec,
) -> None:
    raw = {"name": "s", "platform": platform.name, "base_url": "https://u.test"}
    if platform.discovers_agents:
        assert SourceSettings.model_validate(raw).discovers_agents
    else:
        with pytest.raises(ValueError, match="cannot list its agents"):
            SourceSettings.model_validate(raw)
