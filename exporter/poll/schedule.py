"""Per-agent poll scheduling: each agent's next poll time, within the source's request budget.

A list poll costs one request per agent, so the budget (requests a second left for list polls,
the `capacity`) decides how often agents can be seen:

    n / poll_interval <= capacity   every agent every poll_interval (round-robin, as before)
    otherwise                       agents with a run in flight, and new agents, first at
                                    poll_interval (their completion is due); the others share
                                    the rest at a rate proportional to sqrt(completion rate),
                                    each interval within [poll_interval, max_poll_interval]
    even max_poll_interval too much the others all at the longest interval that fits

Why the square root: a run waits half its agent's interval on average, so the mean delay is
proportional to sum(r_i * t_i); minimising it with sum(1 / t_i) fixed (Lagrange) gives
1 / t_i proportional to sqrt(r_i) (plus a small prior, so idle agents share what the others
cannot use). Completion rates decay over `RATE_WINDOW_S`, so an agent
that goes quiet drifts to max_poll_interval and one that wakes up is pulled in at its next poll.
Everything is computed from the injected clock's readings: the same polls give the same plan.

In flight: the others share what the agents in flight leave, counted as their number averaged
over `IN_FLIGHT_WINDOW_S`. Counted round by round, the three or four busy agents in flight at one
round and none at the next made every other interval swing by 15% from round to round (a busy
agent's 58 s poll came at 75 s). A round too short for everyone still takes them first.

Staggering: agents found together (a thousand at start) are first polled together, within a few
minutes, and would come due together every interval after, a wave the budget serves late while
it idles between waves. So after its first poll an agent may be polled early, by a fraction of
its interval fixed by its id (`Pace.stagger`), but only with budget a round would otherwise leave
unspent and no trace backlog waiting: the waves flatten at no cost to the agents that are due.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

RATE_WINDOW_S = 3600.0  # completion rates are learned over about an hour
PRIOR_RATE = 1 / 86400  # every agent is assumed to run about once a day: idle ones share leftovers
_SEARCH_STEPS = 60
OVERDUE_FACTOR = 1.0  # unseen this long (x the longest interval): every other place
IN_FLIGHT_WINDOW_S = 300.0  # the others' share follows the number in flight over ~5 minutes


@dataclass(slots=True)
class Pace:
    """What the schedule knows of one agent."""

    added_at: float
    interval: float
    rate: float = 0.0  # completed runs per second, decaying over RATE_WINDOW_S
    in_flight: bool = False
    polled_at: float | None = None  # the last attempt
    seen_at: float | None = None  # the last successful poll
    stagger: float = 0.0  # after the first poll: the part of the interval it may come early

    @property
    def new(self) -> bool:
        """Say whether the agent was never polled successfully."""
        return self.seen_at is None

    def unseen_for(self, now: float) -> float:
        """Return how long the agent has gone without a successful poll (since added, if never)."""
        return now - (self.added_at if self.seen_at is None else self.seen_at)

    def pending(self, now: float) -> float:
        """Return how many runs are expected to wait for this agent's poll at `now`."""
        return (self.rate + PRIOR_RATE) * self.unseen_for(now)

    def next_at(self) -> float:
        """Return when the agent is due (never polled: as soon as it is added)."""
        return self.added_at if self.polled_at is None else self.polled_at + self.interval

    def early_at(self) -> float:
        """Return when the agent may be polled with budget to spare (see staggering)."""
        return self.next_at() - self.stagger * self.interval


@dataclass(frozen=True, slots=True)
class Plan:
    """What polling a source costs against its budget, in requests a minute."""

    agents: int
    needed_per_minute: float  # every agent at poll_interval
    capacity_per_minute: float  # left for list polls (math.inf: no budget)
    longest_s: float  # the longest interval in force

    @property
    def fits(self) -> bool:
        """Say whether every agent can be polled every poll_interval."""
        return self.needed_per_minute <= self.capacity_per_minute


def allocate(
    rates: Mapping[str, float],
    urgent: Iterable[str],
    *,
    capacity: float,
    poll_interval: float,
    max_interval: float,
    expected_urgent: float | None = None,
) -> dict[str, float]:
    """Return each agent's interval (seconds) for `capacity` list polls a second.

    `urgent` agents (a run in flight, or new) get poll_interval as far as the budget allows,
    keeping room for the others at max_poll_interval when there is any. The others share what
    `expected_urgent` urgent agents would leave (default: as many as there are now).
    """
    if len(rates) <= capacity * poll_interval:
        return dict.fromkeys(rates, poll_interval)
    first = [agent for agent in dict.fromkeys(urgent) if agent in rates]
    others = {agent: rate for agent, rate in rates.items() if agent not in set(first)}
    room = max(capacity - len(others) / max_interval, capacity / 2)
    first_rate = min(len(first) / poll_interval, room)
    intervals = dict.fromkeys(first, len(first) / first_rate if first else poll_interval)
    load = len(first) if expected_urgent is None else expected_urgent
    left = capacity - min(load / poll_interval, room)
    if others and len(others) > left * max_interval:  # even max_poll_interval does not fit
        return intervals | dict.fromkeys(others, len(others) / left)
    return intervals | _share(others, left, poll_interval, max_interval)


def _share(
    rates: Mapping[str, float], capacity: float, shortest: float, longest: float
) -> dict[str, float]:
    """Split `capacity` polls a second with poll rates proportional to sqrt(rate), clamped."""
    weights = {agent: math.sqrt(max(0.0, rate) + PRIOR_RATE) for agent, rate in rates.items()}

    def spent(k: float) -> float:
        return sum(min(1 / shortest, max(1 / longest, k * w)) for w in weights.values())

    low, high = 0.0, 1.0
    while spent(high) < capacity and high < 1e12:
        high *= 2
    for _ in range(_SEARCH_STEPS):  # spent() grows with k: bisect for spent(k) = capacity
        middle = (low + high) / 2
        low, high = (middle, high) if spent(middle) < capacity else (low, middle)
    return {agent: 1 / min(1 / shortest, max(1 / longest, low * w)) for agent, w in weights.items()}


class Schedule:
    """Each agent's next poll time for one source."""

    def __init__(self, poll_interval_s: float, max_interval_s: float) -> None:
        self.poll_interval_s = poll_interval_s
        self.max_interval_s = max(max_interval_s, poll_interval_s)
        self.spread = True  # False: every agent every round, whatever the budget (round-robin)
        self.paces: dict[str, Pace] = {}
        self.plan = Plan(0, 0.0, math.inf, poll_interval_s)
        self._allowance = 0.0
        self._in_flight = 0.0  # agents with a run in flight, averaged over IN_FLIGHT_WINDOW_S
        self._round_at: float | None = None

    def sync(self, agent_ids: Iterable[str], now: float) -> bool:
        """Follow the agent list: new agents are due now, gone ones forgotten; say if it changed."""
        ids = list(dict.fromkeys(agent_ids))
        gone = [agent for agent in self.paces if agent not in set(ids)]
        for agent in gone:
            del self.paces[agent]
        added = [agent for agent in ids if agent not in self.paces]
        for agent in added:
            self.paces[agent] = Pace(added_at=now, interval=self.poll_interval_s)
        return bool(added or gone)

    def replan(self, capacity: float) -> Plan:
        """Give every agent its interval for `capacity` list polls a second; return the plan."""
        urgent = [agent for agent, pace in self.paces.items() if pace.in_flight or pace.new]
        new = sum(1 for pace in self.paces.values() if pace.new)
        weight = min(1.0, self.poll_interval_s / IN_FLIGHT_WINDOW_S)
        self._in_flight += (len(urgent) - new - self._in_flight) * weight
        rates = {agent: pace.rate for agent, pace in self.paces.items()}
        if self.spread:
            intervals = allocate(
                rates,
                urgent,
                capacity=capacity,
                poll_interval=self.poll_interval_s,
                max_interval=self.max_interval_s,
                expected_urgent=new + self._in_flight,
            )
        else:
            intervals = dict.fromkeys(rates, self.poll_interval_s)
        for agent, interval in intervals.items():
            self.paces[agent].interval = interval
        self.plan = Plan(
            agents=len(self.paces),
            needed_per_minute=60 * len(self.paces) / self.poll_interval_s,
            capacity_per_minute=60 * capacity,
            longest_s=max(intervals.values(), default=self.poll_interval_s),
        )
        return self.plan

    def due(self, now: float, *, spare: bool = True) -> list[str]:
        """Return the agents to poll this round: urgent ones first, then by runs waiting.

        When the budget allows every agent at poll_interval, that is every agent. Within a
        tight budget a round takes no more polls than the budget earned since the
        last round, so a round stays about poll_interval long and the urgent agents of the
        next round are not kept waiting behind a long queue. What the due agents leave of it,
        but one poll, goes to staggered agents polled early, when `spare` (no trace backlog).
        """
        if not self.spread or self.plan.fits:  # as before: every agent, every round
            self._round_at = now
            return list(self.paces)
        waiting = self._waiting(now)
        elapsed = self.poll_interval_s if self._round_at is None else now - self._round_at
        earned = self.plan.capacity_per_minute / 60 * elapsed
        ceiling = self.plan.capacity_per_minute / 60 * max(elapsed, self.poll_interval_s)
        # No more than a round's worth is saved up, plus the fraction a whole poll left over.
        self._allowance = min(self._allowance + earned, ceiling + 1.0)
        self._round_at = now
        taken = waiting[: max(1, int(self._allowance))]
        self._allowance = max(0.0, self._allowance - len(taken))
        if spare and len(taken) == len(waiting) and self._allowance >= 2.0:
            early = self._early(now)[: int(self._allowance - 1.0)]
            self._allowance -= len(early)
            taken += early
        return taken

    def _horizon(self, now: float) -> float:
        """Return the time up to which agents are due now: a round stands for half a round on."""
        return now + self.poll_interval_s / 2

    def _early(self, now: float) -> list[str]:
        """Return the staggered agents that may come early now (not yet due), soonest first."""
        at = self._horizon(now)
        early = [
            (pace.next_at(), agent)
            for agent, pace in self.paces.items()
            if pace.stagger > 0 and pace.early_at() <= now and pace.next_at() > at
        ]
        return [agent for _, agent in sorted(early)]

    def _waiting(self, now: float) -> list[str]:
        """Return the due agents: in flight first, then the others taking turns.

        Taking turns keeps the agents already known (the busy ones among them) polled while a
        thousand newly discovered agents wait for their first poll. A known agent unseen for
        OVERDUE_FACTOR x the longest interval in force takes every other place, however busy
        the others: the quiet tail keeps its bound when the budget runs short, and the busy
        agents keep half of every round. The known agents go by the runs expected to wait for
        them (`Pace.pending`): every poll costs the same, so a round too short for all of them
        delays the fewest runs by taking those with the most first (Smith's rule, for the same
        mean delay the square root minimises). Within the other groups, the most late first.
        An agent due within half a round is due now: rounds every poll_interval would otherwise
        add half a round to every interval on average (55 s polled as 60, or 75).
        """
        at = self._horizon(now)
        due = [(agent, pace) for agent, pace in self.paces.items() if pace.next_at() <= at]
        due.sort(key=lambda item: -(at - item[1].next_at()) / item[1].interval)
        stale = OVERDUE_FACTOR * self.plan.longest_s
        in_flight = [agent for agent, pace in due if pace.in_flight]
        rest = [(agent, pace) for agent, pace in due if not pace.in_flight]
        new = [agent for agent, pace in rest if pace.new]
        overdue = [a for a, pace in rest if not pace.new and pace.unseen_for(at) >= stale]
        known = [(a, pace) for a, pace in rest if not pace.new and pace.unseen_for(at) < stale]
        known.sort(key=lambda item: -item[1].pending(at))
        return in_flight + _turns(overdue, _turns([agent for agent, _ in known], new))

    def polled(
        self, agent: str, now: float, *, ok: bool, completed: int = 0, in_flight: bool = False
    ) -> None:
        """Note a poll of `agent` at `now`: what it found, or that it failed."""
        pace = self.paces.get(agent)
        if pace is None:
            return
        if not ok:  # try again next round, not a whole interval later
            pace.polled_at = now - pace.interval + self.poll_interval_s
            return
        pace.stagger = _stagger(agent) if pace.seen_at is None else 0.0
        since = pace.seen_at if pace.seen_at is not None else now - RATE_WINDOW_S
        decay = math.exp(-max(0.0, now - since) / RATE_WINDOW_S)
        pace.rate = pace.rate * decay + completed / RATE_WINDOW_S
        pace.in_flight = in_flight
        pace.seen_at = pace.polled_at = now

    def oldest_age(self, now: float) -> float:
        """Return the longest time any agent has gone without a successful poll."""
        return max(
            (now - (pace.seen_at or pace.added_at) for pace in self.paces.values()), default=0.0
        )

    def intervals(self) -> dict[str, float]:
        """Return each agent's scheduled interval."""
        return {agent: pace.interval for agent, pace in self.paces.items()}


def _turns(first: list[str], second: list[str]) -> list[str]:
    """Return the two lists taking turns, `first` first, the longer one's tail at the end."""
    return [agent for pair in itertools.zip_longest(first, second) for agent in pair if agent]


def _stagger(agent: str) -> float:
    """Return a fraction in [0, 1) fixed by the agent's id: spread evenly over agents."""
    digest = hashlib.blake2b(agent.encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") / 2**32
