"""Human durations (`15s`, `5m`, `1h30m`, `500ms`, `2d`) read as float seconds and written back.

This module imports nothing from the package.
"""

from __future__ import annotations

import math
import re
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer

UNITS: dict[str, float] = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_UNIT_LIST = "ms, s, m, h or d"
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)([^\d.]*)")
_EXAMPLES = "e.g. 15s, 5m, 1h30m, 500ms or a number of seconds"


def parse_duration(value: object) -> float:
    """Read a duration (number of seconds or text like `1h30m`) as non-negative float seconds."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"must be a duration ({_EXAMPLES})")
    if isinstance(value, str):
        return _parse_text(value)
    return _checked(float(value), str(value))


def _parse_text(text: str) -> float:
    """Read a duration written as text."""
    stripped = "".join(text.split())
    if not stripped:
        raise ValueError(f"must not be empty ({_EXAMPLES})")
    if stripped.startswith("-"):
        raise ValueError(f"invalid duration {text!r}: must not be negative")
    try:
        seconds = float(stripped)
    except ValueError:
        seconds = _sum_parts(stripped, text)
    return _checked(seconds, text)


def _sum_parts(stripped: str, text: str) -> float:
    """Add up the `<number><unit>` parts of a duration like `1h30m`."""
    position, total = 0, 0.0
    for match in _PART.finditer(stripped):
        number, unit = match.groups()
        if match.start() != position:
            break
        if unit not in UNITS:
            hint = f"unknown unit {unit!r}" if unit else f"missing unit after {number}"
            raise ValueError(f"invalid duration {text!r}: {hint} (use {_UNIT_LIST})")
        total += float(number) * UNITS[unit]
        position = match.end()
    if position != len(stripped) or position == 0:
        raise ValueError(f"invalid duration {text!r} ({_EXAMPLES})")
    return total


def _checked(seconds: float, text: str) -> float:
    """Reject negative and non-finite durations."""
    if not math.isfinite(seconds):
        raise ValueError(f"invalid duration {text!r}: must be finite")
    if seconds < 0:
        raise ValueError(f"invalid duration {text!r}: must not be negative")
    return seconds


def format_duration(seconds: float) -> str:
    """Write float seconds compactly, e.g. `15s`, `1h`, `1h30m`, `500ms`."""
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"cannot format {seconds!r} as a duration")
    millis = round(seconds * 1000)
    if millis == 0 or abs(seconds * 1000 - millis) > 1e-6:
        text = f"{seconds:.9f}".rstrip("0").rstrip(".")
        return f"{text}s"
    parts = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        count, millis = divmod(millis, size)
        if count:
            parts.append(f"{count}{unit}")
    if millis:
        parts.append(f"{millis}ms")
    return "".join(parts)


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
]
"""A duration setting: accepts `15s`, `5m`, `1h30m`, `500ms`, `2d` or seconds; stored as seconds."""
