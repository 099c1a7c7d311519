"""Credentials for upstream requests: a token from the settings or from a file that may rotate.

    TokenFile("/var/run/secrets/conduit/token")   re-read when the file changes
    HeaderAuth(tokens.current)                     Authorization: Bearer <token>
    HeaderAuth(tokens.current, "X-API-KEY", None)  X-API-KEY: <token>

Kubernetes rotates a mounted secret by swapping a symlink, so the file's identity (inode, size,
mtime) is compared before a request, at most once per `check_interval_s`: one `stat` call, no
watcher thread. Every token read is registered with `exporter.logs.register_secret`, so it is
masked in every log line. A token an HTTP header cannot carry (a line break, a control
character) is never sent: the last good one is kept, and the warning says why without quoting it.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Generator
from pathlib import Path

import httpx

from exporter import textfile
from exporter.logs import register_secret

log = logging.getLogger(__name__)

TokenGetter = Callable[[], str | None]
_Stamp = tuple[int, int, int, int]


def token_problem(token: str) -> str | None:
    """Say why `token` cannot be sent in an HTTP header (never quoting it), or None if it can."""
    if any(char in "\r\n" for char in token):
        return "holds a line break (a token file of two lines?): an HTTP header cannot carry it"
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in token if char != "\t"):
        return "holds a control character: an HTTP header cannot carry it"
    if any(ord(char) > 0xFF for char in token):
        return "holds a character outside Latin-1: an HTTP header cannot carry it"
    return None


class TokenFile:
    """A token kept in a file, re-read when the file changes; the last good one is kept."""

    def __init__(
        self,
        path: str | Path,
        *,
        clock: Callable[[], float] = time.monotonic,
        check_interval_s: float = 1.0,
    ) -> None:
        self.path = Path(path)
        self._clock = clock
        self._interval = check_interval_s
        self._checked_at: float | None = None
        self._stamp: _Stamp | None = None
        self._token: str | None = None
        self.rotations = 0

    def current(self) -> str | None:
        """Return the token, re-reading the file first if it changed since the last look."""
        now = self._clock()
        if self._checked_at is None or now - self._checked_at >= self._interval:
            self._checked_at = now
            self._refresh()
        return self._token

    def _refresh(self) -> None:
        try:
            status = os.stat(self.path)
        except OSError as exc:
            self._keep(f"cannot stat it ({exc.strerror})")
            return
        stamp = (status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns)
        if stamp == self._stamp:
            return
        try:
            token = textfile.read_text(self.path, textfile.MAX_TOKEN_BYTES).strip()
        except (OSError, UnicodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else None
            self._keep(f"cannot read it ({reason or type(exc).__name__})")
            return
        if not token:
            self._keep("it is empty")
            return
        if problem := token_problem(token):
            register_secret(token)  # masked, though never sent
            self._stamp = stamp  # said once per change of the file
            self._keep(f"its token {problem}")
            return
        self._stamp = stamp
        if token != self._token:
            register_secret(token)
            if self._token is not None:
                self.rotations += 1
                log.info("token file %s changed: using the new token", self.path)
            self._token = token

    def _keep(self, why: str) -> None:
        action = "keeping the last token" if self._token else "requests go without a token"
        log.warning("token file %s: %s; %s", self.path, why, action)


def static_token(token: str | None) -> TokenGetter:
    """Return a getter for a token that never changes (registered as a secret)."""
    if token:
        register_secret(token)
    return lambda: token


class HeaderAuth(httpx.Auth):
    """Put the current token in one request header, optionally after a scheme (`Bearer`)."""

    def __init__(
        self, token: TokenGetter, header: str = "Authorization", scheme: str | None = "Bearer"
    ) -> None:
        self._token = token
        self._header = header
        self._scheme = scheme

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Set the header on `request` (when there is a token) and send it once."""
        token = self._token()
        if token:
            request.headers[self._header] = f"{self._scheme} {token}" if self._scheme else token
        yield request
