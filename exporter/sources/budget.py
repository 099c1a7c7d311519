"""Request budgets: token buckets that keep each source under its platform's rate limit.

A bucket for `limit` requests per minute keeps the times of the requests of the last 61 seconds
and sends none while `limit` of them are in that window: no 60-second window, and hence no clock
minute, ever sees more than `limit` requests, even when network delay moves a request by up to a
second on the platform's clock, while a busy source still gets 60/61 of its limit. Tokens pace
it: they refill at that rate and a bucket holds at most `burst = max(1, limit // 4)`, so a round
of polls can go out together but a quiet spell saves no more than a quarter of a minute's worth.
It starts empty: an exporter restarted in a crash loop cannot spend a fresh burst on every start.

    priority LIST    may take any token                         (list polls)
    priority DETAIL  may take a token only above the reserve    (detail fetches, name lookups)

The reserve (`limit // 20` tokens and places in the window) is what a list poll finds waiting,
however long the detail backlog. A `Retry-After` from upstream drains every bucket of the source
and pauses it until then: the upstream's word always wins over the bucket. A source without a
limit (0) still has a `RetryAfterGate`, so a `Retry-After` pauses all its requests, not only the
one that got it.

Each source has its own bucket; on platforms that limit per workspace (Conduit), sources sharing a
workspace also share a workspace bucket, so together they stay under the largest of their limits.
Each platform's limit and default are in its spec (`RateLimit`, read through `sources.registry`).

A limit is the budget of the whole deployment for that account: with `total_shards: M` every
shard's buckets (the source's and the workspace's) start at 1/M of it, rounded down, at least 1,
then hold the part the shard's agents give, floor(limit x owned / total) (`Share`): every shard
sees the whole agent list, so the parts add up to the limit without any talk between shards, and
a shard that polls 288 of 1,000 agents is not held to 250's worth.
"""

from __future__ import annotations

import enum
import hashlib
import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

Clock = Callable[[], float]

_EPSILON = 1e-6
WINDOW_S = 61.0  # a minute and a second: network delay moves a request on the platform's clock
BURST_DIVISOR = 4  # a bucket holds a quarter of a minute's tokens
RESERVE_DIVISOR = 20  # detail fetches leave a twentieth of the limit to list polls


class Priority(enum.IntEnum):
    """How urgent a request is; lower values are served first."""

    LIST = 0
    DETAIL = 1


class TokenBucket:
    """A token bucket for `limit` requests per minute, its 61-second window, a list reserve."""

    def __init__(self, limit: int, clock: Clock) -> None:
        if limit < 1:
            raise ValueError("a bucket needs a limit of at least 1 request per minute")
        self._clock = clock
        self._tokens = 0.0
        self._updated = clock()
        self._paused_until = float("-inf")
        self._taken: deque[float] = deque()  # when the requests of the window were sent
        self._rate, self.burst = 0.0, 1  # nothing earned before the first size
        self.resize(limit)

    def resize(self, limit: int) -> None:
        """Take `limit` requests per minute from now on (a shard's share that moved)."""
        self._refill()  # the tokens earned so far, at the old rate
        self.limit = limit
        self.burst = max(1, limit // BURST_DIVISOR)
        self.reserve = limit // RESERVE_DIVISOR
        self._rate = limit / WINDOW_S
        self._tokens = min(self._tokens, float(self.burst))

    def wait_for(self, priority: Priority) -> float:
        """Return how long until a request of `priority` may take a token (0: one is there)."""
        now = self._refill()
        if now < self._paused_until:
            return self._paused_until - now
        needed = 1 + (self.reserve if priority is Priority.DETAIL else 0)
        wait = 0.0
        if self._tokens < needed - _EPSILON:  # refills are floats: 0.9999999 is a token
            wait = max(_EPSILON, (needed - self._tokens) / self._rate)
        return max(wait, self._window_wait(now, needed))

    def _window_wait(self, now: float, needed: int) -> float:
        """Return how long until `needed` places are free in the last WINDOW_S seconds."""
        while self._taken and self._taken[0] <= now - WINDOW_S:
            self._taken.popleft()
        leaving = len(self._taken) - (self.limit - needed)  # must leave the window first
        return 0.0 if leaving <= 0 else max(_EPSILON, self._taken[leaving - 1] + WINDOW_S - now)

    @property
    def rate_per_s(self) -> float:
        """Return the tokens a second the bucket refills."""
        return self._rate

    def take(self) -> None:
        """Spend one token; call only after `wait_for` returned 0."""
        self._tokens = max(0.0, self._tokens - 1.0)
        self._taken.append(self._updated)

    def pause(self, seconds: float) -> None:
        """Drain the bucket and refuse every request for `seconds` (a `Retry-After`)."""
        now = self._refill()
        self._tokens = 0.0
        self._paused_until = max(self._paused_until, now + seconds)

    def _refill(self) -> float:
        now = self._clock()
        start = max(self._updated, self._paused_until)
        if now > start:
            self._tokens = min(float(self.burst), self._tokens + (now - start) * self._rate)
        self._updated = max(self._updated, now)
        return now


class RetryAfterGate:
    """The bucket of a source without a limit: no tokens to count, only a `Retry-After` pause."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._paused_until = float("-inf")

    def wait_for(self, priority: Priority) -> float:
        """Return how long the pause still lasts (0: none)."""
        return max(0.0, self._paused_until - self._clock())

    def take(self) -> None:
        """Spend nothing: there is no limit."""

    rate_per_s = math.inf  # no limit

    def pause(self, seconds: float) -> None:
        """Refuse every request for `seconds` (a `Retry-After`)."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)


class Budget:
    """The buckets one source's requests draw from (its own, and maybe its workspace's)."""

    def __init__(
        self,
        buckets: Sequence[TokenBucket | RetryAfterGate] = (),
        shares: Sequence[Share] = (),
        source: str = "",
    ) -> None:
        self._buckets = tuple(buckets)
        self._shares = tuple(shares)  # with shards: the parts of account limits this shard takes
        self.source = source
        self.spent = dict.fromkeys(Priority, 0)  # tokens taken, by priority
        self.waited_s = 0.0  # time requests spent waiting for a token

    @property
    def rate_per_s(self) -> float:
        """Return the sustained requests a second the budget allows (math.inf: no budget)."""
        return min((bucket.rate_per_s for bucket in self._buckets), default=math.inf)

    def wait_for(self, priority: Priority) -> float:
        """Return how long until every bucket has a token for `priority`; 0 takes them now."""
        wait = max((bucket.wait_for(priority) for bucket in self._buckets), default=0.0)
        if wait <= 0:
            for bucket in self._buckets:
                bucket.take()
            self.spent[priority] += 1
        return wait

    def waited(self, seconds: float) -> None:
        """Note that a request waited `seconds` for a token."""
        self.waited_s += seconds

    def pause(self, seconds: float) -> None:
        """Honour a `Retry-After`: pause every bucket for `seconds`."""
        for bucket in self._buckets:
            bucket.pause(seconds)

    def follow_agents(self, owned: int, total: int, now: float) -> None:
        """Take this shard's part of the account limits: `owned` of the source's `total` agents."""
        for share in self._shares:
            share.update(self.source, owned, total, now)


class Share:
    """One bucket's part of an account limit, in proportion to the agents this shard polls.

    Every shard sees the whole agent list (its own agents and how many the others have), so
    each computes the same split without talking to the others: floor(limit x owned / total),
    at least 1. A share that falls applies at once; one that rises waits `settle_s` (two
    discovery intervals), by which time every other shard has read the same list and lowered
    its own: the shards together stay within the limit while their lists differ. Until a
    shard knows its agents it holds the even share, limit / shards.
    """

    def __init__(self, bucket: TokenBucket, limit: int, members: Iterable[str], settle_s: float):
        self.bucket = bucket
        self.limit = limit  # the whole deployment's
        self.members = frozenset(members)  # the sources drawing on this bucket
        self.settle_s = settle_s
        self._counts: dict[str, tuple[int, int]] = {}  # source: (owned, total)
        self._rise: tuple[int, float] | None = None  # a larger share, and since when it is due

    def update(self, source: str, owned: int, total: int, now: float) -> None:
        """Note a source's agents; resize the bucket to the share they give, rises delayed."""
        self._counts[source] = (owned, total)
        everyone = sum(counted[1] for counted in self._counts.values())
        if self._counts.keys() != self.members or everyone == 0:
            return  # a member's agents are not known yet: hold
        mine = sum(counted[0] for counted in self._counts.values())
        target = max(1, self.limit * mine // everyone)
        if target <= self.bucket.limit:
            self._rise = None
            if target < self.bucket.limit:
                self.bucket.resize(target)
        elif self._rise is None or self._rise[0] != target:
            self._rise = (target, now)
        elif now - self._rise[1] >= self.settle_s:
            self.bucket.resize(target)
            self._rise = None


UNLIMITED = Budget()


@dataclass(frozen=True, slots=True)
class BudgetSpec:
    """What a source asks for: its limit (0 = none) and the workspace it shares, if any."""

    source: str
    limit: int
    workspace: str | None = None
    discovery_interval_s: float = 600.0  # how soon every shard sees a changed agent list


def workspace_key(platform: str, base_url: str, workspace_id: str | None, token: str | None) -> str:
    """Name the workspace a source's requests count against (the token's own when unset)."""
    scope = f"id:{workspace_id}" if workspace_id else "token:" + _fingerprint(token or "")
    return f"{platform} {base_url} {scope}"


def build_budgets(
    specs: Iterable[BudgetSpec], clock: Clock = time.monotonic, *, shards: int = 1
) -> dict[str, Budget]:
    """Return each source's budget, sharing one bucket between sources of one workspace.

    With `shards` exporters sharing the agents, each starts with 1/`shards` of every limit and
    then takes the part its agents give (`Share`).
    """
    specs = list(specs)
    shared: dict[str, int] = {}
    for spec in specs:
        if spec.workspace is not None and spec.limit > 0:
            shared[spec.workspace] = max(shared.get(spec.workspace, 0), spec.limit)
    members = {key: [spec for spec in specs if spec.workspace == key] for key in shared}
    workspaces = {
        key: _sized(limit, shards, clock, members[key])
        for key, limit in shared.items()
        if len(members[key]) > 1
    }
    budgets: dict[str, Budget] = {}
    for spec in specs:
        if spec.limit <= 0:  # its own gate: it counts what it spent
            budgets[spec.source] = Budget([RetryAfterGate(clock)], source=spec.source)
            continue
        parts = [_sized(spec.limit, shards, clock, [spec])]
        if spec.workspace in workspaces:
            parts.append(workspaces[spec.workspace])
        budgets[spec.source] = Budget(
            [bucket for bucket, _ in parts],
            [share for _, share in parts if share is not None],
            source=spec.source,
        )
    return budgets


def _sized(
    limit: int, shards: int, clock: Clock, specs: Sequence[BudgetSpec]
) -> tuple[TokenBucket, Share | None]:
    """Return a bucket for this shard's even part of `limit`, and its share when sharded."""
    bucket = TokenBucket(shard_limit(limit, shards), clock)
    if shards <= 1:
        return bucket, None
    settle = 2 * max(spec.discovery_interval_s for spec in specs)
    return bucket, Share(bucket, limit, (spec.source for spec in specs), settle)


def shard_limit(limit: int, shards: int) -> int:
    """Return one shard's even part of `limit`: 1/`shards`, at least 1."""
    return limit if shards <= 1 else max(1, limit // shards)


def _fingerprint(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:16]
