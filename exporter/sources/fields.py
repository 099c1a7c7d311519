"""Tolerant readers for payload fields: each returns a typed value or raises `ParseError`.

Only what dedupe needs is required (an id, a status); an optional field that is malformed is read
through `Drift`, which drops it alone and names it, so the run is kept and
`agent_runs_exporter_fields_invalid_total{source,field}` counts the field. A run without a time to
order it by gets a stand-in from `order_time` (its end, else when it was first seen: `FirstSeen`).
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from exporter.errors import InvalidIdError, ParseError
from exporter.model import Status

T = TypeVar("T")

_MAX_INT = 2**63 - 1  # OTLP attributes are int64
_MAX_EPOCH = 2.0**33  # year 2242: nanoseconds still fit in OTLP's uint64, with room to spare
# Tokens, milliseconds or dollars of one run: above this a value is refused (as malformed), so one
# absurd number (a cost of 1e300) never makes every later sum blind. Sums stay exact to a cent.
MAX_QUANTITY = 1e12
MAX_FIRST_SEEN = 10_000  # runs without a time of their own remembered per source
# What no id may hold to be one URL path segment: httpx refuses control characters, and '/', '?',
# '#' or '\\' would quietly make it another path (a '#' cuts the URL short).
_NOT_IN_ID = re.compile(r"[\x00-\x1f\x7f/?#\\]")


def printable(text: str) -> str:
    """Return `text` with control characters escaped (`\\n`, `\\x00`), fit for one log line."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


def url_safe_id(value: str) -> bool:
    """Say whether `value` can be one segment of a request path, as an agent or run id."""
    return bool(value) and _NOT_IN_ID.search(value) is None


def run_id(item: dict[str, Any], key: str) -> str:
    """Return `item[key]` as a run id that can be part of a URL, or raise (InvalidIdError)."""
    value = required_str(item, key)
    if _NOT_IN_ID.search(value) is not None:
        raise InvalidIdError(
            f"field {key!r} cannot be part of a URL (a control character, '/', '?', '#' or '\\')"
        )
    return value


def run_object(item: Any, what: str = "run") -> dict[str, Any]:
    """Return `item` as a JSON object, or raise ParseError naming what it should have been."""
    if not isinstance(item, dict):
        raise ParseError(f"{what} must be an object, got {type(item).__name__}")
    return item


def status(
    item: dict[str, Any], mapping: Mapping[str, Status], *, ended: bool
) -> tuple[Status, str]:
    """Return the normalized and the raw status of `item` through a platform's `mapping`.

    A raw status outside the mapping is `unknown` (terminal) when the run has an end time
    (`ended`), else `running`: it stays in flight and expires like any run that never ends.
    """
    raw = required_str(item, "status")
    normalized = mapping.get(raw)
    if normalized is None:
        return (Status.UNKNOWN if ended else Status.RUNNING), raw[:200]
    return normalized, raw


class Drift:
    """Read optional fields of one item, dropping (and naming) the malformed ones alone."""

    __slots__ = ("fields",)

    def __init__(self) -> None:
        self.fields: list[str] = []

    def value(self, read: Callable[[Any, str], T | None], value: Any, key: str) -> T | None:
        """Return `read(value, key)`, or None (the field named as invalid) when malformed."""
        try:
            return read(value, key)
        except ParseError:
            self.fields.append(key)
            return None

    def expected(self, read: Callable[[Any, str], T | None], value: Any, key: str) -> T | None:
        """Return `read(value, key)`, or None with the field named as invalid: also when absent
        (a field every run should carry, like the time it is ordered by)."""
        result = self.value(read, value, key)
        if result is None and key not in self.fields:
            self.fields.append(key)
        return result

    def text(self, item: dict[str, Any], key: str) -> str | None:
        """Return `optional_str(item, key)`, or None (the field named as invalid)."""
        try:
            return optional_str(item, key)
        except ParseError:
            self.fields.append(key)
            return None

    @property
    def invalid(self) -> tuple[str, ...]:
        """Return the names of the fields dropped so far, each once (one may feed two values)."""
        return tuple(dict.fromkeys(self.fields))


class FirstSeen:
    """When each run without a time of its own was first seen, so its stand-in stays put.

    Bounded: past `capacity` the run seen least recently is forgotten (a run still listed is seen
    every poll, so it stays).
    """

    def __init__(self, clock: Callable[[], float], capacity: int = MAX_FIRST_SEEN) -> None:
        self._clock = clock
        self._capacity = capacity
        self._seen: OrderedDict[str, float] = OrderedDict()

    def __call__(self, key: str) -> float:
        """Return when the run `key` was first seen (now, the first time)."""
        at = self._seen.pop(key, None)
        self._seen[key] = at = self._clock() if at is None else at
        if len(self._seen) > self._capacity:
            self._seen.popitem(last=False)
        return at


def order_time(
    created: float | None,
    ended: float | None,
    key: str,
    first_seen: Callable[[str], float] | None,
) -> tuple[float, bool]:
    """Return the time to order a run by and whether it is a stand-in for its creation.

    The stand-in is the run's end, else when the exporter first saw it: never earlier than the
    real creation. Paging needs exactly that. A time too early could put a live run outside the
    lookback (dropped) or stop paging before newer runs (missed); a later one only keeps the run
    in the window longer and reads a page more. It never moves a high-water mark (see `Run`).
    """
    if created is not None:
        return created, False
    if ended is not None:
        return ended, True
    if first_seen is None:
        raise ParseError("run has no time to order it by, and no memory of when it was seen")
    return first_seen(key), True


def required_str(item: dict[str, Any], key: str) -> str:
    """Return `item[key]` as a non-empty string."""
    value = item.get(key)
    if type(value) is not str or not value:
        raise ParseError(f"field {key!r} must be a non-empty string, got {type(value).__name__}")
    return value


def optional_str(item: dict[str, Any], key: str) -> str | None:
    """Return `item[key]` as a string, or None when absent, null or empty."""
    value = item.get(key)
    if type(value) is str:  # the common case first
        return value or None
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise ParseError(f"field {key!r} must be a string, got {type(value).__name__}")
    return value


def optional_number(value: Any, key: str) -> float | None:
    """Return a number in [0, MAX_QUANTITY] from a JSON number or numeric string, or None."""
    kind = type(value)
    if (kind is float or kind is int) and 0 <= value <= MAX_QUANTITY:  # the common case first
        return float(value)
    number = _non_negative(value, key)
    if number is not None and number > MAX_QUANTITY:
        raise ParseError(f"field {key!r} is out of range (above {MAX_QUANTITY:g})")
    return number


def _non_negative(value: Any, key: str) -> float | None:
    """Return a finite, non-negative float from a JSON number or numeric string, or None."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ParseError(f"field {key!r} must be a number, got a boolean")
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ParseError(f"field {key!r} must be a number, got {value[:40]!r}") from None
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ParseError(f"field {key!r} must be a finite non-negative number")
    return float(value)


def optional_int(value: Any, key: str) -> int | None:
    """Return a non-negative integer count from a JSON number, or None."""
    if type(value) is int and 0 <= value <= _MAX_INT:  # the common case first
        return value
    number = optional_number(value, key)  # MAX_QUANTITY is far below _MAX_INT
    return None if number is None else round(number)


def timestamp(value: Any, key: str) -> float:
    """Return epoch seconds from an ISO 8601 string (`Z` or offset; naive means UTC)."""
    if not isinstance(value, str) or not value:
        raise ParseError(f"field {key!r} must be an ISO 8601 timestamp")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ParseError(f"field {key!r} is not an ISO 8601 timestamp: {value[:40]!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    epoch = parsed.timestamp()
    if not 0 <= epoch < _MAX_EPOCH:
        raise ParseError(f"field {key!r} is out of range: {value[:40]!r}")
    return epoch


def optional_timestamp(value: Any, key: str) -> float | None:
    """Return epoch seconds from an ISO 8601 string, or None when absent."""
    return None if value is None or value == "" else timestamp(value, key)


def optional_epoch_ms(value: Any, key: str) -> float | None:
    """Return epoch seconds from epoch milliseconds (a number or numeric string), or None."""
    ms = _non_negative(value, key)
    if ms is not None and ms >= _MAX_EPOCH * 1000:
        raise ParseError(f"field {key!r} is out of range")
    return None if ms is None else ms / 1000.0


def instant(value: Any, key: str) -> float | None:
    """Return epoch seconds from epoch milliseconds or an ISO 8601 string, or None when absent."""
    if isinstance(value, str) and not value.strip().isdigit():
        return optional_timestamp(value, key)
    return optional_epoch_ms(value, key)
