"""The embedded SQLite state store: which runs are known, how far each agent was read, and the
cumulative run metrics, all written in one transaction per commit.

A corrupt or unreadable state file (bad pages, tables of another shape) is moved aside
(`<path>.corrupt-<epoch>`) and the exporter starts fresh; a single bad row is dropped and counted
(`dropped`), the rest is kept. A path that cannot be opened at all falls back to memory. All are
logged loudly.
A commit that fails (read-only or full disk) keeps its changes and writes them with the next
commit that succeeds; meanwhile `problem` says what is wrong, for /readyz.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from exporter.errors import StateError
from exporter.poll import state_checks as checks
from exporter.poll.records import Snapshot, StateBatch, record_of, rows_of

log = logging.getLogger(__name__)
T = TypeVar("T")
Row = checks.Row

SCHEMA_VERSION = "1"
# The runs table holds the lookback window (and the runs still waiting for their detail, one more
# lookback at most); these keep the memory and disk around it bounded.
CACHE_KIB = 1024  # page cache of the connection (SQLite's default: 2000 KiB)
WAL_CHECKPOINT_PAGES = 256  # move the WAL into the file every ~1 MiB of commits (default: 1000)
WAL_LIMIT_BYTES = 1 << 20  # after a checkpoint, truncate the WAL to 1 MiB (default: never)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    source TEXT NOT NULL, run_id TEXT NOT NULL, agent_id TEXT NOT NULL,
    created_at REAL NOT NULL, status TEXT NOT NULL, counted INTEGER NOT NULL,
    trace_pending INTEGER NOT NULL, attempts INTEGER NOT NULL, payload TEXT,
    PRIMARY KEY (source, run_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS runs_created ON runs (created_at);
CREATE TABLE IF NOT EXISTS cursors (
    source TEXT NOT NULL, agent_id TEXT NOT NULL, high_water REAL NOT NULL,
    PRIMARY KEY (source, agent_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS series (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
"""
_SHAPE = checks.shape_of(_SCHEMA)
# A run seen ended that waits for the detail telling its outcome (see RunRecord and the tracker).
_AWAITING = "counted = 0 AND trace_pending = 1"
_LOAD_RUNS = (
    "SELECT source, run_id, agent_id, created_at, status, counted, trace_pending, attempts,"
    f" payload FROM runs WHERE created_at >= ? OR ({_AWAITING} AND created_at >= ?)"
)
_PRUNE_RUNS = f"DELETE FROM runs WHERE created_at < ? AND NOT ({_AWAITING} AND created_at >= ?)"


class StateStore:
    """Runs, read positions and metric series in one SQLite file (or in memory)."""

    def __init__(self, path: str, *, clock: Any = time.time) -> None:
        self.path = path
        self.resets = 0
        self.dropped = 0  # bad rows left out by `load`
        self.persistent = path != ":memory:"
        self._clock = clock
        self.problem: str | None = None
        self._unsaved: StateBatch | None = None
        self._db = self._open()

    def _open(self) -> sqlite3.Connection:
        if not self.persistent:
            return self._connect(":memory:")
        try:
            return self._connect(self.path)
        except sqlite3.DatabaseError as error:
            exc: Exception = error
            if _corrupt(self.path, error):
                try:
                    self._move_aside(error)
                    return self._connect(self.path)
                except (sqlite3.DatabaseError, OSError) as again:  # a read-only directory
                    exc = again
            log.error(
                "cannot open state file %s (%s); keeping state in memory: runs will be recounted "
                "after a restart. Fix the path or its permissions.",
                self.path,
                exc,
            )
            self.persistent = False
            self.problem = f"state kept in memory: cannot open {self.path}"
            return self._read_only_copy()

    def _read_only_copy(self) -> sqlite3.Connection:
        """Return memory state holding the file's content read read-only (a read-only disk).

        So counting goes on from what was committed instead of recounting the lookback; empty
        when the file cannot be read either.
        """
        memory = self._connect(":memory:")
        if not os.path.isfile(self.path):
            return memory
        uri = Path(os.path.abspath(self.path)).as_uri()
        for mode in ("mode=ro", "immutable=1"):  # immutable: no -shm can be made next to it
            try:
                source = sqlite3.connect(f"{uri}?{mode}", uri=True)
                try:
                    checks.check_read_only(source, _SHAPE, SCHEMA_VERSION)
                    source.backup(memory)
                finally:
                    source.close()
            except sqlite3.DatabaseError as exc:
                log.debug("cannot read state file %s with %s: %s", self.path, mode, exc)
                continue
            log.warning("read state file %s read-only: counts go on from it", self.path)
            return memory
        return memory

    def _connect(self, path: str) -> sqlite3.Connection:
        if path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            db.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
            db.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")
            result = db.execute("PRAGMA quick_check").fetchone()
            if result is None or result[0] != "ok":
                raise sqlite3.DatabaseError(f"integrity check failed: {result}")
            checks.check_shape(db, _SHAPE)
            db.executescript(_SCHEMA)
            self._check_version(db)
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    def _check_version(self, db: sqlite3.Connection) -> None:
        row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is None:
            db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
        elif row[0] != SCHEMA_VERSION:
            raise sqlite3.DatabaseError(f"unknown schema version {row[0]!r}")

    def _move_aside(self, exc: Exception) -> None:
        target = f"{self.path}.corrupt-{int(self._clock())}"
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(self.path + suffix):
                os.replace(self.path + suffix, target + suffix)
        self.resets += 1
        log.error(
            "state file %s is unreadable (%s): moved it to %s and starting with fresh state; "
            "runs within lookback will be counted again",
            self.path,
            exc,
            target,
        )

    def load(self, min_created_at: float, *, awaiting_from: float | None = None) -> Snapshot:
        """Load the runs created at or after `min_created_at` (those waiting for their detail
        from `awaiting_from`, when earlier), all cursors and all series.

        A row that cannot be decoded is left out and counted in `dropped`; a file that cannot be
        read is moved aside and the snapshot is empty.
        """
        try:
            return self._load(min_created_at, awaiting_from)
        except sqlite3.DatabaseError as exc:
            if not self.persistent or not _corrupt(self.path, exc):
                raise
            self._db.close()
            self._move_aside(exc)
            self._db = self._open()
            return Snapshot(runs=[], cursors={}, series={})

    def _load(self, min_created_at: float, awaiting_from: float | None) -> Snapshot:
        rows = self._db.execute(
            _LOAD_RUNS,
            (min_created_at, min_created_at if awaiting_from is None else awaiting_from),
        )
        runs = list(self._kept(rows, record_of))
        cursors = dict(self._kept(self._db.execute("SELECT * FROM cursors"), checks.cursor))
        series = dict(self._kept(self._db.execute("SELECT key, value FROM series"), checks.series))
        if self.dropped:
            log.error(
                "state file %s: left out %d rows that cannot be read; the runs they held may be "
                "counted again",
                self.path,
                self.dropped,
            )
        return Snapshot(runs=runs, cursors=cursors, series=series)

    def _kept(
        self, rows: Iterator[tuple[Any, ...]], decode: Callable[[tuple[Any, ...]], T]
    ) -> Iterator[T]:
        """Yield each row decoded, leaving out (and counting) those `decode` refuses."""
        for row in rows:
            try:
                yield decode(row)
            except checks.ROW_ERRORS as exc:
                self.dropped += 1
                log.warning("state file %s: dropping a bad row (%s)", self.path, str(exc)[:200])

    def commit(
        self,
        batch: StateBatch,
        *,
        prune_before: float | None = None,
        awaiting_from: float | None = None,
    ) -> None:
        """Write `batch` (and drop runs created before `prune_before`, those waiting for their
        detail only before `awaiting_from` when earlier) in one transaction.

        On failure the batch is kept and written, before newer changes, by the next commit.
        """
        if self._unsaved is not None:
            batch = self._unsaved.merged(batch)
        prune = None
        if prune_before is not None:
            prune = (prune_before, prune_before if awaiting_from is None else awaiting_from)
        try:
            self._write(batch, prune)
        except sqlite3.Error as exc:
            self._unsaved = batch
            if self.persistent:
                self.problem = f"cannot write state file {self.path}: {exc}"
            raise StateError(f"cannot write state file {self.path}: {exc}") from exc
        self._unsaved = None
        if self.persistent:
            self.problem = None

    def _write(self, batch: StateBatch, prune: tuple[float, float] | None) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            bare, full = rows_of(batch)
            db.executemany("INSERT OR REPLACE INTO runs VALUES (?,?,?,?,?,?,?,?,NULL)", bare)
            db.executemany("INSERT OR REPLACE INTO runs VALUES (?,?,?,?,?,?,?,?,?)", full)
            db.executemany("DELETE FROM runs WHERE source=? AND run_id=?", batch.deleted)
            db.executemany(
                "INSERT OR REPLACE INTO cursors VALUES (?,?,?)",
                [(s, a, hw) for (s, a), hw in batch.cursors.items()],
            )
            db.executemany("INSERT OR REPLACE INTO series VALUES (?,?)", batch.series.items())
            if prune is not None:
                db.execute(_PRUNE_RUNS, prune)
            db.execute("COMMIT")
        except BaseException:
            _roll_back(db)
            raise

    def close(self) -> None:
        """Close the database (idempotent)."""
        self._db.close()


def _roll_back(db: sqlite3.Connection) -> None:
    """Undo an open transaction, keeping the error that ended it as the one reported.

    SQLite rolls back by itself on some errors (a full disk): a second ROLLBACK would then fail
    with "cannot rollback - no transaction is active" and hide the real cause.
    """
    if db.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")


def _corrupt(path: str, exc: sqlite3.DatabaseError) -> bool:
    """Say whether `exc` means the file's content is bad (not that it cannot be opened)."""
    return os.path.isfile(path) and not isinstance(exc, sqlite3.OperationalError)
