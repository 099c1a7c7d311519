"""HTTP endpoints: /metrics content negotiation, /healthz liveness, /readyz readiness."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.openmetrics.exposition import generate_latest

from exporter.poll.health import Health
from exporter.sinks.metrics.runs import RunMetrics
from exporter.web.app import create_app
from tests.unit.fakeclock import FakeClock
from tests.unit.runs import T0, make_run

NOW = 1_800_000_000.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


def fetch(
    health: Health,
    clock: FakeClock,
    path: str,
    registry: CollectorRegistry | None = None,
    **headers: str,
) -> httpx.Response:
    async def go() -> httpx.Response:
        app = create_app(registry or CollectorRegistry(), health, clock)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://x"
        ) as c:
            return await c.get(path, headers=headers)

    return asyncio.run(go())


def test_metrics_negotiates_openmetrics(clock: FakeClock) -> None:
    registry = CollectorRegistry()
    Counter("demo_things", "Things.", registry=registry).inc()
    plain = fetch(Health(15), clock, "/metrics", registry)
    assert plain.status_code == 200
    assert plain.headers["content-type"].startswith("text/plain")
    assert "demo_things_total 1.0" in plain.text
    om = fetch(Health(15), clock, "/metrics", registry, accept="application/openmetrics-text")
    assert om.headers["content-type"].startswith("application/openmetrics-text")
    assert om.text.endswith("# EOF\n")


def test_metrics_serves_the_run_metrics_as_prometheus_client_renders_them(
    clock: FakeClock,
) -> None:
    registry = CollectorRegistry()
    metrics = RunMetrics({"duration": [1.0, 5.0], "tokens": [500.0], "cost": [0.01]})
    registry.register(metrics)
    metrics.record_run("s", "conduit", make_run("r1"), "0" * 31 + "1", T0)
    metrics.publish()
    headers = {"accept": "application/openmetrics-text", "accept-encoding": "identity"}
    om = fetch(Health(15), clock, "/metrics", registry, **headers)
    assert "content-encoding" not in om.headers
    assert om.content == generate_latest(registry)
    assert 'trace_id="00000000000000000000000000000001"' in om.text


def test_metrics_are_gzipped_when_the_scraper_accepts_it(clock: FakeClock) -> None:
    registry = CollectorRegistry()
    Counter("demo_things", "Things.", registry=registry).inc()
    zipped = fetch(Health(15), clock, "/metrics", registry, **{"accept-encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert "demo_things_total 1.0" in zipped.text  # httpx decodes it


def test_healthz_fails_when_a_poll_loop_stalls(clock: FakeClock) -> None:
    health = Health(poll_interval_s=15)
    source = health.add("support", clock())
    assert fetch(health, clock, "/healthz").status_code == 200
    clock.now += health.stall_after_s + 1
    stalled = fetch(health, clock, "/healthz")
    assert stalled.status_code == 503
    assert stalled.json()["stalled_sources"] == ["support"]
    source.last_cycle = clock.now
    assert fetch(health, clock, "/healthz").status_code == 200


def test_a_long_cycle_that_makes_progress_stays_alive(clock: FakeClock) -> None:
    health = Health(poll_interval_s=15)
    source = health.add("support", clock())
    for _ in range(10):  # a first poll reading an hour of history: pages, then trace chunks
        clock.now += health.stall_after_s / 2
        source.last_progress = clock.now
        assert fetch(health, clock, "/healthz").status_code == 200
    clock.now += health.stall_after_s + 1
    assert fetch(health, clock, "/healthz").status_code == 503


def test_readyz_names_stale_and_failing_sources(clock: FakeClock) -> None:
    health = Health(poll_interval_s=15)
    good = health.add("good", clock())
    bad = health.add("bad", clock())
    first = fetch(health, clock, "/readyz")
    assert first.status_code == 503  # nothing polled yet
    good.last_success = clock.now
    bad.last_error = "unauthorized"
    body = fetch(health, clock, "/readyz").json()
    assert body["stale_sources"] == ["bad"]
    assert body["sources"]["bad"]["reason"] == "unauthorized"
    bad.last_success = clock.now
    assert fetch(health, clock, "/readyz").status_code == 200
    clock.now += health.stale_after_s + 1
    stale = fetch(health, clock, "/readyz")
    assert stale.status_code == 503
    assert stale.json()["sources"]["good"]["reason"].startswith("stale")


def test_index_links_the_endpoints(clock: FakeClock) -> None:
    page = fetch(Health(15), clock, "/")
    assert page.status_code == 200
    assert 'href="metrics"' in page.text


def test_readyz_reports_a_state_file_that_takes_no_commits(clock: FakeClock) -> None:
    problem: list[str | None] = [None]
    health = Health(poll_interval_s=15, state_problem=lambda: problem[0])
    health.add("good", clock()).last_success = clock.now
    assert fetch(health, clock, "/readyz").json()["state"] == {"ok": True, "reason": "ok"}
    problem[0] = "cannot write state file /data/s.db: database or disk is full"
    answer = fetch(health, clock, "/readyz")
    assert answer.status_code == 503
    assert answer.json()["state"]["reason"].endswith("disk is full")
    assert fetch(health, clock, "/healthz").status_code == 200  # alive: polling goes on
