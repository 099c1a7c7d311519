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
import operator
import re
from collections.abc import Iterable
from itertools import islice
from json.encoder import c_encode_basestring, c_make_encoder  # type: ignore[attr-defined]
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
_MAX_VERDICTS = 4096
_JSON_START = ("{", "[")
_LEAVES = frozenset({int, float, bool, type(None)})  # values with nothing inside (exact types)
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
        self._verdicts: dict[str, bool] = {}  # tool payloads repeat their keys

    def matches(self, key: str) -> bool:
        """Say whether `key` names something to redact."""
        verdict = self._verdicts.get(key)
        if verdict is None:
            if len(self._verdicts) >= _MAX_VERDICTS:
                self._verdicts.clear()
            verdict = self._verdicts[key] = self._matches(key)
        return verdict

    def _matches(self, key: str) -> bool:
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
        """Return a JSON-like `value` with every matching key's value replaced.

        Parts with nothing to redact are returned as they are, not copied.
        """
        if depth > MAX_DEPTH:
            return TOO_DEEP
        if type(value) in _LEAVES:
            return value
        if isinstance(value, dict):
            return self._redact_dict(value, depth)
        if isinstance(value, (list, tuple)):  # a tuple of types: no union built per call
            items = [self.redact(item, depth + 1) for item in value]
            return value if all(map(operator.is_, items, value)) else items
        if isinstance(value, str) and value[:1] in _JSON_START:
            return self._redact_embedded(value, depth)
        return value

    def _redact_dict(self, value: dict[Any, Any], depth: int) -> dict[Any, Any]:
        copy: dict[Any, Any] | None = None  # made at the first change
        shallow = depth < MAX_DEPTH  # deeper, even plain values become TOO_DEEP
        for index, (key, item) in enumerate(value.items()):
            kind = type(item)
            if self.matches(key if type(key) is str else str(key)):
                redacted: Any = REDACTED
            elif shallow and (kind in _LEAVES or (kind is str and item[:1] not in _JSON_START)):
                redacted = item  # nothing inside to redact
            else:
                redacted = self.redact(item, depth + 1)
            if copy is not None:
                copy[key] = redacted
            elif redacted is not item:
                copy = dict(islice(value.items(), index))
                copy[key] = redacted
        return value if copy is None else copy

    def _redact_embedded(self, text: str, depth: int) -> str:
        """Redact inside a string holding JSON (tool arguments often arrive encoded)."""
        try:
            decoded = json.loads(text)
        except (ValueError, RecursionError):
            return text
        if not isinstance(decoded, dict | list):
            return text
        redacted = self.redact(decoded, depth + 1)
        return text if redacted is decoded or redacted == decoded else serialize(redacted)


_ENCODER = json.JSONEncoder(default=str, ensure_ascii=False, separators=(",", ":"))
# The same C encoder json.dumps builds per call, built once and without the circular-reference
# check, at half the cost: the values come from JSON payloads, so they cannot hold a cycle.
_C_ENCODER = (
    c_make_encoder(None, str, c_encode_basestring, None, ":", ",", False, False, True)
    if c_make_encoder is not None and c_encode_basestring is not None
    else None
)


def serialize(value: Any) -> str:
    """Render a JSON-like value compactly, as content attributes carry it."""
    if _C_ENCODER is None:
        return _ENCODER.encode(value)
    return "".join(_C_ENCODER(value, 0))
