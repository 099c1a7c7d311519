"""Tracker: each run counted exactly once, when first seen terminal, within the lookback window."""

from __future__ import annotations

from pathlib import Path

from exporter.model import Status
from exporter.poll.records import StateBatch
from exporter.poll.state import StateStore
from exporter.poll.tracker import Outcome, Tracker
from tests.unit.runs import T0, make_run

LOOKBACK = 3600.0


def tracker(traces: bool = False) -> Tracker:
    return Tracker(lookback_s=LOOKBACK, traces_enabled=traces)


def test_terminal_run_counts_once_even_when_seen_on_two_pages() -> None:
    t = tracker()
    run = make_run("r1")
    assert t.observe("s", run, T0 + 10) is Outcome.NEW_TERMINAL
    assert t.observe("s", run, T0 + 10) is Outcome.KNOWN  # same run again on the next page
    assert t.observe("s", run, T0 + 30) is Outcome.KNOWN  # and in a later poll


def test_same_run_id_in_two_sources_is_two_runs() -> None:
    t = tracker()
    assert t.observe("a", make_run("r1"), T0) is Outcome.NEW_TERMINAL
    assert t.observe("b", make_run("r1"), T0) is Outcome.NEW_TERMINAL


def test_run_seen_in_flight_counts_when_it_finishes_later() -> None:
    t = tracker()
    assert t.observe("s", make_run("r1", status=Status.QUEUED), T0) is Outcome.IN_FLIGHT
    assert t.observe("s", make_run("r1", status=Status.RUNNING), T0 + 5) is Outcome.IN_FLIGHT
    assert t.in_flight_counts() == {("s", "ag1", Status.RUNNING): 1}
    assert t.observe("s", make_run("r1"), T0 + 20) is Outcome.NEW_TERMINAL
    assert t.in_flight_counts() == {}
    assert t.observe("s", make_run("r1"), T0 + 40) is Outcome.KNOWN


def test_window_reaches_back_to_the_oldest_run_in_flight() -> None:
    t = tracker()
    now = T0 + 100
    assert t.window("s", "ag1", now) == now - LOOKBACK  # first poll: the whole lookback
    t.observe("s", make_run("old", created=T0, status=Status.RUNNING), now)
    t.observe("s", make_run("new", created=T0 + 90), now)
    t.finish_agent("s", "ag1", T0 + 90)
    # The running run is older than the high-water mark: paging must reach it (page 3, say).
    assert t.window("s", "ag1", now + 15) == T0
    t.observe("s", make_run("old", created=T0), now + 15)
    assert t.window("s", "ag1", now + 15) == T0 + 90


def test_window_never_reaches_before_lookback() -> None:
    t = tracker()
    t.finish_agent("s", "ag1", T0)
    later = T0 + 2 * LOOKBACK
    assert t.window("s", "ag1", later) == later - LOOKBACK


def test_high_water_mark_only_moves_forward() -> None:
    t = tracker()
    t.finish_agent("s", "ag1", T0 + 50)
    t.finish_agent("s", "ag1", T0 + 10)
    assert t.window("s", "ag1", T0 + 60) == T0 + 50


def test_run_created_before_lookback_is_outside() -> None:
    t = tracker()
    run = make_run("r1", created=T0)
    assert t.observe("s", run, T0 + LOOKBACK + 1) is Outcome.OUTSIDE
    assert len(t) == 0


def test_run_in_flight_longer_than_lookback_is_given_up() -> None:
    given_up = []
    t = Tracker(lookback_s=LOOKBACK, traces_enabled=False, on_given_up=given_up.append)
    t.observe("s", make_run("r1", status=Status.RUNNING), T0)
    assert t.expire(T0 + LOOKBACK / 2) == []
    expired = t.expire(T0 + LOOKBACK + 1)
    assert [r.run_id for r in expired] == ["r1"]
    assert [r.run_id for r in given_up] == ["r1"]
    assert t.in_flight_counts() == {}
    # Seen finished afterwards, it is outside the window and never counted.
    assert t.observe("s", make_run("r1"), T0 + LOOKBACK + 2) is Outcome.OUTSIDE


def test_memory_is_bounded_by_lookback() -> None:
    t = tracker()
    for i in range(1000):
        now = T0 + i * 10.0
        t.observe("s", make_run(f"r{i}", created=now), now)
        t.expire(now)
    # 10 s apart, one hour of lookback plus the pruning margin: ~390 runs, not 1000.
    assert len(t) <= (LOOKBACK + 300) / 10 + 1


def test_pending_traces_put_failures_first() -> None:
    t = tracker(traces=True)
    t.observe("s", make_run("ok1", created=T0), T0)
    t.observe("s", make_run("bad", created=T0 - 5, status=Status.FAILED), T0)
    t.observe("s", make_run("ok2", created=T0 + 1), T0)
    assert [r.run_id for r in t.pending_traces("s")] == ["bad", "ok2", "ok1"]
    record = t.pending_traces("s")[0]
    t.trace_done(record)
    assert [r.run_id for r in t.pending_traces("s")] == ["ok2", "ok1"]


def test_restart_from_state_file_neither_recounts_nor_loses(tmp_path: Path) -> None:
    path = str(tmp_path / "state.db")
    first = tracker(traces=True)
    first.observe("s", make_run("done"), T0)
    first.observe("s", make_run("flying", created=T0 + 1, status=Status.RUNNING), T0 + 2)
    first.finish_agent("s", "ag1", T0 + 1)
    store = StateStore(path)
    batch = StateBatch()
    first.drain(batch)
    store.commit(batch)
    store.close()

    second = tracker(traces=True)
    store = StateStore(path)
    second.restore(store.load(second.prune_before(T0 + 60)))
    assert second.observe("s", make_run("done"), T0 + 60) is Outcome.KNOWN
    assert second.observe("s", make_run("flying", created=T0 + 1), T0 + 60) is Outcome.NEW_TERMINAL
    assert second.window("s", "ag1", T0 + 60) == T0 + 1
    # The trace of "done" was never exported: it is still pending, with its run data.
    pending = {r.run_id: r for r in second.pending_traces("s")}
    assert pending["done"].run == make_run("done")
    store.close()


def test_drain_hands_each_change_over_once() -> None:
    t = tracker()
    t.observe("s", make_run("r1"), T0)
    t.finish_agent("s", "ag1", T0)
    batch = StateBatch()
    t.drain(batch)
    assert [r.run_id for r in batch.runs] == ["r1"]
    assert batch.cursors == {("s", "ag1"): T0}
    again = StateBatch()
    t.drain(again)
    assert not again


def test_a_run_stamped_in_the_future_moves_the_mark_no_further_than_now() -> None:
    t = tracker()
    now = T0 + 100
    t.observe("s", make_run("skewed", created=now + 86400), now)  # upstream clock a day ahead
    t.finish_agent("s", "ag1", now + 86400, now)
    assert t.window("s", "ag1", now + 15) == now  # the next poll still reads everything newer


def test_a_run_twice_on_one_page_counts_once() -> None:
    t = tracker(traces=True)
    page = [make_run("r1"), make_run("r2"), make_run("r1")]
    outcomes = [t.observe("s", run, T0 + 10) for run in page]
    assert outcomes.count(Outcome.NEW_TERMINAL) == 2
    assert len(t.pending_traces("s")) == 2


def test_a_sent_trace_leaves_the_backlog_but_is_persisted_done_only_when_settled() -> None:
    t = tracker(traces=True)
    t.observe("s", make_run("r1"), T0 + 10)
    t.drain(StateBatch())
    (record,) = t.pending_traces("s")
    t.trace_sent(record)
    assert t.trace_backlog("s") == 0
    unsettled = StateBatch()
    t.drain(unsettled)
    assert unsettled.runs == []  # a crash now leaves it pending on disk: it is sent again
    t.trace_done(record)
    settled = StateBatch()
    t.drain(settled)
    assert [(r.run_id, r.trace_pending) for r in settled.runs] == [("r1", False)]


def test_a_run_whose_outcome_is_in_its_detail_waits_then_counts_once() -> None:
    t = tracker(traces=True)
    listed = make_run("r1")
    assert t.observe("s", listed, T0, outcome_in_detail=True) is Outcome.AWAITING_DETAIL
    assert t.observe("s", listed, T0 + 5, outcome_in_detail=True) is Outcome.AWAITING_DETAIL
    (record,) = t.awaiting_outcome("s")
    assert t.pending_traces("s") == []
    assert t.in_flight_counts() == {}
    failed = make_run("r1", status=Status.FAILED, raw_status="completed", tool_steps=())
    assert t.count_from_detail(record, failed)
    assert not t.count_from_detail(record, failed)  # counted once
    assert t.awaiting_outcome("s") == []
    assert t.observe("s", listed, T0 + 10, outcome_in_detail=True) is Outcome.KNOWN
    (pending,) = t.pending_traces("s")  # its trace reuses the detail just read
    assert (pending.status, pending.detail_read, pending.run) == (Status.FAILED, True, failed)


def test_a_waiting_run_does_not_hold_paging_back() -> None:
    t = tracker()
    now = T0 + 100
    t.observe("s", make_run("r1", status=Status.RUNNING), now, outcome_in_detail=True)
    t.observe("s", make_run("r1"), now + 5, outcome_in_detail=True)  # ended: waits for detail
    t.finish_agent("s", "ag1", T0 + 90)
    assert t.window("s", "ag1", now + 5) == T0 + 90


def test_a_waiting_run_survives_a_restart(tmp_path: Path) -> None:
    store = StateStore(str(tmp_path / "state.db"))
    t = tracker()
    t.observe("s", make_run("r1"), T0, outcome_in_detail=True)
    batch = StateBatch()
    t.drain(batch)
    store.commit(batch)
    again = tracker()
    again.restore(store.load(0))
    (record,) = again.awaiting_outcome("s")
    assert record.run is not None
    assert record.run.id == "r1"
    assert not record.counted
    assert again.in_flight_counts() == {}
    store.close()


MARGIN = 300.0  # the tracker's default prune margin


def test_a_run_waiting_for_its_detail_is_kept_when_the_window_moves_past_it() -> None:
    t = tracker(traces=True)
    t.observe("s", make_run("r1"), T0, outcome_in_detail=True)
    t.observe("s", make_run("r2"), T0, outcome_in_detail=False)  # counted: forgotten as usual
    later = T0 + LOOKBACK + MARGIN + 60  # past the window and the prune margin
    assert t.expire(later) == []
    (record,) = t.awaiting_outcome("s")
    assert t.overdue_due("s", later) == []  # within another lookback: it still waits
    assert t.observe("s", make_run("r1"), later, outcome_in_detail=True) is Outcome.OUTSIDE
    failed = make_run("r1", status=Status.FAILED, raw_status="completed", tool_steps=())
    assert t.count_from_detail(record, failed)  # the detail comes at last: counted, failed
    (pending,) = t.pending_traces("s")
    t.trace_done(pending)
    t.expire(later + 5)
    assert len(t) == 0  # counted and traced: now it goes


def test_a_run_waits_for_its_detail_one_more_lookback_at_most() -> None:
    t = tracker()
    t.observe("s", make_run("r1"), T0, outcome_in_detail=True)
    t.expire(T0 + LOOKBACK + MARGIN + 1)
    last_chance = T0 + 2 * LOOKBACK + MARGIN
    assert t.overdue_due("s", last_chance) == []
    (due,) = t.overdue_due("s", last_chance + 1)
    assert due.run_id == "r1"  # the outcome phase counts it as listed


def test_runs_past_the_overdue_cap_are_handed_over_oldest_first() -> None:
    t = Tracker(lookback_s=LOOKBACK, traces_enabled=False, max_overdue=2)
    for index in range(4):
        t.observe("s", make_run(f"r{index}", created=T0 + index), T0 + 10, outcome_in_detail=True)
    now = T0 + LOOKBACK + MARGIN + 10
    t.expire(now)
    assert [r.run_id for r in t.overdue_due("s", now)] == ["r0", "r1"]
    assert len(t.awaiting_outcome("s")) == 4  # handed over, still waiting until counted


def test_an_overdue_run_of_a_source_no_one_polls_is_forgotten_at_last() -> None:
    t = tracker()
    t.observe("gone", make_run("r1"), T0, outcome_in_detail=True)
    t.expire(T0 + LOOKBACK + MARGIN + 1)
    assert len(t) == 1
    t.expire(T0 + 2 * LOOKBACK + 3 * MARGIN)  # its source never counted it: no leak
    assert len(t) == 0


def test_an_overdue_run_survives_the_state_prune_and_a_restart(tmp_path: Path) -> None:
    store = StateStore(str(tmp_path / "state.db"))
    t = tracker()
    t.observe("s", make_run("r1"), T0, outcome_in_detail=True)
    t.observe("s", make_run("r2"), T0)
    now = T0 + LOOKBACK + MARGIN + 60
    t.expire(now)
    batch = StateBatch()
    t.drain(batch)
    store.commit(batch, prune_before=t.prune_before(now), awaiting_from=t.overdue_kept_from(now))
    again = tracker()
    again.restore(store.load(again.prune_before(now), awaiting_from=again.overdue_kept_from(now)))
    assert [r.run_id for r in again.awaiting_outcome("s")] == ["r1"]
    assert len(again) == 1  # the counted run r2 was pruned as usual
    later = T0 + 2 * LOOKBACK + 3 * MARGIN
    store.commit(
        StateBatch(), prune_before=t.prune_before(later), awaiting_from=t.overdue_kept_from(later)
    )
    assert store.load(0).runs == []  # past another lookback the state lets it go too
    store.close()
