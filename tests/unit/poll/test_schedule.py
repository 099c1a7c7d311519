"""The per-agent schedule: intervals within the budget, urgent agents first, rates learned."""

from __future__ import annotations

import pytest

from exporter.poll.schedule import (
    OVERDUE_FACTOR,
    RATE_WINDOW_S,
    Schedule,
    allocate,
)

POLL = 5.0
LONGEST = 600.0


def polls_per_second(intervals: dict[str, float]) -> float:
    return sum(1 / interval for interval in intervals.values())


def fleet(busy: int, hourly: int, idle: int) -> dict[str, float]:
    rates = {f"busy{i}": 1 / 60 for i in range(busy)}
    rates |= {f"hourly{i}": 1 / 3600 for i in range(hourly)}
    return rates | {f"idle{i}": 0.0 for i in range(idle)}


def test_a_budget_that_covers_every_agent_polls_each_every_poll_interval() -> None:
    rates = fleet(2, 3, 5)
    intervals = allocate(rates, [], capacity=10 / POLL, poll_interval=POLL, max_interval=LONGEST)
    assert intervals == dict.fromkeys(rates, POLL)


def test_a_tight_budget_is_spent_exactly_and_every_interval_stays_in_bounds() -> None:
    rates = fleet(20, 180, 800)
    capacity = 95 / 60
    intervals = allocate(rates, [], capacity=capacity, poll_interval=POLL, max_interval=1800)
    assert polls_per_second(intervals) == pytest.approx(capacity, rel=1e-6)
    assert all(POLL <= interval <= 1800 * (1 + 1e-9) for interval in intervals.values())
    assert intervals["idle0"] > 1000  # the quiet tail is seen rarely, but within bounds
    assert intervals["busy0"] < intervals["hourly0"] < intervals["idle0"]


def test_poll_rates_follow_the_square_root_of_completion_rates() -> None:
    rates = {"a": 1 / 60, "b": 4 / 60}  # b completes four times as often: polled twice as often
    intervals = allocate(rates, [], capacity=0.1, poll_interval=1.0, max_interval=1e6)
    assert intervals["a"] / intervals["b"] == pytest.approx(2.0, rel=1e-3)
    assert polls_per_second(intervals) == pytest.approx(0.1)


def test_a_busy_agent_is_held_at_poll_interval_by_the_lower_clamp() -> None:
    rates = {"busy": 10.0} | {f"idle{i}": 0.0 for i in range(100)}
    intervals = allocate(rates, [], capacity=1.0, poll_interval=POLL, max_interval=LONGEST)
    assert intervals["busy"] == POLL
    assert polls_per_second(intervals) == pytest.approx(1.0)


def test_agents_with_a_run_in_flight_go_first_at_poll_interval() -> None:
    rates = fleet(0, 0, 1000)
    capacity = 100 / 60
    intervals = allocate(
        rates, ["idle3", "idle7"], capacity=capacity, poll_interval=POLL, max_interval=1800
    )
    assert intervals["idle3"] == intervals["idle7"] == POLL
    assert polls_per_second(intervals) == pytest.approx(capacity)


def test_when_max_poll_interval_does_not_fit_the_longest_interval_stretches() -> None:
    rates = fleet(0, 0, 1000)
    capacity = 1.0  # 1000 agents every 600 s would need 1.67 a second
    intervals = allocate(rates, ["idle0"], capacity=capacity, poll_interval=POLL, max_interval=600)
    assert polls_per_second(intervals) == pytest.approx(capacity)
    assert intervals["idle0"] == POLL  # in flight: first
    assert intervals["idle1"] == pytest.approx(999 / (capacity - 1 / POLL))  # > 600


def test_urgent_agents_beyond_the_budget_share_at_most_half_of_it() -> None:
    rates = fleet(0, 0, 100)
    urgent = [f"idle{i}" for i in range(50)]
    intervals = allocate(rates, urgent, capacity=1.0, poll_interval=1.0, max_interval=10)
    assert intervals["idle0"] == pytest.approx(100.0)  # 50 agents on half a poll a second
    assert intervals["idle99"] == pytest.approx(100.0)
    assert polls_per_second(intervals) == pytest.approx(1.0)


def started(agents: int, capacity: float, now: float = 0.0) -> Schedule:
    schedule = Schedule(POLL, LONGEST)
    schedule.sync([f"a{i}" for i in range(agents)], now)
    schedule.replan(capacity)
    return schedule


def test_new_agents_are_due_at_once_and_polled_at_poll_interval() -> None:
    schedule = started(100, capacity=1.0)
    assert set(schedule.intervals().values()) == {100.0}  # all new: they share the budget
    assert schedule.due(0.0) == [f"a{i}" for i in range(5)]  # one round's budget: 5 polls
    assert not schedule.plan.fits
    assert schedule.plan.needed_per_minute == 1200


def test_an_agent_going_quiet_and_waking_up() -> None:
    schedule = started(200, capacity=1.0)
    for agent in list(schedule.paces):
        schedule.polled(agent, 0.0, ok=True)
    schedule.replan(1.0)
    assert schedule.intervals()["a0"] == pytest.approx(200.0)  # all idle: an equal share
    schedule.polled("a0", LONGEST, ok=True, completed=3, in_flight=True)
    schedule.replan(1.0)
    assert schedule.intervals()["a0"] == POLL  # a run in flight: its completion is due
    schedule.polled("a0", LONGEST + POLL, ok=True, completed=1)
    schedule.replan(1.0)
    woken = schedule.intervals()["a0"]
    assert POLL <= woken < schedule.intervals()["a1"]  # it ran: polled more often than the rest
    for step in range(1, 30):  # quiet again for hours: its learned rate decays
        schedule.polled("a0", LONGEST + step * RATE_WINDOW_S, ok=True)
    schedule.replan(1.0)
    assert schedule.intervals()["a0"] > 0.99 * schedule.intervals()["a1"]


def test_a_round_takes_the_urgent_agents_first_then_the_most_overdue() -> None:
    schedule = started(100, capacity=1.0)
    for agent in list(schedule.paces):
        schedule.polled(agent, 0.0, ok=True)
    schedule.polled("a50", 0.0, ok=True, in_flight=True)
    schedule.sync([*schedule.paces, "new"], 0.0)
    schedule.replan(1.0)
    due = schedule.due(POLL)
    assert due[:2] == ["a50", "new"]


def test_new_and_known_agents_take_turns_after_those_in_flight() -> None:
    schedule = started(4, capacity=0.01)
    schedule.polled("a0", 0.0, ok=True)
    schedule.polled("a1", 0.0, ok=True, in_flight=True)
    schedule.polled("a2", 0.0, ok=True)
    schedule.sync([*schedule.paces, "b0", "b1"], 0.0)  # discovered: new like a3
    schedule.replan(0.01)
    assert schedule._waiting(1e6) == ["a1", "a0", "a3", "a2", "b0", "b1"]


def test_a_failed_poll_does_not_count_as_seen_and_is_tried_next_round() -> None:
    schedule = started(3, capacity=10.0)
    schedule.polled("a0", 100.0, ok=False)
    assert schedule.oldest_age(200.0) == 200.0
    assert schedule.paces["a0"].next_at() == 100.0 + POLL
    schedule.polled("a0", 150.0, ok=True)
    schedule.polled("a1", 150.0, ok=True)
    schedule.polled("a2", 150.0, ok=True)
    assert schedule.oldest_age(200.0) == 50.0


def test_gone_agents_are_forgotten() -> None:
    schedule = started(3, capacity=10.0)
    assert schedule.sync(["a0", "a2"], 1.0)
    assert set(schedule.intervals()) == {"a0", "a2"}
    assert not schedule.sync(["a0", "a2"], 2.0)


def test_the_same_polls_give_the_same_plan() -> None:
    def run() -> dict[str, float]:
        schedule = started(50, capacity=0.5)
        for round_ in range(20):
            now = round_ * POLL
            for index, agent in enumerate(schedule.due(now)):
                schedule.polled(agent, now, ok=True, completed=index % 3)
            schedule.replan(0.5)
        return schedule.intervals()

    assert run() == run()


def test_quiet_agents_unseen_for_the_longest_interval_take_every_other_place() -> None:
    schedule = started(100, capacity=0.5)
    for agent in list(schedule.paces):
        schedule.polled(agent, 0.0, ok=True)
    busy = ["a1", "a2", "a3"]
    for agent in busy:
        schedule.polled(agent, 0.0, ok=True, completed=60)  # busy: short intervals
    schedule.replan(0.5)
    longest = schedule.plan.longest_s
    now = OVERDUE_FACTOR * longest + 1.0
    for index, agent in enumerate(busy):  # late for their short intervals, the more so first
        schedule.polled(agent, now - 200.0 + index, ok=True, completed=1)
    for agent in list(schedule.paces)[7:]:
        schedule.polled(agent, now - 1.0, ok=True)
    stale = ["a0", "a4", "a5", "a6"]  # unseen since 0: past the longest interval
    schedule.polled("a0", 0.0, ok=True)
    schedule.polled("a4", 0.25, ok=True)
    schedule.polled("a5", 0.5, ok=True)
    schedule.polled("a6", 0.75, ok=True)
    # The stale and the busy take turns (each group by lateness): half a round each, so a
    # short budget starves neither the quiet tail nor the busy agents.
    assert schedule._waiting(now) == ["a0", "a1", "a4", "a2", "a5", "a3", "a6"]
    schedule.polled("a0", now, ok=True)  # seen: no longer stale
    assert "a0" not in schedule._waiting(now + 100.0)
    assert stale[1:] == [a for a in schedule._waiting(now) if a in stale]


def test_rounds_take_what_the_budget_earned_fractions_included() -> None:
    schedule = started(1000, capacity=1.04)  # 5.2 polls a 5 s round: never a whole number
    now, taken = 0.0, 0
    for _ in range(100):  # every agent stays due: the rounds, not the agents, are the limit
        now += POLL
        taken += len(schedule.due(now))
    assert taken == pytest.approx(1.04 * 100 * POLL, abs=1)  # 520, not 5 a round (500)


def oldest_age_over_rounds(spare: bool, seconds: float = 2000.0) -> float:
    """Poll 100 agents found together on a budget of 0.2 a second; return the oldest poll age."""
    schedule = started(100, capacity=0.2)
    for agent in schedule.paces:  # the first sweep: every agent at once
        schedule.polled(agent, 0.0, ok=True)
    oldest, now = 0.0, 0.0
    while now < seconds:
        now += POLL
        schedule.replan(0.2)
        for agent in schedule.due(now, spare=spare):
            schedule.polled(agent, now, ok=True)
        oldest = max(oldest, schedule.oldest_age(now))
    return oldest


def test_agents_found_together_are_staggered_with_spare_budget() -> None:
    interval = 100 / 0.2  # what the budget gives each of the 100 agents
    staggers = [pace.stagger for pace in started(100, 0.2).paces.values()]
    assert staggers == [0.0] * 100  # nothing before the first poll
    # Without staggering all 100 come due in the same round every interval, a wave served a
    # poll a round: the last waits a whole interval more. Staggered, the early polls spend what
    # the rounds before the wave would leave, and the wave is gone by the second interval.
    assert oldest_age_over_rounds(spare=False) > 1.9 * interval
    assert oldest_age_over_rounds(spare=True) < 1.1 * interval


def test_early_polls_take_only_what_the_due_agents_leave() -> None:
    schedule = started(100, capacity=0.2)
    for agent in schedule.paces:
        schedule.polled(agent, 0.0, ok=True)
    schedule.replan(0.2)
    fractions = sorted(pace.stagger for pace in schedule.paces.values())
    assert fractions[10] < 0.2  # spread over the interval, by id
    assert fractions[90] > 0.8
    schedule.due(POLL)  # the round clock starts
    schedule.paces["a7"].polled_at = -1000.0  # due now, long overdue
    early_ok = [a for a, p in schedule.paces.items() if p.early_at() <= 6 * POLL < p.next_at()]
    assert len(early_ok) >= 2
    taken = schedule.due(6 * POLL)  # 25 s at 0.2 a second: 5 polls earned, 1 kept
    assert taken[0] == "a7"  # the due agent first, then the early ones, soonest due first
    assert taken[1:] == sorted(early_ok, key=lambda a: (schedule.paces[a].next_at(), a))[:4]
    for agent in taken:
        schedule.polled(agent, 6 * POLL, ok=True)
    schedule.paces["a8"].polled_at = -1000.0
    assert schedule.due(8 * POLL, spare=False) == ["a8"]  # a trace backlog: no early polls


def test_an_agent_due_within_half_a_round_is_due_now() -> None:
    schedule = started(100, capacity=0.5)
    for agent in schedule.paces:
        schedule.polled(agent, 0.0, ok=True)
    schedule.replan(0.5)
    interval = schedule.paces["a0"].interval
    schedule.polled("a0", 100.0 - interval + 2.0, ok=True)  # due 2 s after the round at 100
    schedule.polled("a1", 100.0 - interval + 3.0, ok=True)  # due 3 s after it
    waiting = schedule._waiting(100.0)
    assert "a0" in waiting  # polled at 100, not at 105: 2 s early, not 3 s late
    assert "a1" not in waiting  # nearer to the next round
    assert "a0" not in schedule._early(100.0)  # never taken twice in a round


def test_a_short_round_takes_first_the_agent_with_the_most_runs_waiting() -> None:
    schedule = Schedule(POLL, 1e5)
    schedule.sync(["busy", "quiet", "idle"], 0.0)
    schedule.polled("busy", 0.0, ok=True, completed=60)  # about a run a minute
    schedule.polled("quiet", 0.0, ok=True, completed=1)  # about one an hour
    schedule.polled("idle", 0.0, ok=True)
    schedule.replan(0.01)
    busy, quiet, idle = (schedule.paces[agent] for agent in ("busy", "quiet", "idle"))
    assert busy.interval < quiet.interval < idle.interval
    now = 10 * idle.interval
    busy.polled_at = busy.seen_at = now - 1.5 * busy.interval  # half an interval late
    quiet.polled_at = quiet.seen_at = now - 3 * quiet.interval  # two intervals late
    idle.polled_at = now  # not due
    # The quiet one is later for its interval, but fewer runs wait for it: a round with room
    # for one poll delays the fewest runs by taking the busy one.
    assert busy.pending(now) > 3 * quiet.pending(now)
    assert schedule._waiting(now) == ["busy", "quiet"]
    assert schedule.due(now, spare=False) == ["busy"]


def intervals_while_busy_agents_come_and_go(averaged: bool) -> list[float]:
    """Return an hourly agent's intervals while 4 of 20 busy agents are in flight every other
    round (1,000 agents: 20 at a run a minute, 180 at one an hour, 800 idle; 70 polls a minute,
    with traces on what the fleet bench leaves for list polls)."""
    schedule = Schedule(15.0, 1800.0)
    ids = [f"a{index}" for index in range(1000)]
    schedule.sync(ids, 0.0)
    for index, agent in enumerate(ids):
        schedule.polled(agent, 0.0, ok=True, completed=60 if index < 20 else int(index < 200))
    seen = []
    for round_ in range(60):
        for index, agent in enumerate(ids[:20]):
            schedule.paces[agent].in_flight = round_ % 2 == 1 and (round_ + index) % 5 == 0
        if averaged:
            schedule.replan(70 / 60)
        else:  # the agents in flight at this round, as the allocation used to count them
            rates = {agent: pace.rate for agent, pace in schedule.paces.items()}
            urgent = [agent for agent, pace in schedule.paces.items() if pace.in_flight]
            for agent, interval in allocate(
                rates, urgent, capacity=70 / 60, poll_interval=15.0, max_interval=1800.0
            ).items():
                schedule.paces[agent].interval = interval
        if round_ >= 40:
            seen.append(schedule.paces["a100"].interval)
    return seen


def test_the_others_intervals_hold_while_busy_agents_go_in_and_out_of_flight() -> None:
    swings = {}
    for averaged in (False, True):
        seen = intervals_while_busy_agents_come_and_go(averaged)
        swings[averaged] = max(seen) / min(seen)
    assert swings[False] > 1.3  # every other round the others' share is cut, then restored
    assert swings[True] < 1.15  # the number in flight averaged: within a few percent


def test_the_others_share_follows_agents_in_flight_for_long() -> None:
    schedule = started(100, capacity=1.0)
    for agent in schedule.paces:
        schedule.polled(agent, 0.0, ok=True)
    for agent in ("a2", "a3"):
        schedule.polled(agent, 0.0, ok=True, in_flight=True)
    rates = {agent: pace.rate for agent, pace in schedule.paces.items()}
    at_once = allocate(rates, ["a2", "a3"], capacity=1.0, poll_interval=POLL, max_interval=LONGEST)
    schedule.replan(1.0)
    assert schedule.intervals()["a2"] == POLL  # first, at once
    assert schedule.intervals()["a1"] < 0.9 * at_once["a1"]  # the others' share not cut yet
    for _ in range(1000):
        schedule.replan(1.0)
    assert schedule.intervals()["a1"] == pytest.approx(at_once["a1"], rel=0.01)
