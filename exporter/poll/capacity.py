"""The budget's part for list polls: what detail fetches leave, and what that allows.

`ListShare` is what the schedule (`exporter.poll.schedule`) may plan for list polls each round:
the source's requests a second less what detail fetches spent over the last few minutes and a
part of the trace backlog, always at least half, of which PLANNED_SHARE (the rest is for
discovery and name lookups). `describe` says the same to a user before the first poll
(`check-config`).
"""

from __future__ import annotations

import math

DETAIL_WINDOW_S = 300.0  # detail spending is averaged over about five minutes
BACKLOG_DRAIN_S = 3600.0  # a trace backlog asks for enough to drain it in an hour
PLANNED_SHARE = 0.95  # the rest is for discovery and name lookups


class ListShare:
    """The part of a source's budget left for list polls: what detail fetches do not need."""

    def __init__(self) -> None:
        self.detail_rate = 0.0
        self._spent: int | None = None
        self._at: float | None = None

    def capacity(self, rate: float, detail_spent: int, backlog: int, now: float) -> float:
        """Return list polls a second for a budget of `rate`, given the detail fetches so far."""
        if self._spent is not None and self._at is not None and now > self._at:
            weight = math.exp(-(now - self._at) / DETAIL_WINDOW_S)
            recent = (detail_spent - self._spent) / (now - self._at)
            self.detail_rate = weight * self.detail_rate + (1 - weight) * recent
        self._spent, self._at = detail_spent, now
        if math.isinf(rate):
            return rate
        demand = self.detail_rate + backlog / BACKLOG_DRAIN_S
        return PLANNED_SHARE * max(rate / 2, rate - demand)


def describe(
    source: str, agents: int | None, poll_interval: float, max_interval: float, rate: float
) -> str:
    """Say what polling `agents` (None: discovered) costs against `rate` requests a second."""
    capacity = PLANNED_SHARE * rate * 60
    if math.isinf(capacity):
        return f"source {source}: no request budget: every agent every {poll_interval:g}s"
    fits = math.floor(capacity * poll_interval / 60)
    if agents is None:
        return (
            f"source {source}: agents discovered at run time; the budget leaves {capacity:.0f} "
            f"list polls a minute: up to {fits} agents every {poll_interval:g}s, up to "
            f"{math.floor(capacity * max_interval / 60)} every {max_interval:g}s"
        )
    needed = 60 * agents / poll_interval
    longest = poll_interval if agents <= fits else max(max_interval, 60 * agents / capacity)
    return (
        f"source {source}: {agents} agents every {poll_interval:g}s need {needed:.0f} requests "
        f"a minute, the budget leaves {capacity:.0f} for list polls: longest interval "
        f"{longest:.0f}s" + ("" if agents <= fits else " (agents without runs wait longer)")
    )
