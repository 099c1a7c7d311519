"""Checks the settings models share: source names, URLs, repeated values."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

NAME = re.compile(r"[a-zA-Z0-9_.-]{1,63}")


def check_url(value: str) -> str:
    """Require an http(s) URL with a host, no query or fragment; drop a trailing slash."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host, e.g. https://host:8443")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not contain credentials (use token or token_file)")
    if parts.query or parts.fragment:
        raise ValueError("must not have a query (?...) or fragment (#...)")
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not 0-65535
    except ValueError:
        raise ValueError("has an invalid port (must be 0-65535)") from None
    return value.strip().rstrip("/")


def duplicates(names: list[str]) -> list[str]:
    """Return the repeats of names seen before, in order (linear: 90,000 agent ids are fine)."""
    seen: set[str] = set()
    repeats = []
    for name in names:
        if name in seen:
            repeats.append(name)
        seen.add(name)
    return repeats
