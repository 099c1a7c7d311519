"""Stuck runs cost nothing per poll: the real ElizaOS 1.7.2 list (tests/fixtures) shows 10 runs
`started` forever; one of them ended `muted`, which only its detail says. Runs in flight longer
than the platform's threshold are re-checked through their detail on a backoff, and paging no
longer reaches back to them."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import yaml
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from exporter.app import Exporter
from exporter.config.models import load_settings
from exporter.model import Status
from exporter.poll.tracker import RECHECK_FIRST_S, Tracker
from exporter.sources.elizaos import ElizaSource
from tests.unit.fakeclock import FakeClock
from tests.unit.runs import T0, make_run

CAPTURED = Path(__file__).parents[2] / "fixtures" / "elizaos-1.7.2"
AGENT = "b850bc30-45f8-0041-a00a-83df46d8555d"


def captured(name: str) -> Any:
    return json.loads((CAPTURED / name).read_text())


class RealEliza:
    """Answer the list with the captured page and each detail as the real server would."""

    def __init__(self) -> None:
        self.listed = captured("list-after-mute.json")["data"]["runs"]
        self.muted = captured("detail-muted.json")
        self.requests: Counter[str] = Counter()
        self.details: Counter[str] = Counter()  # by the run's listed status

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/runs"):
            self.requests["list"] += 1
            return self.page(int(request.url.params["to"]))
        run_id = path.rsplit("/", 1)[-1]
        if run_id == AGENT:
            return httpx.Response(
                200, json={"success": True, "data": {"id": AGENT, "name": "Eliza"}}
            )
        self.requests["detail"] += 1
        self.details[next(r["status"] for r in self.listed if r["runId"] == run_id)] += 1
        return httpx.Response(200, json=self.detail(run_id))

    def page(self, to: int) -> httpx.Response:
        runs = [r for r in self.listed if (r["startedAt"] or 0) <= to]
        return httpx.Response(200, json={"success": True, "data": {"runs": runs, "hasMore": False}})

    def detail(self, run_id: str) -> dict[str, Any]:
        if run_id == self.muted["data"]["summary"]["runId"]:
            return dict(self.muted)
        (item,) = [r for r in self.listed if r["runId"] == run_id]
        if item["status"] == "started":  # never ends: the detail shows no end either
            return {"success": True, "data": {"summary": item, "events": []}}
        ended = {"type": "RUN_ENDED", "timestamp": item["endedAt"], "data": {"status": "completed"}}
        return {"success": True, "data": {"summary": item, "events": [ended]}}


def exporter(
    tmp_path: Path,
    server: RealEliza,
    clock: FakeClock,
    spans: InMemorySpanExporter | None = None,
) -> Exporter:
    config = {
        "poll_interval": "2s",
        "lookback": "1h",
        "state": {"path": str(tmp_path / "state.db")},
        "traces": {"exporter": "otlp" if spans else "none"},
        "sources": [
            {
                "name": "eliza",
                "platform": "elizaos",
                "base_url": "http://eliza",
                "agents": [AGENT],
                "max_requests_per_minute": 0,
            }
        ],
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    settings = load_settings(path, environ={})
    transport = httpx.MockTransport(server)
    return Exporter(settings, clock=clock, transport=transport, span_exporter=spans, environ={})


def poll(exp: Exporter, clock: FakeClock, advance: float) -> None:
    clock.advance(advance)

    async def go() -> None:
        for runtime in exp.runtimes:
            await exp.poller.poll_once(runtime)

    asyncio.run(go())


def test_stuck_runs_are_rechecked_on_a_backoff_and_a_muted_end_is_counted(
    tmp_path: Path,
) -> None:
    server = RealEliza()
    newest = max(r["startedAt"] for r in server.listed) / 1000
    clock = FakeClock(newest + 10)
    exp = exporter(tmp_path, server, clock)
    value = exp.registry.get_sample_value
    labels = {"source": "eliza", "platform": "elizaos", "agent_id": AGENT, "disposition": "none"}

    poll(exp, clock, 0)
    stuck_after = ElizaSource.stuck_after_s
    started = [r["startedAt"] / 1000 for r in server.listed if r["status"] == "started"]
    old = sum(1 for at in started if at < clock() - stuck_after)
    muted_at = server.muted["data"]["summary"]["startedAt"] / 1000
    muted_old = int(muted_at < clock() - stuck_after)  # already stuck, counted, at poll 1
    assert value("agent_runs_total", labels | {"status": "completed"}) == 90
    assert server.requests["detail"] == 90 + old  # each ended run's outcome; the stuck, once

    poll(exp, clock, stuck_after)  # every `started` run is stuck by now: each re-checked
    assert server.requests["detail"] == 90 + old + len(started) - muted_old
    assert value("agent_runs_total", labels | {"status": "unknown"}) == 1  # the muted one

    server.requests.clear()
    quiet = int(RECHECK_FIRST_S / 2) - 1
    for _ in range(quiet):  # polls every 2 s until the next re-check is due
        poll(exp, clock, 2)
    assert server.requests == Counter(list=quiet)  # one list page a poll, no detail
    poll(exp, clock, 4)
    assert 0 < server.requests["detail"] <= len(started) - 1  # the backoff is due: once each


def test_stuck_runs_do_not_hold_paging_back() -> None:
    tracker = Tracker(lookback_s=3600, traces_enabled=False)
    now = T0 + 1000
    tracker.observe("s", make_run("old", created=T0, status=Status.RUNNING), now)
    tracker.observe("s", make_run("new", created=T0 + 900), now)
    tracker.finish_agent("s", "ag1", T0 + 900)
    assert tracker.window("s", "ag1", now) == T0  # today: back to the oldest in flight
    assert tracker.window("s", "ag1", now, stuck_after_s=120) == T0 + 900
    (stuck,) = tracker.stuck("s", now, 120)
    tracker.recheck_later(stuck, now)
    assert tracker.stuck("s", now + RECHECK_FIRST_S - 1, 120) == []
    assert tracker.stuck("s", now + RECHECK_FIRST_S, 120) == [stuck]
    tracker.recheck_later(stuck, now + RECHECK_FIRST_S)  # twice as long the next time
    assert tracker.stuck("s", now + 3 * RECHECK_FIRST_S - 1, 120) == []
    assert tracker.count_checked(stuck, make_run("old", created=T0, status=Status.UNKNOWN))
    assert tracker.in_flight_counts() == {}


def test_a_trace_waits_until_the_detail_is_complete_the_count_does_not(tmp_path: Path) -> None:
    server = RealEliza()
    last_end = max(r["endedAt"] or 0 for r in server.listed) / 1000
    clock = FakeClock(last_end + 1)
    spans = InMemorySpanExporter()
    exp = exporter(tmp_path, server, clock, spans=spans)
    labels = {"source": "eliza", "platform": "elizaos", "agent_id": AGENT, "disposition": "none"}
    recent = sum(1 for r in server.listed if (r["endedAt"] or 0) / 1000 > clock() - 5.0)
    assert recent >= 1
    poll(exp, clock, 0)
    value = exp.registry.get_sample_value
    assert value("agent_runs_total", labels | {"status": "completed"}) == 90  # counted at once
    assert exp.traces is not None
    assert exp.traces.force_flush(5)
    assert len(roots(spans)) == 90 - recent  # runs that ended under 5 s ago: no trace yet
    poll(exp, clock, ElizaSource.detail_delay_s)
    assert exp.traces.force_flush(5)
    assert len(roots(spans)) == 90
    assert server.details["completed"] == 90 + recent  # read again, complete, for their trace


def roots(spans: InMemorySpanExporter) -> list[Any]:
    return [span for span in spans.get_finished_spans() if span.parent is None]
