"""The exporter against the simulator's quirks of the real platforms (issue 15), in process.

Each test turns one quirk on (`SimulatorSettings.*_ratio`), polls with the real exporter on a fake
clock, and checks what the simulator's ground truth says should be counted: a status nobody
listed counts once as `unknown`, a malformed optional field is dropped alone, an ElizaOS run the
list shows `started` is counted from its detail, runs that never end cost next to nothing per
poll, and model calls filed after the end reach the trace.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import httpx
import pytest

from exporter.simulator import acp_runs, conduit_runs, elizaos_runs, runtype_runs
from exporter.simulator.platforms import PLATFORMS, simulate
from exporter.simulator.settings import SimulatorSettings
from exporter.sources.elizaos import ElizaSource
from tests.unit.fakeclock import START, FakeClock
from tests.unit.platformkit import TOKEN, PlatformHarness

REQUESTS = "agent_runs_exporter_api_requests_total"
DRIFTS = {
    "conduit": conduit_runs.DRIFTS,
    "runtype": runtype_runs.DRIFTS,
    "elizaos": elizaos_runs.DRIFTS,
    "acp": acp_runs.DRIFTS,
}
# What a run's own span loses with each drifted field: that field's attributes, nothing more.
LOST = {
    "total_cost": {"agent_run.cost_usd"},
    "token_usage.input": {"gen_ai.usage.input_tokens"},
    "trace_id": {"agent_run.upstream_trace_id"},
    "totalTokens": {"agent_run.usage.total_tokens"},
    "totalCost": {"agent_run.cost_usd"},
    "startedAt": set(),  # a time: the span's own start, no attribute
    "durationMs": set(),
    "entityId": {"agent_run.entity_id"},
    "threadId": {"agent_run.thread_id", "gen_ai.conversation.id"},
    "sessionProtocol": {"agent_run.session_protocol"},
    "createdAt": set(),  # a time: the run's end stands in for it, and the span says so (below)
}
# What a run's own span gains with a drifted field: the mark of a stand-in time.
ADDED = {"createdAt": {"agent_run.start_unknown": "true"}}


def run_world(tmp_path: Path, platform: str, **knobs: Any) -> PlatformHarness:
    """Poll one platform for a minute while runs arrive, then until every run has ended."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    harness = PlatformHarness(tmp_path, platform, discover=platform != "acp", **knobs)
    harness.poll(12)
    harness.finish()
    return harness


def in_progress(harness: PlatformHarness) -> int:
    """Return how many runs the exporter holds in flight."""
    return sum(harness.by_label("agent_runs_in_progress", "agent_id").values())


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_drifting_optional_field_is_dropped_alone_and_its_run_counted(
    tmp_path: Path, platform: str
) -> None:
    clean = run_world(tmp_path / "clean", platform)
    drifted = run_world(tmp_path / "drifted", platform, drift_ratio=0.3)  # the same runs
    truth = [run for run in drifted.truth() if run["terminal"]]
    invalid = Counter(field for run in truth for field in run["invalid_fields"])
    assert set(invalid) == set(DRIFTS[platform])  # every field of the table drifted somewhere
    assert drifted.counted() == drifted.expected() == clean.counted()  # no run lost
    assert drifted.by_label("agent_runs_exporter_fields_invalid_total", "field") == invalid
    skipped = drifted.by_label("agent_runs_exporter_runs_skipped_total", "reason")
    assert skipped["malformed_item"] == 0
    clean_roots, drifted_roots = clean.roots(), drifted.roots()
    for run in truth:
        before, after = clean_roots[run["id"]], drifted_roots[run["id"]]
        added = {k: v for field in run["invalid_fields"] for k, v in ADDED.get(field, {}).items()}
        assert added.items() <= after.items()
        kept = {k: v for k, v in after.items() if k not in added}
        assert kept.items() <= before.items()  # nothing else changed
        lost = set().union(*(LOST[field] for field in run["invalid_fields"]))
        assert set(before) - set(kept) == lost


def test_an_unknown_status_counts_once_as_unknown_with_the_raw_status_on_the_span(
    tmp_path: Path,
) -> None:
    # Runtype's SDK types `status` as an open enum: an ended execution may carry any string.
    harness = run_world(tmp_path, "runtype", unknown_status_ratio=0.2)
    truth = harness.truth()
    unlisted = {run["id"]: run["status"] for run in truth if not run["documented"]}
    assert len(unlisted) >= 10
    assert set(unlisted.values()) == set(runtype_runs.UNLISTED)
    assert all(run["terminal"] for run in truth if not run["documented"])
    assert harness.counted() == harness.expected()
    assert harness.by_label("agent_runs_total", "status")["unknown"] == len(unlisted)
    roots = harness.roots()
    for run_id, raw in unlisted.items():
        assert roots[run_id]["agent_run.status"] == "unknown"
        assert roots[run_id]["agent_run.raw_status"] == raw
    assert not harness.by_label("agent_runs_exporter_runs_skipped_total", "reason")
    assert in_progress(harness) == 0


def test_elizaos_runs_the_list_shows_started_are_counted_from_their_detail(
    tmp_path: Path,
) -> None:
    # `muted`, `self`, `off`, `replaced`, `noMessageId`: the list folds them to `started` with no
    # end, only the detail says. Polled every 5 s, no jump in time: the stuck-run re-check finds
    # them once they have been `started` for longer than ElizaOS's threshold. With drifting
    # fields too: a malformed `durationMs` only their detail carries is counted as well.
    harness = PlatformHarness(
        tmp_path, "elizaos", discover=True, unknown_status_ratio=0.2, drift_ratio=0.3
    )
    harness.poll(12)
    harness.sim.world.pause_arrivals()
    harness.poll(round(ElizaSource.stuck_after_s / 5) + 12)
    assert harness.exporter.traces is not None
    assert harness.exporter.traces.force_flush(5)
    truth = harness.truth()
    unlisted = {run["id"]: run["status"] for run in truth if not run["documented"]}
    assert len(unlisted) >= 10
    assert set(unlisted.values()) == set(elizaos_runs.UNLISTED)
    assert harness.counted() == harness.expected()
    assert harness.by_label("agent_runs_total", "status")["unknown"] == len(unlisted)
    assert in_progress(harness) == sum(1 for run in truth if not run["terminal"])  # none of them
    roots = harness.roots()
    for run_id, raw in unlisted.items():
        assert roots[run_id]["agent_run.raw_status"] == raw
    skipped = harness.by_label("agent_runs_exporter_runs_skipped_total", "reason")
    assert skipped["detail_failed"] == 0
    invalid = Counter(field for run in truth for field in run["invalid_fields"])
    only_detail = [run for run in truth if not run["documented"] and run["invalid_fields"]]
    assert any(run["invalid_fields"] == ["durationMs"] for run in only_detail)
    assert harness.by_label("agent_runs_exporter_fields_invalid_total", "field") == invalid


def requests_per_poll(harness: PlatformHarness, polls: int) -> tuple[Counter[str], int]:
    """Poll `polls` times; return the requests by endpoint and the most one poll sent."""
    total: Counter[str] = Counter()
    most = 0
    for _ in range(polls):
        before = harness.by_label(REQUESTS, "endpoint")
        harness.poll()
        sent = harness.by_label(REQUESTS, "endpoint") - before
        total += sent
        most = max(most, sum(sent.values()))
    return total, most


def test_elizaos_runs_that_never_end_cost_about_one_list_page_per_agent_a_poll(
    tmp_path: Path,
) -> None:
    # Replies superseded by a newer message in the same room: `started` in list and detail for
    # ever. Once older than the threshold they are re-checked on a backoff (60 s, doubling), and
    # paging no longer reaches back to them. Measured: 31 such runs, 2 agents, 5 s polls: 2 list
    # pages and 0.41 details a poll (2.4 requests); without the re-check threshold, 9 pages and
    # 30 details a poll (39).
    harness = PlatformHarness(tmp_path, "elizaos", discover=False, never_ending_ratio=0.2)
    agents = len(harness.sim.world.agents)
    harness.poll(12)
    harness.sim.world.pause_arrivals()
    harness.poll(60)  # 5 minutes: every other run ended and was counted
    truth = harness.truth()
    endless = [run for run in truth if run["never_ends"]]
    assert len(endless) >= 20
    assert all(not run["terminal"] for run in endless)
    assert in_progress(harness) == len(endless)
    assert harness.counted() == harness.expected()

    polls = 120  # 10 minutes
    sent, most = requests_per_poll(harness, polls)
    assert sent["list_runs"] == polls * agents  # one page per agent a poll
    assert sent["get_run"] <= 3 * len(endless)  # each re-checked a few times in 10 minutes
    assert (sent["list_runs"] + sent["get_run"]) / polls < 1.3 * agents
    assert most <= agents + len(endless)  # a poll re-checks each due run once, at most

    for runtime in harness.exporter.runtimes:  # no threshold, as before the fix: expensive
        runtime.source.stuck_after_s = None  # type: ignore[attr-defined]
    sent, _ = requests_per_poll(harness, 6)
    assert (sent["list_runs"] + sent["get_run"]) / 6 > 10 * agents
    for runtime in harness.exporter.runtimes:
        del runtime.source.stuck_after_s  # type: ignore[attr-defined]

    harness.clock.now += 3600  # past the lookback: they expire, as any run that never ends
    harness.poll()
    assert in_progress(harness) == 0
    expired = harness.by_label("agent_runs_exporter_runs_skipped_total", "reason")
    assert expired["in_flight_expired"] == len(endless)
    assert harness.counted() == harness.expected()  # never counted


def model_spans(harness: PlatformHarness) -> tuple[Counter[str], Counter[str]]:
    """Return, per run, its model-call spans and those reported ending after the run did."""
    spans = harness.spans.get_finished_spans()
    roots = {
        span.context.trace_id: span
        for span in spans
        if span.context
        and span.attributes
        and span.attributes.get("gen_ai.operation.name") == "invoke_agent"
    }
    calls: Counter[str] = Counter()
    after_end: Counter[str] = Counter()
    for span in spans:
        attributes = span.attributes or {}
        if span.context is None or attributes.get("gen_ai.operation.name") != "chat":
            continue
        root = roots[span.context.trace_id]
        run_id = str((root.attributes or {})["agent_run.id"])
        calls[run_id] += 1
        reported_end = float(attributes.get("agent_run.tool.reported_end", 0.0))  # type: ignore[arg-type]
        after_end[run_id] += reported_end * 1e9 > (root.end_time or 0)
    return calls, +after_end


def model_calls_read_at(settings: SimulatorSettings, run: dict[str, Any], at_ms: int) -> int:
    """Return how many `MODEL_USED` events a detail read at `at_ms` holds (a fresh world)."""
    clock = FakeClock(START)
    sim = simulate("elizaos", settings, clock)  # the same seed and start: the same runs
    clock.now = at_ms / 1000

    async def read() -> Any:
        transport = httpx.ASGITransport(app=sim.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
            path = f"/api/agents/{run['agent_id']}/runs/{run['id']}"
            response = await client.get(path, headers={"X-API-KEY": TOKEN})
            return response.raise_for_status().json()

    events = asyncio.run(read())["data"]["events"]
    return sum(1 for event in events if event["type"] == "MODEL_USED")


def test_elizaos_model_calls_filed_after_the_end_are_in_the_trace(tmp_path: Path) -> None:
    # ElizaOS files some model calls seconds after RUN_ENDED; the exporter reads the detail for
    # the trace only `detail_delay_s` after the end, so they are there (clamped inside the root,
    # their reported times kept).
    harness = run_world(tmp_path, "elizaos", late_event_ratio=0.5)
    truth = {run["id"]: run for run in harness.truth() if run["terminal"]}
    late = {run_id: run for run_id, run in truth.items() if run["late_model_calls"]}
    assert len(late) >= 20
    calls, after_end = model_spans(harness)
    assert calls == Counter({i: run["counts"]["modelCalls"] for i, run in truth.items()})
    assert after_end == Counter({i: run["late_model_calls"] for i, run in late.items()})

    by_count: defaultdict[int, list[dict[str, Any]]] = defaultdict(list)
    for run in late.values():
        by_count[run["late_model_calls"]].append(run)
    for count, runs in by_count.items():  # one of each: a read at the end misses them all
        run = runs[0]
        at_end = model_calls_read_at(harness.settings, run, run["ended_at"])
        assert at_end == run["counts"]["modelCalls"] - count
        delay_ms = round(ElizaSource.detail_delay_s * 1000)
        after = model_calls_read_at(harness.settings, run, run["ended_at"] + delay_ms)
        assert after == run["counts"]["modelCalls"]
