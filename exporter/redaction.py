"""Mask sensitive keys in captured tool content, at any depth, before it becomes a span attribute.

A key matches a pattern when some consecutive words of the key, joined, spell the pattern with
its separators removed (an `s` may follow). Keys are cut into words at separators and camelCase
boundaries, and compared case-insensitively, so the pattern `api key` catches `api_key`,
`apiKey`, `API-KEY`, `x-api-key` and `apikeys`, and `email` catches `userEmail` and `e-mail`,
while `card` does not catch `discard`. Strings that hold a JSON object or array are searched too.
This module imports nothing from the package.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

REDACTED = "[REDACTED]"
DEFAULT_KEYS = (
    "password",
    "token",
    "secret",
    "authorization",
    "api key",
    "email",
    "phone",
    "card",
)
MAX_DEPTH = 32
TOO_DEEP = "[TOO DEEP]"
_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


def key_words(key: str) -> list[str]:
    """Cut a key into lower-case words at separators and camelCase boundaries."""
    return [word.lower() for word in _WORD.findall(key)]


def _squash(pattern: str) -> str:
    return "".join(key_words(pattern))


class Redactor:
    """Replace the values of keys that match any of `patterns` with `[REDACTED]`."""

    def __init__(self, patterns: Iterable[str] = DEFAULT_KEYS) -> None:
        self._targets = frozenset(filter(None, (_squash(pattern) for pattern in patterns)))
        self._longest = max((len(target) for target in self._targets), default=0)

    def matches(self, key: str) -> bool:
        """Say whether `key` names something to redact."""
        words = key_words(key)
        for start in range(len(words)):
            joined = ""
            for word in words[start:]:
                joined += word
                if len(joined) > self._longest + 1:
                    break
                if joined in self._targets or (
                    joined.endswith("s") and joined[:-1] in self._targets
                ):
                    return True
        return False

    def redact(self, value: Any, depth: int = 0) -> Any:
        """Return a copy of a JSON-like `value` with every matching key's value replaced."""
        if depth > MAX_DEPTH:
            return TOO_DEEP
        if isinstance(value, dict):
            return {
                key: REDACTED if self.matches(str(key)) else self.redact(item, depth + 1)
                for key, item in value.items()
            }
        if isinstance(value, list | tuple):
            return [self.redact(item, depth + 1) for item in value]
        if isinstance(value, str) and value[:1] in ("{", "["):
            return self._redact_embedded(value, depth)
        return value

    def _redact_embedded(self, text: str, depth: int) -> str:
        """Redact inside a string holding JSON (tool arguments often arrive encoded)."""
        try:
            decoded = json.loads(text)
        except (ValueError, RecursionError):
            return text
        if not isinstance(decoded, dict | list):
            return text
        redacted = self.redact(decoded, depth + 1)
        return text if redacted == decoded else serialize(redacted)


def serialize(value: Any) -> str:
    """Render a JSON-like value compactly, as content attributes carry it."""
    return json.dumps(value, default=str, ensure_ascii=False, separators=(",", ":"))
