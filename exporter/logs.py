"""Log output for the daemon: plain or JSON lines, repeated warnings damped, secrets masked.

Every formatter replaces the strings given to `register_secret` with `****`, so a token cannot
reach a log line even by accident, in any form it takes there: raw, escaped as `repr` or JSON
writes it (a newline as `\\n`), URL-quoted, each line of a multi-line one, or cut short at the end
of a truncated text (its first `CUT_MIN` characters or more). A form shorter than `SHORT_SECRET`
characters is masked only where it stands alone, between characters that cannot be part of a word,
so a one-letter token cannot turn `exporter.app` into `expor****er.app`. This module imports nothing
from the package.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import IO, Any, Literal

MASK = "****"
LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
_QUIET_LOGGERS = ("httpx", "httpcore")  # one INFO line per request is noise at 15 s polls
CUT_MIN = 8  # the shortest start of a secret masked at the end of a cut text
SHORT_SECRET = 8  # a form shorter than this is masked only as a whole word
_SECRETS: set[str] = set()
_FORMS: list[str] = []  # every form of every secret at least SHORT_SECRET long, longest first
_SHORT: list[re.Pattern[str]] = []  # one pattern: the shorter forms as whole words, if any
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_STANDARD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys() | {"message", "asctime"}
)
_REPEATED = "repeated"


def register_secret(value: str) -> None:
    """Mask `value` as `****` wherever it would appear in a formatted log record."""
    if value and value not in _SECRETS:
        _SECRETS.add(value)
        forms = sorted(
            {form for secret in _SECRETS for form in secret_forms(secret)}, key=len, reverse=True
        )
        _FORMS[:] = [form for form in forms if len(form) >= SHORT_SECRET]
        short = [form for form in forms if len(form) < SHORT_SECRET]
        _SHORT[:] = [_whole_words(short)] if short else []


def _whole_words(forms: list[str]) -> re.Pattern[str]:
    """Match any of `forms` (longest first) where no word character nor `*` touches it."""
    alternatives = "|".join(map(re.escape, forms))
    return re.compile(rf"(?<![\w*])(?:{alternatives})(?![\w*])")


def secret_forms(secret: str) -> set[str]:
    """Return the ways `secret` can be written in a log line: raw, escaped, quoted, by line."""
    forms = {
        secret,
        repr(secret)[1:-1],
        repr(secret.encode("utf-8", "backslashreplace"))[2:-1],  # httpx's header errors
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        urllib.parse.quote(secret, safe=""),
        urllib.parse.quote_plus(secret),
    }
    forms |= {part for part in _CONTROL.split(secret) if len(part) >= CUT_MIN}
    forms |= {json.dumps(form, ensure_ascii=False)[1:-1] for form in forms}  # escaped twice
    return {form for form in forms if form}


def redact(text: str) -> str:
    """Replace every registered secret in `text` with `****`, in any form it takes there."""
    for form in _FORMS:
        if form in text:
            text = text.replace(form, MASK)
        if len(form) > CUT_MIN and form[:CUT_MIN] in text:
            text = _mask_cut(text, form)
    for pattern in _SHORT:
        text = pattern.sub(MASK, text)
    return text


def mask_values(text: str, secrets: Iterable[str]) -> str:
    """Replace each of `secrets` as written in `text` with `****` (a short one as a whole word)."""
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        if len(secret) >= SHORT_SECRET:
            text = text.replace(secret, MASK)
        else:
            text = _whole_words([secret]).sub(MASK, text)
    return text


def _mask_cut(text: str, form: str) -> str:
    """Mask the start of `form` if `text` ends with it (a secret cut by truncation)."""
    start = text.rfind(form[:CUT_MIN])
    if form.startswith(text[start:]):
        return text[:start] + MASK
    return text


class DampingFilter(logging.Filter):
    """Drop repeats of an identical record within `window` seconds; count them on the next one."""

    def __init__(
        self,
        window: float = 60.0,
        min_level: int = logging.WARNING,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 1000,
    ) -> None:
        super().__init__()
        self.window, self.min_level, self.clock, self.max_keys = window, min_level, clock, max_keys
        self._seen: dict[tuple[str, int, str], list[float]] = {}  # key -> [first_at, suppressed]
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        """Say whether `record` passes; mark it with the count of repeats dropped before it."""
        if record.levelno < self.min_level:
            return True
        key = (record.name, record.levelno, record.getMessage())
        with self._lock:
            now = self.clock()
            entry = self._seen.get(key)
            if entry is not None and now - entry[0] < self.window:
                entry[1] += 1
                return False
            if entry is None and len(self._seen) >= self.max_keys:
                self._forget_expired(now)
            self._seen[key] = [now, 0]
        if entry is not None and entry[1]:
            setattr(record, _REPEATED, int(entry[1]))
        return True

    def _forget_expired(self, now: float) -> None:
        """Drop keys whose window is over, so memory stays bounded by distinct recent messages."""
        expired = [key for key, entry in self._seen.items() if now - entry[0] >= self.window]
        for key in expired:
            del self._seen[key]


class _Formatter(logging.Formatter):
    """Shared parts of the plain and JSON formats."""

    def timestamp(self, record: logging.LogRecord) -> str:
        """Render the record time as UTC ISO 8601 with milliseconds."""
        moment = datetime.fromtimestamp(record.created, tz=UTC)
        return f"{moment:%Y-%m-%dT%H:%M:%S}.{int(record.msecs):03d}Z"

    def extras(self, record: logging.LogRecord) -> dict[str, Any]:
        """Return the fields a caller attached with `extra={...}`."""
        return {
            key: value
            for key, value in record.__dict__.items()
            if key not in _STANDARD_ATTRS and key != _REPEATED and not key.startswith("_")
        }

    def exception(self, record: logging.LogRecord) -> str | None:
        """Return the traceback and stack text of the record, if any."""
        parts = []
        if record.exc_info:
            parts.append(self.formatException(record.exc_info))
        elif record.exc_text:
            parts.append(record.exc_text)
        if record.stack_info:
            parts.append(self.formatStack(record.stack_info))
        return redact("\n".join(parts)) if parts else None

    def message(self, record: logging.LogRecord) -> str:
        """Return the record's message with its args, repeat count and secrets handled."""
        text = record.getMessage()
        repeated = getattr(record, _REPEATED, 0)
        if repeated:
            text = f"{text} (repeated {repeated} times)"
        return redact(text)


class PlainFormatter(_Formatter):
    """Format `2026-11-23T15:04:05.123Z INFO exporter.poll.poller message key=value`."""

    def format(self, record: logging.LogRecord) -> str:
        """Render one record as a plain text line (plus a traceback, if any)."""
        fields = "".join(
            f" {key}={_plain_value(value)}" for key, value in self.extras(record).items()
        )
        line = f"{self.timestamp(record)} {record.levelname} {record.name} {self.message(record)}"
        exc = self.exception(record)
        return redact(line + fields + (f"\n{exc}" if exc else ""))


class JsonFormatter(_Formatter):
    """Format one JSON object per line with `ts`, `level`, `logger`, `msg`, extras and `exc`."""

    def format(self, record: logging.LogRecord) -> str:
        """Render one record as a single-line JSON object."""
        payload: dict[str, Any] = {
            "ts": self.timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "msg": self.message(record),
        }
        repeated = getattr(record, _REPEATED, 0)
        if repeated:
            payload[_REPEATED] = repeated
        for key, value in self.extras(record).items():
            payload.setdefault(key, redact(value) if isinstance(value, str) else value)
        exc = self.exception(record)
        if exc:
            payload["exc"] = exc
        return redact(json.dumps(payload, default=str, ensure_ascii=False))


def _plain_value(value: object) -> str:
    """Render an extra field's value, quoted when it would not read as one token."""
    text = redact(str(value))  # alone, so a secret cut at the value's end is seen as such
    if not text or any(char.isspace() or char in '"=' for char in text):
        return json.dumps(text, ensure_ascii=False)
    return text


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler `setup_logging` installs; marked so a second call replaces it."""


def setup_logging(
    level: str = "info",
    fmt: Literal["plain", "json"] = "plain",
    stream: IO[str] | None = None,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Send log records to `stream` (stderr by default) at `level`, formatted as `fmt`.

    Identical warnings and errors are damped for 60 s of `clock`.
    """
    numeric = _parse_level(level)
    formatter: logging.Formatter
    if fmt == "plain":
        formatter = PlainFormatter()
    elif fmt == "json":
        formatter = JsonFormatter()
    else:
        raise ValueError(f"invalid log format {fmt!r}: use plain or json")
    handler = _Handler(sys.stderr if stream is None else stream)
    handler.setFormatter(formatter)
    handler.addFilter(DampingFilter(clock=clock))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(
            logging.NOTSET if numeric <= logging.DEBUG else logging.WARNING
        )


def _parse_level(level: str) -> int:
    """Translate a level name (debug, info, warning, error; any case) to its number."""
    numeric = LEVELS.get(str(level).strip().lower())
    if numeric is None:
        raise ValueError(f"invalid log level {level!r}: use one of {', '.join(LEVELS)}")
    return numeric
