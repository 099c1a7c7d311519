"""Decide which runs depart from the documented API, and spoil a drifting field in a payload.

Every quirk (`SimulatorSettings.*_ratio`) is decided from the run's own `detail_seed`, salted per
quirk, never from the world's RNG: turning a knob on changes no other draw, so one seed still
gives the same runs, and the same runs the same quirks.

A drifting run has one malformed optional field, the same on every read (list and detail); a
platform's `Drifts` table says which fields may drift and how each goes bad. A field drifts only
where it has a value, so a run counts it only when the field is there once the run has ended.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import Any

Spoil = Callable[[Any], Any]
Drifts = Mapping[str, Spoil]  # field (dotted for nested: `token_usage.input`) -> how it goes bad

UNKNOWN_SALT = 0x0DD
DRIFT_SALT = 0xD21F7
NEVER_SALT = 0x5703
LATE_SALT = 0x1A7E


def roll(seed: int, salt: int, ratio: float) -> random.Random | None:
    """Return an RNG for the quirk's details when the run has it (a share `ratio`), else None."""
    if ratio <= 0:
        return None
    rng = random.Random(seed ^ salt)
    return rng if rng.random() < ratio else None


def drift_of(seed: int, ratio: float, drifts: Drifts, present: Callable[[str], bool]) -> str | None:
    """Return the field a run's payloads spoil (one with a value once it ended), or None."""
    rng = roll(seed, DRIFT_SALT, ratio)
    if rng is None:
        return None
    candidates = [name for name in drifts if present(name)]
    return rng.choice(candidates) if candidates else None


def unlisted_status(seed: int, ratio: float, statuses: tuple[str, ...]) -> str | None:
    """Return the undocumented status a run ends with, or None for its drawn outcome."""
    rng = roll(seed, UNKNOWN_SALT, ratio)
    return rng.choice(statuses) if rng is not None else None


def spoil(payload: dict[str, Any], field: str | None, drifts: Drifts) -> dict[str, Any]:
    """Return `payload` with `field` spoiled where it has a value (the payload is changed)."""
    if field is None:
        return payload
    *parents, key = field.split(".")
    holder: Any = payload
    for parent in parents:
        holder = holder.get(parent) if isinstance(holder, dict) else None
    if isinstance(holder, dict) and holder.get(key) is not None:
        holder[key] = drifts[field](holder[key])
    return payload
