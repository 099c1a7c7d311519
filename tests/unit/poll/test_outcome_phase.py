"""The outcome phase: an ElizaOS run counted only once its detail is read is never forgotten
uncounted, however long a 429 defers that detail; past its bound it is counted as listed, said."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from exporter.app import Exporter
from tests.unit.fakeclock import FakeClock, VirtualLoop
from tests.unit.sourcekit import mock_exporter

T0 = 1_800_000_000.0
LOOKBACK = 3600.0
AGENT = "b850bc30-45f8-0041-a00a-83df46d8555d"
RUN = "0b7d7a51-5a2c-4bb4-8e6f-d5b26a5f2f11"
ROOM = "200da3af-c4fa-06ac-919b-e31fb0162346"


class Eliza:
    """One agent whose one run failed (listed `completed`, the error in RUN_ENDED); its detail
    answers 429 with `Retry-After` until `opens_at`."""

    def __init__(self, clock: FakeClock, opens_at: float) -> None:
        self.clock = clock
        self.opens_at = opens_at
        self.details = 0
        started, ended = int((T0 - 20) * 1000), int((T0 - 10) * 1000)
        self.item = {"runId": RUN, "status": "completed", "startedAt": started, "endedAt": ended}
        self.item["roomId"] = ROOM
        self.events = [
            {"type": "RUN_STARTED", "timestamp": started, "data": {}},
            {"type": "RUN_ENDED", "timestamp": ended, "data": {"error": "model outage"}},
        ]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/runs"):
            return envelope({"runs": [self.item], "total": 1, "hasMore": False})
        if path.endswith(RUN):
            self.details += 1
            if self.clock() < self.opens_at:
                wait = str(int(self.opens_at - self.clock()) + 1)
                return httpx.Response(429, headers={"Retry-After": wait}, json={"success": False})
            return envelope({"summary": self.item, "events": self.events})
        return envelope({"id": AGENT, "name": "Eliza"})


def envelope(data: Any) -> httpx.Response:
    return httpx.Response(200, json={"success": True, "data": data})


def exporter(tmp_path: Path, server: Eliza, clock: FakeClock) -> Exporter:
    transport = httpx.MockTransport(server)
    return mock_exporter(tmp_path, transport, clock, platform="elizaos", agent=AGENT, name="eliza")


def poll_until(exporter: Exporter, clock: FakeClock, until: float, step: float = 600.0) -> None:
    """Poll every `step` seconds of the fake clock until `until`."""

    async def go() -> None:
        while clock.now < until:
            clock.advance(step)
            for runtime in exporter.runtimes:
                await exporter.poller.poll_once(runtime)

    loop = VirtualLoop(clock)  # a wait (a budget token, Retry-After) moves the fake clock
    try:
        loop.run_until_complete(go())
    finally:
        loop.close()


def counts(exporter: Exporter) -> dict[str, float]:
    value = exporter.registry.get_sample_value
    labels = {"source": "eliza", "platform": "elizaos", "agent_id": AGENT, "disposition": "none"}
    found = {s: value("agent_runs_total", labels | {"status": s}) for s in ("completed", "failed")}
    return {status: n for status, n in found.items() if n}


def overdue(exporter: Exporter) -> float | None:
    labels = {"source": "eliza", "reason": "detail_overdue"}
    return exporter.registry.get_sample_value("agent_runs_exporter_runs_skipped_total", labels)


def test_a_detail_deferred_past_the_lookback_still_counts_the_run_failed(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    server = Eliza(clock, opens_at=T0 + 2 * 3600)  # the window has moved past the run by then
    exp = exporter(tmp_path, server, clock)
    poll_until(exp, clock, T0 + 5, step=5)
    assert counts(exp) == {}  # its detail got a 429: the run waits, uncounted
    poll_until(exp, clock, T0 + 2 * 3600 + 600)
    assert counts(exp) == {"failed": 1}  # read at last: the failure is seen
    assert overdue(exp) == 0
    exp.store.close()


def test_a_detail_deferred_for_too_long_counts_the_run_as_listed_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock(T0)
    server = Eliza(clock, opens_at=T0 + 10 * 3600)
    exp = exporter(tmp_path, server, clock)
    with caplog.at_level("WARNING"):
        poll_until(exp, clock, T0 + 3 * 3600)
    assert counts(exp) == {"completed": 1}  # counted, though its failure could not be seen
    assert overdue(exp) == 1
    assert any("past the lookback window" in r.getMessage() for r in caplog.records)
    poll_until(exp, clock, T0 + 11 * 3600)
    assert counts(exp) == {"completed": 1}  # once
    exp.store.close()


def test_a_run_waiting_for_its_detail_survives_a_restart_past_the_window(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    server = Eliza(clock, opens_at=T0 + 2 * 3600)
    first = exporter(tmp_path, server, clock)
    poll_until(first, clock, T0 + LOOKBACK + 900)  # past the window: kept, and persisted so
    first.store.close()
    second = exporter(tmp_path, server, clock)
    poll_until(second, clock, T0 + 2 * 3600 + 600)
    assert counts(second) == {"failed": 1}
    second.store.close()
