"""Tests for exporter.simulator.world: deterministic, clock-driven generation of runs.

Mostly Conduit's world; the other platforms' vocabularies are checked at the end.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from typing import Any

import pytest

from exporter.simulator.platforms import simulate
from exporter.simulator.timeline import Timeline
from exporter.simulator.world import SimRun, SimulatorSettings, World, iso_ms
from tests.unit.fakeclock import FakeClock

START = 1_775_186_055.0  # 2026-04-03T03:14:15Z
TERMINAL = ("completed", "failed")
UUID4 = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"


def make_world(**knobs: object) -> tuple[World, FakeClock]:
    clock = FakeClock(START)
    return World(SimulatorSettings(**knobs), clock), clock  # type: ignore[arg-type]


def all_runs(world: World) -> list[SimRun]:
    return [run for agent in world.agents for run in world.runs(agent.id)]


def test_same_seed_and_readings_give_same_runs() -> None:
    first, first_clock = make_world(seed=11)
    second, second_clock = make_world(seed=11)
    for _ in range(30):
        first_clock.advance(2.5)
        second_clock.advance(2.5)
        first.now_ms()
        second.now_ms()
    assert all_runs(first) == all_runs(second)
    assert first.truth() == second.truth()
    assert first.agents == second.agents
    assert first.workspace_id == second.workspace_id


def test_runs_do_not_depend_on_how_often_the_clock_is_read() -> None:
    often, often_clock = make_world()
    once, once_clock = make_world()
    for _ in range(100):
        often_clock.advance(1.0)
        often.now_ms()
    once_clock.advance(100.0)
    once.now_ms()
    assert all_runs(often) == all_runs(once)


def test_other_seed_gives_other_runs() -> None:
    first, _ = make_world(seed=1)
    second, _ = make_world(seed=2)
    assert {run.id for run in all_runs(first)}.isdisjoint(run.id for run in all_runs(second))
    assert first.agents[0].id != second.agents[0].id


def test_ids_and_timestamps_look_like_conduit() -> None:
    world, _ = make_world(agents=8)
    assert re.fullmatch(r"j57[0-9a-z]{28}", world.workspace_id)
    assert len({agent.id for agent in world.agents}) == 8
    assert len({agent.name for agent in world.agents}) == 8
    for agent in world.agents:
        assert re.fullmatch(r"ag[0-9a-z]{30}", agent.id)
    for run in all_runs(world):
        assert re.fullmatch(r"ar[0-9a-z]{30}", run.id)
        assert re.fullmatch(r"run_[0-9a-f]{8}", run.run_id)
        assert run.trace_id is None or re.fullmatch(r"[0-9a-f]{16}", run.trace_id)
    assert iso_ms(1_775_186_055_000) == "2026-04-03T03:14:15.000Z"
    assert iso_ms(1_775_186_059_213) == "2026-04-03T03:14:19.213Z"


def test_lifecycle_follows_the_clock() -> None:
    world, clock = make_world(history=0, rate=1.0, agents=1)
    clock.advance(10)
    world.now_ms()
    run = world.runs(world.agents[0].id)[-1]
    clock.now = run.created_ms / 1000
    assert run.status(world.now_ms()) == "accepted"
    clock.now = run.started_ms / 1000
    assert run.status(world.now_ms()) == "running"
    clock.now = (run.completed_ms - 1) / 1000
    assert run.status(world.now_ms()) == "running"
    clock.now = run.completed_ms / 1000
    assert run.status(world.now_ms()) in TERMINAL
    truth = {row.id: row for row in world.truth()}[run.id]
    assert truth.status == run.status(run.completed_ms)
    assert truth.completed_at == iso_ms(run.completed_ms)
    assert truth.duration_ms == run.completed_ms - run.created_ms


def test_in_flight_truth_has_no_outcome() -> None:
    world, _ = make_world(history=30, rate=2.0)
    in_flight = [row for row in world.truth() if row.status not in TERMINAL]
    assert in_flight
    for row in in_flight:
        assert row.completed_at is None
        assert row.duration_ms is None
        assert row.disposition is None
        assert row.total_cost is None


def test_phase_durations_follow_the_settings() -> None:
    world, _ = make_world(history=3000, rate=1.0, duration_scale=2.0)
    runs = all_runs(world)
    accepted = [run.started_ms - run.created_ms for run in runs]
    running = [run.completed_ms - run.started_ms for run in runs]
    assert min(accepted) >= 200
    assert max(accepted) <= 4000
    assert max(running) <= 30 * 60 * 1000
    assert 5_000 < statistics.median(running) < 12_000  # median ~4 s x 2


def test_failure_ratio_is_roughly_honoured() -> None:
    world, clock = make_world(history=1000, rate=2.0, failure_ratio=0.3)
    world.pause_arrivals()
    clock.advance(3600)
    statuses = [row.status for row in world.truth()]
    assert set(statuses) == set(TERMINAL)
    assert len(statuses) > 5_000
    assert statuses.count("failed") / len(statuses) == pytest.approx(0.3, abs=0.03)


def test_failed_runs_carry_an_error_and_completed_ones_do_not() -> None:
    runs = all_runs(make_world(history=1000, rate=1.0)[0])
    assert all(run.error for run in runs if run.failed)
    assert all(run.error is None for run in runs if not run.failed)


def test_nullable_fields_do_appear() -> None:
    runs = all_runs(make_world(history=2000, rate=1.0)[0])
    assert any(run.input_tokens is None for run in runs)
    assert any(run.total_cost is None and run.input_tokens for run in runs)  # internal agent
    assert any(run.total_cost is not None for run in runs)
    assert any(run.trace_id is None for run in runs)
    assert any(run.contact_id is None for run in runs)
    assert any(run.conversation_id is None for run in runs)
    assert any(run.trigger_id is None for run in runs)
    assert any(run.trigger_id is not None for run in runs)
    assert any(run.session_id is None for run in runs)
    assert any(run.disposition is None for run in runs)
    assert any(run.tool_steps is None for run in runs)
    assert any(run.tool_nulls for run in runs)
    assert all(0 <= (run.tool_steps or 0) <= 8 for run in runs)


def test_pause_stops_arrivals_and_lets_runs_finish() -> None:
    world, clock = make_world(history=60, rate=1.0)
    world.pause_arrivals()
    before = world.truth()
    assert any(row.status not in TERMINAL for row in before)
    clock.advance(2 * 3600)
    after = world.truth()
    assert [row.id for row in after] == [row.id for row in before]
    assert all(row.status in TERMINAL for row in after)
    assert world.paused


def test_resume_restarts_arrivals_after_the_pause() -> None:
    world, clock = make_world(history=0, rate=1.0)
    world.pause_arrivals()
    clock.advance(100)
    world.resume_arrivals()
    resumed_ms = world.now_ms()
    assert not world.paused
    assert not all_runs(world)
    clock.advance(60)
    world.now_ms()
    runs = all_runs(world)
    assert runs
    assert all(run.created_ms >= resumed_ms for run in runs)


def test_pause_and_resume_are_idempotent() -> None:
    world, clock = make_world()
    world.pause_arrivals()
    world.pause_arrivals()
    clock.advance(10)
    world.resume_arrivals()
    world.resume_arrivals()
    assert not world.paused


def test_old_runs_are_pruned() -> None:
    world, clock = make_world(history=50, rate=1.0, retention=100)
    clock.advance(500)
    now_ms = world.now_ms()
    runs = all_runs(world)
    assert runs
    assert all(run.created_ms >= now_ms - 100_000 for run in runs)
    pruned = world.runs(world.agents[0].id)[0]
    clock.advance(200)
    world.now_ms()
    assert world.run(pruned.agent_id, pruned.id) is None


def test_runs_are_kept_in_creation_order() -> None:
    world, _ = make_world(history=600, rate=3.0)
    for agent in world.agents:
        keys = [run.key for run in world.runs(agent.id)]
        assert keys == sorted(keys)


def test_run_lookup_is_scoped_to_its_agent() -> None:
    world, _ = make_world()
    run = world.runs(world.agents[0].id)[0]
    assert world.run(world.agents[0].id, run.id) == run
    assert world.run(world.agents[1].id, run.id) is None
    assert world.run("ag-unknown", run.id) is None
    assert world.agent("ag-unknown") is None
    assert world.runs("ag-unknown") == ()


def test_zero_rate_creates_no_runs() -> None:
    world, clock = make_world(rate=0.0)
    clock.advance(1000)
    assert world.truth() == []


def test_workspace_id_can_be_set() -> None:
    world, _ = make_world(workspace_id="j57demo8f8x7c9v0n2q4r6t8y1u3i5o")
    assert world.workspace_id == "j57demo8f8x7c9v0n2q4r6t8y1u3i5o"
    assert all(agent.workspace_id == world.workspace_id for agent in world.agents)


@pytest.mark.parametrize(
    "knobs",
    [
        {"agents": 0},
        {"rate": -1.0},
        {"failure_ratio": 1.5},
        {"duration_scale": 0.0},
        {"error_ratio": -0.1},
        {"throttle_ratio": 2.0},
        {"rate_limit": 0},
        {"retention": 0.0},
    ],
)
def test_bad_settings_are_rejected(knobs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="invalid simulator settings"):
        SimulatorSettings(**knobs)  # type: ignore[arg-type]


def test_timeline_phases_include_a_pause() -> None:
    times = Timeline(
        created_ms=0, started_ms=10, completed_ms=100, outcome="failed", pause=(40, 60)
    )
    phases = [times.phase(at) for at in (0, 10, 39, 40, 59, 60, 99, 100)]
    assert phases == [
        "queued",
        "running",
        "running",
        "paused",
        "paused",
        "running",
        "running",
        "done",
    ]
    assert times.terminal(100)
    assert not times.terminal(99)
    assert times.duration_ms == 90


def flavored_runs(platform: str, **knobs: object) -> list[Any]:
    world = simulate(platform, SimulatorSettings(**knobs), FakeClock(START)).world  # type: ignore[arg-type]
    world.pause_arrivals()
    return [run for agent in world.agents for run in world.runs(agent.id)]


def test_ids_follow_each_platform() -> None:
    patterns = {
        "runtype": (r"agent_[0-9a-z]{20}", r"exec_[0-9a-f]{16}"),
        "elizaos": (UUID4, UUID4),
        "acp": (r"srv_[0-9a-z]{24}", r"run_[0-9a-z]{24}"),
    }
    for platform, (agent_pattern, run_pattern) in patterns.items():
        world = simulate(platform, SimulatorSettings(), FakeClock(START)).world
        assert all(re.fullmatch(agent_pattern, agent.id) for agent in world.agents)
        runs = [run for agent in world.agents for run in world.runs(agent.id)]
        assert runs
        assert all(re.fullmatch(run_pattern, run.id) for run in runs)


def test_runtype_failures_split_among_its_terminal_statuses() -> None:
    runs = flavored_runs("runtype", history=3000, rate=1.0, failure_ratio=0.5)
    outcomes = Counter(run.times.outcome for run in runs)
    assert outcomes["completed"] / len(runs) == pytest.approx(0.5, abs=0.04)
    for status, share in (("failed", 0.25), ("cancelled", 0.125), ("interrupted", 0.125)):
        assert outcomes[status] / len(runs) == pytest.approx(share, abs=0.03)
    paused = [run for run in runs if run.times.pause]
    assert len(paused) / len(runs) == pytest.approx(0.15, abs=0.03)
    assert all(run.times.started_ms < run.times.pause[0] for run in paused)


def test_elizaos_runs_start_at_once_and_end_in_its_statuses() -> None:
    runs = flavored_runs("elizaos", history=2000, rate=1.0, failure_ratio=0.3)
    assert all(run.times.created_ms == run.times.started_ms for run in runs)
    assert {run.times.outcome for run in runs} == {"completed", "timeout", "error"}
