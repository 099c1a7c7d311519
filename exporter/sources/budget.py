"""Request budgets: token buckets that keep each source under its platform's rate limit.

A bucket for `limit` requests per minute holds at most `burst = max(1, limit // 10)` tokens and
refills at `limit - burst` tokens per minute, so no 60-second window, and hence no clock minute,
ever sees more than `limit` requests. It starts empty: an exporter restarted in a crash loop
cannot spend a fresh burst on every start.

    priority LIST    may take any token                         (list polls)
    priority DETAIL  may take a token only above the reserve    (detail fetches, name lookups)

The reserve (`burst // 2` tokens) is what a list poll finds waiting, however long the detail
backlog. A `Retry-After` from upstream drains every bucket of the source and pauses it until then:
the upstream's word always wins over the bucket. A source without a limit (0) still has a
`RetryAfterGate`, so a `Retry-After` pauses all its requests, not only the one that got it.

Each source has its own bucket; on platforms that limit per workspace (Conduit), sources sharing a
workspace also share a workspace bucket, so together they stay under the largest of their limits.
Each platform's limit and default are in its spec (`RateLimit`, read through `sources.registry`).

A limit is the budget of the whole deployment for that account: with `total_shards: M` every
shard's buckets (the source's and the workspace's) hold 1/M of it, rounded down, at least 1, so M
shards together never exceed it. Each shard polls about 1/M of the agents, so the shares match.
"""

from __future__ import annotations

import enum
import hashlib
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

Clock = Callable[[], float]

_EPSILON = 1e-6


class Priority(enum.IntEnum):
    """How urgent a request is; lower values are served first."""

    LIST = 0
    DETAIL = 1


class TokenBucket:
    """A token bucket for `limit` requests per minute with a reserve for list polls."""

    def __init__(self, limit: int, clock: Clock) -> None:
        if limit < 1:
            raise ValueError("a bucket needs a limit of at least 1 request per minute")
        self.limit = limit
        self.burst = max(1, limit // 10)
        self.reserve = self.burst // 2
        self._rate = (limit - self.burst) / 60.0 if limit > self.burst else limit / 60.0
        self._clock = clock
        self._tokens = 0.0
        self._updated = clock()
        self._paused_until = float("-inf")

    def wait_for(self, priority: Priority) -> float:
        """Return how long until a request of `priority` may take a token (0: one is there)."""
        now = self._refill()
        if now < self._paused_until:
            return self._paused_until - now
        needed = 1.0 + (self.reserve if priority is Priority.DETAIL else 0)
        if self._tokens >= needed - _EPSILON:  # refills are floats: 0.9999999 is a token
            return 0.0
        return max(_EPSILON, (needed - self._tokens) / self._rate)

    @property
    def rate_per_s(self) -> float:
        """Return the tokens a second the bucket refills."""
        return self._rate

    def take(self) -> None:
        """Spend one token; call only after `wait_for` returned 0."""
        self._tokens = max(0.0, self._tokens - 1.0)

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

    def __init__(self, buckets: Sequence[TokenBucket | RetryAfterGate] = ()) -> None:
        self._buckets = tuple(buckets)
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


UNLIMITED = Budget()


@dataclass(frozen=True, slots=True)
class BudgetSpec:
    """What a source asks for: its limit (0 = none) and the workspace it shares, if any."""

    source: str
    limit: int
    workspace: str | None = None


def workspace_key(platform: str, base_url: str, workspace_id: str | None, token: str | None) -> str:
    """Name the workspace a source's requests count against (the token's own when unset)."""
    scope = f"id:{workspace_id}" if workspace_id else "token:" + _fingerprint(token or "")
    return f"{platform} {base_url} {scope}"


def build_budgets(
    specs: Iterable[BudgetSpec], clock: Clock = time.monotonic, *, shards: int = 1
) -> dict[str, Budget]:
    """Return each source's budget, sharing one bucket between sources of one workspace.

    With `shards` exporters sharing the agents, each gets 1/`shards` of every limit.
    """
    specs = [shard_share(spec, shards) for spec in specs]
    shared: dict[str, int] = {}
    for spec in specs:
        if spec.workspace is not None and spec.limit > 0:
            shared[spec.workspace] = max(shared.get(spec.workspace, 0), spec.limit)
    members = [spec.workspace for spec in specs if spec.workspace in shared]
    workspaces = {
        key: TokenBucket(limit, clock) for key, limit in shared.items() if members.count(key) > 1
    }
    budgets: dict[str, Budget] = {}
    for spec in specs:
        if spec.limit <= 0:
            budgets[spec.source] = Budget(
                [RetryAfterGate(clock)]
            )  # its own: it counts what it spent
            continue
        buckets = [TokenBucket(spec.limit, clock)]
        if spec.workspace in workspaces:
            buckets.append(workspaces[spec.workspace])
        budgets[spec.source] = Budget(buckets)
    return budgets


def shard_share(spec: BudgetSpec, shards: int) -> BudgetSpec:
    """Return `spec` with this shard's share of its limit: 1/`shards`, at least 1."""
    if spec.limit <= 0 or shards <= 1:
        return spec
    return BudgetSpec(spec.source, max(1, spec.limit // shards), spec.workspace)


def _fingerprint(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:16]
