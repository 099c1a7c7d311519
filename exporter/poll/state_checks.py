"""What a state file must pass to be read: its tables' shape, its integrity, and each row's types.

A file that fails the shape or integrity check raises `sqlite3.DatabaseError` (not an
`OperationalError`), so the store moves it aside as corrupt; a row that fails raises one of
`ROW_ERRORS`, so the store leaves that row out and counts it.
"""

from __future__ import annotations

import math
import sqlite3
from typing import Any

# What can be wrong with one row of a state file that another version or a hand wrote.
ROW_ERRORS = (ValueError, TypeError, KeyError, AttributeError, RecursionError)
Row = tuple[Any, ...]


def shape_of(schema: str) -> dict[str, list[str]]:
    """Return the column names of every table `schema` creates."""
    db = sqlite3.connect(":memory:")
    try:
        db.executescript(schema)
        query = "SELECT name FROM sqlite_master WHERE type='table'"
        tables = [row[0] for row in db.execute(query)]
        return {table: _columns(db, table) for table in tables}
    finally:
        db.close()


def check_shape(db: sqlite3.Connection, shape: dict[str, list[str]]) -> None:
    """Raise DatabaseError if a table of `shape` exists in `db` with other columns."""
    for table, columns in shape.items():
        found = _columns(db, table)
        if found and found != columns:
            raise sqlite3.DatabaseError(f"table {table} has columns {found}, expected {columns}")


def check_read_only(db: sqlite3.Connection, shape: dict[str, list[str]], version: str) -> None:
    """Raise DatabaseError unless `db` is a sound state file of `version` (reads only)."""
    result = db.execute("PRAGMA quick_check").fetchone()
    if result is None or result[0] != "ok":
        raise sqlite3.DatabaseError(f"integrity check failed: {result}")
    check_shape(db, shape)
    row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    if row is None or row[0] != version:
        raise sqlite3.DatabaseError("not a state file of this version")


def cursor(row: Row) -> tuple[tuple[str, str], float]:
    """Return ((source, agent), high water) from a `cursors` row."""
    source, agent, high_water = row
    return (text(source), text(agent)), finite(high_water)


def series(row: Row) -> tuple[str, str]:
    """Return (key, value) from a `series` row."""
    key, value = row
    return text(key), text(value)


def text(value: Any) -> str:
    """Return `value` if it is a string, else raise TypeError."""
    if not isinstance(value, str):
        raise TypeError(f"expected text, found {type(value).__name__}")
    return value


def finite(value: Any) -> float:
    """Return `value` as a finite float, else raise ValueError (or TypeError)."""
    if isinstance(value, str | bytes) or not math.isfinite(float(value)):
        raise ValueError(f"expected a finite number, found {str(value)[:40]!r}")
    return float(value)


def _columns(db: sqlite3.Connection, table: str) -> list[str]:
    return [row[0] for row in db.execute("SELECT name FROM pragma_table_info(?)", (table,))]
