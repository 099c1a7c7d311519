"""State store: one transaction per commit, corrupt files moved aside, memory as a last resort."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from exporter.errors import StateError
from exporter.model import Status, ToolStep
from exporter.poll.records import RunRecord, StateBatch, decode_run, encode_run
from exporter.poll.state import WAL_LIMIT_BYTES, StateStore
from tests.unit.runs import T0, make_run


def record(run_id: str, created: float = T0, **kw: object) -> RunRecord:
    return RunRecord("s", run_id, "ag1", created, Status.COMPLETED, True, **kw)  # type: ignore[arg-type]


def test_run_round_trips_through_json() -> None:
    run = make_run("r1", tool_steps=(ToolStep("lookup", {"id": 1}, {"error": "x"}, error="x"),))
    assert decode_run(encode_run(run)) == run


def test_commit_and_load(tmp_path: Path) -> None:
    store = StateStore(str(tmp_path / "s.db"))
    run = make_run("r2")
    batch = StateBatch(
        runs=[record("r1"), record("r2", trace_pending=True, run=run)],
        cursors={("s", "ag1"): T0 + 5},
        series={"k": "v"},
    )
    store.commit(batch)
    store.close()
    snapshot = StateStore(str(tmp_path / "s.db")).load(T0 - 1)
    assert {r.run_id: r.run for r in snapshot.runs} == {"r1": None, "r2": run}
    assert snapshot.cursors == {("s", "ag1"): T0 + 5}
    assert snapshot.series == {"k": "v"}


def test_deletes_and_pruning(tmp_path: Path) -> None:
    store = StateStore(str(tmp_path / "s.db"))
    store.commit(StateBatch(runs=[record("old", T0 - 100), record("gone"), record("kept")]))
    store.commit(StateBatch(deleted=[("s", "gone")]), prune_before=T0 - 50)
    assert [r.run_id for r in store.load(0).runs] == ["kept"]


def test_corrupt_file_is_moved_aside_and_state_starts_fresh(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "s.db"
    path.write_bytes(b"this is not a sqlite database at all" * 100)
    with caplog.at_level(logging.ERROR):
        store = StateStore(str(path), clock=lambda: 1234)
    assert store.resets == 1
    assert store.persistent
    assert (tmp_path / "s.db.corrupt-1234").read_bytes().startswith(b"this is not")
    assert "moved it to" in caplog.text
    store.commit(StateBatch(runs=[record("r1")]))
    assert [r.run_id for r in store.load(0).runs] == ["r1"]


def test_path_that_is_a_directory_falls_back_to_memory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        store = StateStore(str(tmp_path))
    assert not store.persistent
    assert "keeping state in memory" in caplog.text
    store.commit(StateBatch(runs=[record("r1")]))
    assert len(store.load(0).runs) == 1


def test_failed_commit_raises_state_error_and_rolls_back(tmp_path: Path) -> None:
    store = StateStore(str(tmp_path / "s.db"))
    store.commit(StateBatch(runs=[record("r1")]))
    store.close()
    with pytest.raises(StateError, match="cannot write state file"):
        store.commit(StateBatch(runs=[record("r2")]))


def test_a_full_disk_keeps_changes_until_a_commit_succeeds(tmp_path: Path) -> None:
    path = str(tmp_path / "s.db")
    store = StateStore(path)
    store.commit(StateBatch(runs=[record("r0")]))
    pages = store._db.execute("PRAGMA page_count").fetchone()[0]
    store._db.execute(f"PRAGMA max_page_count={pages}")  # SQLite's own "disk is full"
    many = StateBatch(runs=[record(f"run-{i:05d}-" + "x" * 200) for i in range(500)])
    with pytest.raises(StateError, match="full"):
        store.commit(many)
    assert store.problem is not None
    assert "full" in store.problem
    store._db.execute("PRAGMA max_page_count=1073741823")  # space freed
    store.commit(StateBatch(runs=[record("later")]))
    assert store.problem is None
    store.close()
    loaded = {r.run_id for r in StateStore(path).load(0).runs}
    assert len(loaded) == 502
    assert "later" in loaded
    assert "r0" in loaded


def test_a_retried_batch_keeps_the_latest_write_of_each_run(tmp_path: Path) -> None:
    # A failed commit is merged with the next batch; a run written in both (first with its
    # trace payload, then done without one) must end as the later write, not the earlier.
    store = StateStore(str(tmp_path / "s.db"))
    store._db.close()
    store._db = StateStore(":memory:")._db
    store._db.execute("DROP TABLE runs")  # every write fails until the table is back
    pending = record("r1", trace_pending=True, run=make_run("r1"))
    with pytest.raises(StateError):
        store.commit(
            StateBatch(runs=[pending, record("r2", trace_pending=True, run=make_run("r2"))])
        )
    store._db.close()
    store._db = StateStore(str(tmp_path / "s.db"))._db
    store.commit(StateBatch(runs=[record("r1")]))
    loaded = {r.run_id: (r.trace_pending, r.run) for r in store.load(0).runs}
    assert loaded == {"r1": (False, None), "r2": (True, make_run("r2"))}


def test_a_state_file_that_cannot_be_opened_is_a_standing_problem(tmp_path: Path) -> None:
    store = StateStore(str(tmp_path))
    store.commit(StateBatch(runs=[record("r1")]))
    assert store.problem is not None
    assert "memory" in store.problem


def test_wal_stays_bounded_across_many_commits(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = StateStore(str(path))
    for n in range(40):  # ~10 MiB of commits: SQLite's defaults would leave a ~4 MiB WAL
        runs = [record(f"r{n}-{i}", T0 + n, attempts=i) for i in range(500)]
        store.commit(StateBatch(runs=runs), prune_before=T0 + n - 2)
    wal = tmp_path / "s.db-wal"
    assert wal.stat().st_size <= WAL_LIMIT_BYTES + 512 * 1024  # the limit plus one commit
    assert len(store.load(0).runs) == 1500


class ReadOnlyDisk(StateStore):
    """A state store whose file cannot be opened for writing (root ignores a read-only dir)."""

    def _connect(self, path: str) -> sqlite3.Connection:
        if path != ":memory:":
            raise sqlite3.OperationalError("attempt to write a readonly database")
        return super()._connect(path)


def test_a_state_file_on_a_read_only_disk_is_read_not_recounted(tmp_path: Path) -> None:
    path = str(tmp_path / "s.db")
    store = StateStore(path)
    store.commit(StateBatch(runs=[record("r1")], cursors={("s", "ag1"): T0 + 5}, series={"k": "v"}))
    store.close()
    read_only = ReadOnlyDisk(path)
    assert not read_only.persistent
    assert read_only.problem is not None
    snapshot = read_only.load(T0 - 1)
    assert [r.run_id for r in snapshot.runs] == ["r1"]  # was empty: the lookback recounted
    assert snapshot.cursors == {("s", "ag1"): T0 + 5}
    assert snapshot.series == {"k": "v"}
    read_only.commit(StateBatch(runs=[record("r2")]))  # goes on in memory
    assert {r.run_id for r in read_only.load(0).runs} == {"r1", "r2"}


def test_a_full_disk_is_reported_as_a_full_disk(tmp_path: Path) -> None:
    store = StateStore(str(tmp_path / "s.db"))
    pages = store._db.execute("PRAGMA page_count").fetchone()[0]
    store._db.execute(f"PRAGMA max_page_count={pages}")  # no room for one more page
    batch = StateBatch(runs=[record(f"run-{i:05d}" * 10) for i in range(2000)])
    with pytest.raises(StateError, match="database or disk is full"):
        store.commit(batch)
    assert store.problem is not None
    assert "full" in store.problem  # was "cannot rollback - no transaction is active"
