"""HTTP plumbing: Retry-After parsing, bounded retries, and shutdown cutting a backoff short."""

from __future__ import annotations

import asyncio
import random

import httpx
import pytest

from exporter.errors import RateLimitedError, ServerError
from exporter.sources.http import HttpClient, RetryPolicy, parse_retry_after

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("5", 5.0),
        (" 2.5 ", 2.5),
        ("-3", 0.0),
        ("Fri, 15 Jan 2027 08:00:30 GMT", 30.0),  # 1800000030 s after the epoch
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header, NOW) == expected


def test_full_jitter_backoff_stays_under_its_ceiling() -> None:
    policy = RetryPolicy(base_delay_s=0.5, max_delay_s=4)
    rng = random.Random(3)
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (6, 4.0)]:
        assert all(0 <= policy.delay(attempt, rng) <= ceiling for _ in range(100))


def client(
    handler: httpx.MockTransport, *, sleep: object, clock: object, policy: RetryPolicy
) -> HttpClient:
    return HttpClient(
        base_url="https://u.test",
        headers={},
        timeout_s=1,
        on_response=lambda _e, _c: None,
        transport=handler,
        sleep=sleep,  # type: ignore[arg-type]
        clock=clock,  # type: ignore[arg-type]
        retry=policy,
    )


def test_retries_stop_at_the_deadline() -> None:
    now = [NOW]
    attempts = []

    async def sleep(seconds: float) -> None:
        now[0] += seconds

    def handler(request: httpx.Request) -> httpx.Response:
        attempts.append(now[0])
        return httpx.Response(429, headers={"Retry-After": "20"}, json={"error": "slow down"})

    c = client(
        httpx.MockTransport(handler),
        sleep=sleep,
        clock=lambda: now[0],
        policy=RetryPolicy(attempts=10, deadline_s=45),
    )
    with pytest.raises(RateLimitedError) as raised:
        asyncio.run(c.get_json("/x", endpoint="x", params={}))
    assert raised.value.retry_after == 20.0
    assert attempts == [NOW, NOW + 20, NOW + 40]  # a third wait would pass the 45 s deadline


def test_shutdown_cuts_a_backoff_short() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, json={"error": "down"})

    async def main() -> None:
        c = client(
            httpx.MockTransport(handler),
            sleep=asyncio.sleep,
            clock=lambda: NOW,
            policy=RetryPolicy(attempts=5, base_delay_s=3600, max_delay_s=3600, deadline_s=1e9),
        )
        c._rng = random.Random(0)
        task = asyncio.create_task(c.get_json("/x", endpoint="x", params={}))
        await asyncio.sleep(0.05)  # let it fail once and start its (hour-long) backoff
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(asyncio.wait_for(main(), timeout=5))


def test_server_error_after_last_attempt_is_raised() -> None:
    async def sleep(_seconds: float) -> None:
        return None

    c = client(
        httpx.MockTransport(lambda r: httpx.Response(502, text="bad gateway")),
        sleep=sleep,
        clock=lambda: NOW,
        policy=RetryPolicy(attempts=2),
    )
    with pytest.raises(ServerError, match=r"HTTP 502 .*bad gateway"):
        asyncio.run(c.get_json("/x", endpoint="x", params={}))
