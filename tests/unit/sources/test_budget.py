"""Request budgets: the bucket's window guarantee, list priority, Retry-After, shared workspaces,
and the HTTP client spending tokens (time moved only by a fake clock)."""

from __future__ import annotations

import asyncio
import math
from collections import Counter

import httpx
import pytest

from exporter.errors import RateLimitedError
from exporter.sources.budget import (
    WINDOW_S,
    Budget,
    BudgetSpec,
    Priority,
    TokenBucket,
    build_budgets,
)
from exporter.sources.http import HttpClient, RetryPolicy
from exporter.sources.registry import spec
from tests.unit.fakeclock import FakeClock


def spend_greedily(
    budget: Budget, clock: FakeClock, seconds: float, priority: Priority
) -> list[float]:
    """Take every token as soon as it is there for `seconds`; return when each was taken."""
    taken: list[float] = []
    end = clock.now + seconds
    while clock.now < end:
        wait = budget.wait_for(priority)
        if wait == 0:
            taken.append(clock.now)
        else:
            clock.advance(wait)
    return taken


def per_minute(times: list[float]) -> Counter[int]:
    return Counter(math.floor(t / 60) for t in times)


def test_no_sixty_second_window_exceeds_the_limit() -> None:
    clock = FakeClock(0.0)
    budget = Budget([TokenBucket(100, clock)])
    clock.advance(600)  # idle for ten minutes: the burst (25) is all it saved
    taken = spend_greedily(budget, clock, 600, Priority.LIST)
    windows = [sum(1 for t in taken if start <= t < start + 60) for start in taken]
    assert max(windows) <= 100  # the burst and a minute's refill would be 125: the window holds
    assert max(per_minute(taken).values()) <= 100
    assert len(taken) >= 600 * 100 / WINDOW_S - 1  # and the budget is used: 100 every 61 s


def test_a_bucket_starts_empty_so_restarts_cannot_add_bursts() -> None:
    clock = FakeClock(0.0)
    taken: list[float] = []
    for _ in range(20):  # a crash loop: a new process (and bucket) every 3 seconds
        taken += spend_greedily(Budget([TokenBucket(100, clock)]), clock, 3, Priority.LIST)
    assert max(per_minute(taken).values()) <= 100


def test_details_leave_the_reserve_to_list_polls() -> None:
    clock = FakeClock(0.0)
    bucket = TokenBucket(100, clock)
    assert (bucket.burst, bucket.reserve) == (25, 5)
    clock.advance(60)  # full: 25 tokens
    budget = Budget([bucket])
    details = 0
    while budget.wait_for(Priority.DETAIL) == 0:
        details += 1
    assert details == 20
    lists = 0
    while budget.wait_for(Priority.LIST) == 0:
        lists += 1
    assert lists == 5


def test_details_leave_the_reserve_of_the_window_to_list_polls() -> None:
    clock = FakeClock(0.0)
    budget = Budget([TokenBucket(100, clock)])
    clock.advance(60)  # a full bucket, then a detail every 0.6 s keeps it full
    for _ in range(95):
        clock.advance(0.6)
        assert budget.wait_for(Priority.DETAIL) == 0
    assert budget.wait_for(Priority.DETAIL) > 0  # tokens enough, but 95 in the window
    lists = 0
    while budget.wait_for(Priority.LIST) == 0:
        lists += 1
    assert lists == 5  # the window's last places are the list polls'


def test_retry_after_drains_and_pauses_every_bucket() -> None:
    clock = FakeClock(0.0)
    budget = Budget([TokenBucket(100, clock), TokenBucket(1000, clock)])
    clock.advance(60)
    budget.pause(30)
    assert budget.wait_for(Priority.LIST) == pytest.approx(30)
    clock.advance(30)
    assert budget.wait_for(Priority.LIST) == pytest.approx(WINDOW_S / 100)  # empty, refilling
    clock.advance(WINDOW_S / 100)
    assert budget.wait_for(Priority.LIST) == 0


def test_sources_of_one_workspace_share_a_bucket() -> None:
    clock = FakeClock(0.0)
    budgets = build_budgets(
        [
            BudgetSpec("a", 100, workspace="w1"),
            BudgetSpec("b", 100, workspace="w1"),
            BudgetSpec("c", 100, workspace="w2"),
            BudgetSpec("d", 0, workspace="w2"),
        ],
        clock,
    )
    assert budgets["d"].rate_per_s == math.inf  # no bucket: never waits
    assert all(budgets["d"].wait_for(Priority.LIST) == 0 for _ in range(1000))  # no limit
    taken: list[float] = []
    end = 300.0
    while clock.now < end:
        waits = [budgets[name].wait_for(Priority.LIST) for name in ("a", "b")]
        taken += [clock.now for wait in waits if wait == 0]
        if all(waits):
            clock.advance(min(waits))
    assert max(per_minute(taken).values()) <= 100  # together, not 100 each


def test_shards_share_one_budget_per_account() -> None:
    spec = BudgetSpec("a", 100, workspace="w1")
    taken: list[float] = []
    for _shard in range(4):  # four processes, each with its own clock and bucket
        clock = FakeClock(0.0)
        budget = build_budgets([spec], clock, shards=4)["a"]
        assert budget.rate_per_s == pytest.approx(25 / WINDOW_S)  # 1/4 of 100
        taken += spend_greedily(budget, clock, 600, Priority.LIST)
    assert max(per_minute(taken).values()) <= 100  # all four together
    assert len(taken) >= 4 * (600 * 25 / WINDOW_S - 1)  # and all of it is used


def shard_limits(budgets: list[Budget]) -> list[int]:
    """Return each shard's source bucket limit (requests a minute)."""
    return [budget._buckets[0].limit for budget in budgets]  # type: ignore[union-attr]


def test_a_shard_takes_the_part_its_agents_give() -> None:
    clock = FakeClock(0.0)
    spec = BudgetSpec("a", 100, discovery_interval_s=600)
    budgets = [build_budgets([spec], clock, shards=4)["a"] for _ in range(4)]
    assert shard_limits(budgets) == [25, 25, 25, 25]  # even until the agents are known
    owned = [288, 253, 231, 228]
    for budget, mine in zip(budgets, owned, strict=True):
        budget.follow_agents(mine, 1000, clock.now)
    assert shard_limits(budgets) == [25, 25, 23, 22]  # falls at once, rises wait
    clock.advance(1199)
    for budget, mine in zip(budgets, owned, strict=True):
        budget.follow_agents(mine, 1000, clock.now)
    assert shard_limits(budgets) == [25, 25, 23, 22]
    clock.advance(1)  # two discovery intervals: every shard has read the same list
    for budget, mine in zip(budgets, owned, strict=True):
        budget.follow_agents(mine, 1000, clock.now)
    assert shard_limits(budgets) == [28, 25, 23, 22]
    assert sum(shard_limits(budgets)) <= 100


def test_shards_with_different_agent_lists_stay_within_the_limit() -> None:
    clock = FakeClock(0.0)
    spec = BudgetSpec("a", 100, discovery_interval_s=60)
    budgets = [build_budgets([spec], clock, shards=2)["a"] for _ in range(2)]
    views = [(1, 2), (1, 2)]  # (owned, total) as each shard last listed them
    for step in range(400):  # agents arrive on shard 0; the shards list them at different times
        if step % 50 == 0 and step < 200:
            views[0] = (views[0][0] + 3, views[0][1] + 3)
        if step % 50 == 37:  # shard 1 lists the same agents 37 s later
            views[1] = (views[1][0], views[0][1])
        for budget, (mine, total) in zip(budgets, views, strict=True):
            budget.follow_agents(mine, total, clock.now)
        assert sum(shard_limits(budgets)) <= 100, step
        clock.advance(1)
    assert shard_limits(budgets)[0] > 50  # shard 0 owns most agents, and took their part


def test_sources_of_one_workspace_share_by_their_agents_together() -> None:
    clock = FakeClock(0.0)
    specs = [BudgetSpec("a", 100, workspace="w"), BudgetSpec("b", 100, workspace="w")]
    shard = build_budgets(specs, clock, shards=2)
    workspace = shard["a"]._buckets[1]
    assert workspace is shard["b"]._buckets[1]
    assert workspace.limit == 50  # type: ignore[union-attr]
    shard["a"].follow_agents(10, 40, clock.now)
    assert workspace.limit == 50  # type: ignore[union-attr]  # b's agents are not known yet: held
    shard["b"].follow_agents(0, 60, clock.now)
    assert workspace.limit == 10  # 10 of the workspace's 100 agents
    assert shard_limits([shard["a"], shard["b"]]) == [25, 1]


def test_one_shard_has_no_share_to_follow() -> None:
    clock = FakeClock(0.0)
    budget = build_budgets([BudgetSpec("a", 100)], clock)["a"]
    budget.follow_agents(1, 1000, clock.now)
    assert shard_limits([budget]) == [100]


def test_a_resized_bucket_keeps_no_more_than_its_new_burst() -> None:
    clock = FakeClock(0.0)
    bucket = TokenBucket(100, clock)
    clock.advance(60)  # full: 25 tokens
    bucket.resize(20)
    assert (bucket.burst, bucket.rate_per_s) == (5, pytest.approx(20 / WINDOW_S))
    for _ in range(5):
        assert bucket.wait_for(Priority.LIST) == 0
        bucket.take()
    assert bucket.wait_for(Priority.LIST) == pytest.approx(WINDOW_S / 20)


def test_a_shrunk_bucket_waits_for_its_window_to_empty() -> None:
    clock = FakeClock(0.0)
    bucket = TokenBucket(100, clock)
    budget = Budget([bucket])
    sent = spend_greedily(budget, clock, 30, Priority.LIST)  # about 49 in the first 30 s
    bucket.resize(40)  # a share that fell: more than 40 sent in the window already
    clock.advance(5)
    leaving = len(sent) - 39  # these must leave the window before the 40th place is free
    assert leaving > 0
    assert budget.wait_for(Priority.LIST) == pytest.approx(sent[leaving - 1] + WINDOW_S - clock.now)


def test_a_shard_keeps_at_least_one_request_a_minute() -> None:
    budget = build_budgets([BudgetSpec("a", 3)], FakeClock(0.0), shards=8)["a"]
    assert budget.rate_per_s == pytest.approx(1 / WINDOW_S)


def test_a_budget_counts_what_it_spent_and_waited() -> None:
    clock = FakeClock(0.0)
    budget = Budget([TokenBucket(60, clock)])
    clock.advance(60)
    spend_greedily(budget, clock, 60, Priority.DETAIL)
    assert budget.spent[Priority.DETAIL] > 50
    assert budget.spent[Priority.LIST] == 0


def test_conduit_defaults_below_its_documented_limit() -> None:
    assert spec("conduit").rate_limit.default == 100  # Conduit documents 120 per workspace
    assert spec("runtype").rate_limit.default == 60  # undocumented limits: stay modest
    with pytest.raises(ValueError, match="unknown platform 'unknown-platform'"):
        spec("unknown-platform")  # no silent default for a platform nobody registered


def budgeted_client(
    clock: FakeClock, handler: httpx.MockTransport, budget: Budget, deadline_s: float = 30
) -> HttpClient:
    async def sleep(seconds: float) -> None:
        clock.advance(seconds)

    return HttpClient(
        base_url="https://u.test",
        headers={},
        timeout_s=1,
        on_response=lambda _e, _c: None,
        transport=handler,
        sleep=sleep,
        clock=clock,
        retry=RetryPolicy(attempts=3, deadline_s=deadline_s),
        budget=budget,
    )


def test_the_client_waits_for_a_token_before_each_request() -> None:
    clock = FakeClock(0.0)
    sent: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(clock.now)
        return httpx.Response(200, json={})

    client = budgeted_client(clock, httpx.MockTransport(handler), Budget([TokenBucket(60, clock)]))

    async def main() -> None:
        for _ in range(10):
            await client.get_json("/x", endpoint="x", params={})

    asyncio.run(main())
    assert len(sent) == 10
    assert sent[-1] - sent[0] >= 9 * WINDOW_S / 60 - 1e-9  # an empty bucket: ~a token a second


def test_a_429_pauses_the_budget_for_its_retry_after() -> None:
    clock = FakeClock(0.0)
    sent: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(clock.now)
        if len(sent) == 1:
            return httpx.Response(429, headers={"Retry-After": "12"}, json={"error": "slow"})
        return httpx.Response(200, json={"ok": True})

    bucket = TokenBucket(600, clock)
    clock.advance(60)  # full, yet the upstream's word wins
    client = budgeted_client(clock, httpx.MockTransport(handler), Budget([bucket]))
    assert asyncio.run(client.get_json("/x", endpoint="x", params={})) == {"ok": True}
    assert sent[1] - sent[0] >= 12


def test_no_token_before_the_deadline_is_a_budget_refusal_not_a_request() -> None:
    clock = FakeClock(0.0)
    sent: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(clock.now)
        return httpx.Response(200, json={})

    budget = Budget([TokenBucket(100, clock)])
    budget.pause(3600)
    client = budgeted_client(clock, httpx.MockTransport(handler), budget)
    with pytest.raises(RateLimitedError) as raised:
        asyncio.run(client.get_json("/x", endpoint="x", params={}, priority=Priority.DETAIL))
    assert raised.value.budget
    assert sent == []


def test_a_source_without_a_limit_still_pauses_on_retry_after_alone() -> None:
    clock = FakeClock(0.0)
    budgets = build_budgets([BudgetSpec("a", 0), BudgetSpec("b", 0)], clock)
    assert budgets["a"] is not budgets["b"]
    budgets["a"].pause(30)
    assert budgets["a"].wait_for(Priority.LIST) == 30  # every request of the source waits
    assert budgets["a"].wait_for(Priority.DETAIL) == 30
    assert budgets["b"].wait_for(Priority.LIST) == 0  # another source is not paused
    clock.advance(30)
    assert budgets["a"].wait_for(Priority.LIST) == 0
