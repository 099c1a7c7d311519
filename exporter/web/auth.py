"""Basic authentication for the exporter's HTTP endpoints, as ASGI middleware.

A request without valid credentials gets 401 with `WWW-Authenticate: Basic`, is counted by reason
(`missing`, `malformed`, `wrong_credentials`) and logged with its path and client address only:
never the offered user name or password. bcrypt runs in worker threads, a bounded number per
client address (`web.hashing`), so a flood of bad passwords can neither occupy the event loop or
every core nor queue a valid scrape behind it; a check with no place answers 503 at once (reason
`busy`). Results are cached (keyed by an HMAC, so no password is kept) so a scrape every few
seconds costs one bcrypt check in total. An unknown user is checked against a dummy hash of the
users' cost, so timing does not tell which users exist.
The users come from `webreload.LiveWebConfig`, so a changed web config file applies at once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping
from typing import Any

import bcrypt
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from exporter.web.hashing import CheckQueue, dummy_hash
from exporter.web.reload import LiveWebConfig

log = logging.getLogger(__name__)

FAILURE_REASONS = ("missing", "malformed", "wrong_credentials", "busy")
HEALTH_PATHS = frozenset({"/healthz", "/readyz"})
CACHE_SIZE = 1024
_CHALLENGE = 'Basic realm="agent-runs-exporter", charset="UTF-8"'


class CredentialCheck:
    """Check user names and passwords against bcrypt hashes, with a bounded result cache."""

    def __init__(self, users: Mapping[str, bytes], cache_size: int = CACHE_SIZE) -> None:
        self.users = dict(users)
        self._dummy: bytes | None = None  # made in a worker thread when first needed
        self._cache: OrderedDict[bytes, bool] = OrderedDict()
        self._cache_size = cache_size
        self._key = os.urandom(32)
        self._queue = CheckQueue()
        self.bcrypt_checks = 0

    async def verify(self, user: str, password: str, client: str = "") -> bool | None:
        """Say whether `password` is `user`'s; None when too many checks wait already."""
        hashed = self.users.get(user)
        material = b"\0".join((user.encode(), password.encode(), hashed or b""))
        key = hmac.new(self._key, material, hashlib.sha256).digest()
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        matches = await self._queue.run(
            client, lambda: self._bcrypt(password, hashed or self.dummy_hash())
        )
        if matches is None:
            return None
        result = matches and hashed is not None
        self._cache[key] = result
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return result

    def dummy_hash(self) -> bytes:
        """Return the hash an unknown user is checked against, at the users' highest cost."""
        if self._dummy is None:
            self._dummy = dummy_hash(self.users.values())  # a race only makes it twice
        return self._dummy

    def _bcrypt(self, password: str, hashed: bytes) -> bool:
        self.bcrypt_checks += 1
        try:
            return bcrypt.checkpw(password.encode(), hashed)
        except ValueError:  # a hash bcrypt cannot read: the web config check should prevent it
            return False


def credentials(header: str | None) -> tuple[str, str] | str:
    """Return (user, password) from an `Authorization` header, or the failure reason."""
    if not header:
        return "missing"
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return "malformed"
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return "malformed"
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else "malformed"


class BasicAuth:
    """ASGI middleware letting through only requests with a configured user's credentials."""

    def __init__(
        self,
        app: ASGIApp,
        users: Mapping[str, bytes],
        *,
        open_paths: Collection[str] = (),
        on_failure: Callable[[str], None] = lambda _reason: None,
        refresh: Callable[[], object] = lambda: None,
    ) -> None:
        self.app = app
        self.check = CredentialCheck(users)
        self.open_paths = frozenset(open_paths)
        self.on_failure = on_failure
        self.refresh = refresh

    def set_users(self, users: Mapping[str, bytes]) -> None:
        """Check credentials against `users` from now on (no users: let every request in)."""
        self.check = CredentialCheck(users)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the request if it is authorized (or open), else answer 401."""
        if scope["type"] == "http":
            self.refresh()
        if scope["type"] != "http" or scope["path"] in self.open_paths or not self.check.users:
            await self.app(scope, receive, send)
            return
        reason = await self._refusal(scope)
        if reason is None:
            await self.app(scope, receive, send)
            return
        self.on_failure(reason)
        if reason == "busy":
            await _busy(scope, receive, send)
            return
        log.warning(
            "refused %s %s from %s: %s credentials",
            scope.get("method", "GET"),
            scope["path"],
            _client(scope),
            reason.replace("_", " "),
        )
        response = PlainTextResponse(
            "401 Unauthorized\n", status_code=401, headers={"WWW-Authenticate": _CHALLENGE}
        )
        await response(scope, receive, send)

    async def _refusal(self, scope: Scope) -> str | None:
        """Return why the request's credentials are refused, or None when they are good."""
        header = _header(scope, b"authorization")
        parsed = credentials(header)
        if isinstance(parsed, str):
            return parsed
        verdict = await self.check.verify(*parsed, client=str(_client(scope)))
        if verdict is None:
            return "busy"
        return None if verdict else "wrong_credentials"


async def _busy(scope: Scope, receive: Receive, send: Send) -> None:
    """Answer a request whose credentials could not be checked now (every lane is full)."""
    log.warning(
        "refused %s from %s: too many password checks waiting", scope["path"], _client(scope)
    )
    response = PlainTextResponse(
        "503 Service Unavailable: too many password checks waiting\n",
        status_code=503,
        headers={"Retry-After": "1"},
    )
    await response(scope, receive, send)


def protect(
    app: ASGIApp,
    web: LiveWebConfig,
    *,
    health_without_auth: bool,
    on_failure: Callable[[str], None],
) -> ASGIApp:
    """Return `app` behind basic auth as `web` says (users may come and go), else `app` itself."""
    if web.web.path is None and not web.web.users:
        return app
    open_paths = HEALTH_PATHS if health_without_auth else frozenset()
    auth = BasicAuth(
        app, web.web.users, open_paths=open_paths, on_failure=on_failure, refresh=web.refresh
    )
    web.on_users_changed = auth.set_users
    return auth


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def _client(scope: Scope) -> Any:
    client = scope.get("client")
    return client[0] if client else "unknown"
