"""Sharding: a stable, exclusive assignment of (source, agent) pairs, and two shards that together
count exactly what one unsharded exporter would."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import ValidationError

from exporter.app import Exporter
from exporter.cli import main
from exporter.config.models import load_settings
from exporter.config.sharding import ShardingSettings, owner, owns, select
from exporter.model import SourceInfo
from exporter.poll.discovery import SourceRuntime
from exporter.poll.health import SourceHealth
from exporter.simulator.world import SimulatorSettings, World
from exporter.sources.base import AgentEntry
from tests.unit.fakeclock import START, FakeClock
from tests.unit.poll.test_discovery import Setup
from tests.unit.poll.test_poller import Harness, settings

AGENTS = [f"ag{index:03d}" for index in range(300)]


def test_owner_is_pinned_so_it_never_changes_between_releases() -> None:
    # Changing the hash would move every agent to another shard on upgrade: keep these stable.
    assert [owner("support", agent, 4) for agent in AGENTS[:8]] == [0, 0, 1, 0, 3, 3, 1, 2]


@given(
    source=st.text(min_size=1, max_size=20),
    agent=st.text(min_size=1, max_size=40),
    total=st.integers(1, 16),
)
def test_each_pair_belongs_to_exactly_one_shard(source: str, agent: str, total: int) -> None:
    assert sum(owns(source, agent, shard, total) for shard in range(total)) == 1


def test_agents_spread_evenly() -> None:
    counts = Counter(owner("support", agent, 3) for agent in AGENTS)
    assert set(counts) == {0, 1, 2}
    assert min(counts.values()) > 70  # 100 each on average


def test_adding_a_shard_moves_only_the_agents_the_new_shard_takes() -> None:
    moved = [a for a in AGENTS if owner("support", a, 3) != owner("support", a, 4)]
    assert all(owner("support", agent, 4) == 3 for agent in moved)
    assert 40 < len(moved) < 110  # about a quarter of 300


def test_the_source_name_is_part_of_the_key() -> None:
    by_source = {source: select(source, AGENTS, 0, 2) for source in ("support", "sales")}
    assert by_source["support"] != by_source["sales"]


def test_one_shard_keeps_every_agent_in_order() -> None:
    assert ShardingSettings().select("support", ["b", "a", "c"]) == ["b", "a", "c"]


@pytest.mark.parametrize(
    ("shard", "total", "reason"),
    [(2, 2, "shard must be below total_shards (2 >= 2)"), (0, 0, "greater than or equal to 1")],
)
def test_bad_shards_are_rejected(shard: int, total: int, reason: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(reason)):
        ShardingSettings(shard=shard, total_shards=total)


def test_config_file_sharding_is_validated(tmp_path: Path) -> None:
    world = World(SimulatorSettings(seed=1, agents=2), clock=FakeClock(START))
    loaded = settings(tmp_path, world, sharding={"shard": 1, "total_shards": 3})
    assert (loaded.sharding.shard, loaded.sharding.total_shards) == (1, 3)
    path = tmp_path / "config.yaml"
    path.write_text(path.read_text().replace("shard: 1", "shard: 3"))
    with pytest.raises(Exception, match=r"sharding: .*shard must be below total_shards"):
        load_settings(path, environ={})


CONFIG = """
state: {path: ":memory:"}
traces: {exporter: none}
sharding: {shard: 1, total_shards: 4}
sources:
  - {name: support, platform: conduit, base_url: "http://127.0.0.1:1", agents: [ag1]}
"""


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--shard", "2", "--total-shards", "3"], "shard: 2\n  total_shards: 3"),
        (["--total-shards", "2"], "shard: 1\n  total_shards: 2"),
        ([], "shard: 1\n  total_shards: 4"),
    ],
)
def test_shard_flags_override_the_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], expected: str
) -> None:
    (tmp_path / "c.yaml").write_text(CONFIG)
    assert main(["check-config", "--config", str(tmp_path / "c.yaml"), *flags]) == 0
    assert f"sharding:\n  {expected}\n" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--shard", "3", "--total-shards", "3"], "shard must be below total_shards (3 >= 3)"),
        (["--shard", "4"], "shard must be below total_shards (4 >= 4)"),
        (["--total-shards", "0"], "--total-shards: must be at least 1, got 0"),
        (["--shard", "-1", "--total-shards", "2"], "--shard: must be at least 0, got -1"),
        (["--shard", "x"], "--shard: 'x' is not a whole number"),
    ],
)
def test_contradictory_shard_flags_exit_2_with_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    (tmp_path / "c.yaml").write_text(CONFIG)
    assert exit_code(["run", "--config", str(tmp_path / "c.yaml"), *flags]) == 2
    assert message in capsys.readouterr().err


def exit_code(argv: list[str]) -> int | str | None:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse rejects bad flag values itself
        return exc.code


def shard_exporter(harness: Harness, shard: int, total: int) -> Exporter:
    workdir = harness.tmp_path / f"shard{shard}"
    workdir.mkdir()
    overrides = {"sharding": {"shard": shard, "total_shards": total}}
    return Exporter(
        settings(workdir, harness.world, **overrides),
        clock=harness.clock,
        transport=harness.transport(),
        span_exporter=InMemorySpanExporter(),
        environ={},
    )


def counted(exporter: Exporter) -> Counter[tuple[str, str]]:
    out: Counter[tuple[str, str]] = Counter()
    for family in exporter.registry.collect():
        for s in family.samples:
            if s.name == "agent_runs_total":
                out[(s.labels["agent_id"], s.labels["status"])] += int(s.value)
    return out


def test_two_shards_split_the_agents_and_together_count_every_run(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    shards = [shard_exporter(harness, shard, 2) for shard in (0, 1)]

    async def poll(times: int) -> None:
        for _ in range(times):
            harness.clock.now += 5
            for exporter in shards:
                for runtime in exporter.runtimes:
                    await exporter.poller.poll_once(runtime)

    asyncio.run(poll(6))
    harness.world.pause_arrivals()
    harness.clock.now += 31 * 60
    asyncio.run(poll(2))
    per_shard = [counted(exporter) for exporter in shards]
    agents = [{agent for agent, _ in counts} for counts in per_shard]
    assert agents[0].isdisjoint(agents[1])  # not even zero series overlap
    assert +per_shard[0] + +per_shard[1] == harness.truth()
    assert shards[1].registry.get_sample_value("agent_runs_exporter_shard_ordinal") == 1
    assert shards[1].registry.get_sample_value("agent_runs_exporter_total_shards") == 2
    for exporter in (*shards, harness.exporter):
        asyncio.run(exporter.close())


def sharded_setup(tmp_path: Path, shard: int, agents: list[str] | None) -> Setup:
    workdir = tmp_path / f"shard{shard}"
    workdir.mkdir()
    setup = Setup(workdir, agents)
    setup.runtime = SourceRuntime(
        source=setup.source,
        agents=agents,
        info=SourceInfo("src", "runtype"),
        health=SourceHealth("src", setup.clock()),
        sharding=ShardingSettings(shard=shard, total_shards=2),
    )
    return setup


def test_discovered_agents_are_split_between_shards(tmp_path: Path) -> None:
    listed = [f"a{index}" for index in range(20)]
    polled = []
    for shard in (0, 1):
        setup = sharded_setup(tmp_path, shard, None)
        setup.source.agents = [AgentEntry(agent) for agent in listed]
        assert setup.poll()
        directory = setup.runtime.directory
        assert directory.ids == select("src", listed, shard, 2)
        assert directory.others == len(listed) - len(directory.ids)
        polled.append(set(directory.ids))
    assert polled[0] | polled[1] == set(listed)
    assert polled[0].isdisjoint(polled[1])


def test_a_shard_owning_none_of_a_sources_agents_is_healthy(tmp_path: Path) -> None:
    agent = next(a for a in AGENTS if owner("src", a, 2) == 0)
    setup = sharded_setup(tmp_path, 1, [agent])
    assert setup.poll()  # nothing to poll here is not a failure
    assert setup.runtime.directory.ids == []
    assert setup.value("agent_runs_exporter_up", source="src") == 1
