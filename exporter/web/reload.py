"""Keep the web config in force while serving: re-read it when its files change.

Go exporters re-read their web config file on every request, so a certificate renewed by
cert-manager or a user added to the file applies without a restart. Here the file and the
certificate, key and client CA files it names are `stat`ed at most once per `check_interval_s`,
from the TLS handshake (through `sni_callback`) and from each authenticated request:

    changed users                        apply to the next request
    changed certificate, key, client CA  apply to the next handshake (the context is swapped)
    TLS on/off, client_auth_type,        logged: need a restart (OpenSSL fixes them per listener)
    min_version, max_version
    a file that no longer validates      logged with every problem; the config in force stays
"""

from __future__ import annotations

import logging
import os
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path

from exporter.errors import ConfigError
from exporter.web.config import TlsServerConfig, WebConfig, load_web_config

log = logging.getLogger(__name__)

_Stamp = tuple[tuple[str, int, int, int] | None, ...]
_FIXED_TLS_FIELDS = ("client_auth_type", "min_version", "max_version")


def _file_stamp(path: str | Path) -> tuple[str, int, int, int] | None:
    try:
        status = os.stat(path)
    except OSError:
        return None
    return str(path), status.st_ino, status.st_size, status.st_mtime_ns


def _stamp(web: WebConfig) -> _Stamp:
    """Return the identity of every file the config depends on."""
    files: list[str | Path] = [web.path] if web.path else []
    if web.tls is not None:
        files += [web.tls.cert_file, web.tls.key_file]
        files += [web.tls.client_ca_file] if web.tls.client_ca_file else []
    return tuple(_file_stamp(path) for path in files)


def _restart_reason(old: TlsServerConfig | None, new: TlsServerConfig | None) -> str | None:
    """Say what about TLS changed that only a restart can apply, or None."""
    if (old is None) != (new is None):
        return "TLS was switched " + ("on" if new is not None else "off")
    if old is None or new is None:
        return None
    changed = [key for key in _FIXED_TLS_FIELDS if getattr(old, key) != getattr(new, key)]
    return ", ".join(changed) + " changed" if changed else None


class LiveWebConfig:
    """The web config in force, refreshed from its files when they change."""

    def __init__(
        self,
        web: WebConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        check_interval_s: float = 1.0,
    ) -> None:
        self.web = web
        self.on_users_changed: Callable[[Mapping[str, bytes]], None] = lambda _users: None
        self._clock = clock
        self._interval = check_interval_s
        self._checked_at = clock()
        self._stamp = _stamp(web)
        self._listener = web.ssl_context()
        self._current = self._listener
        if self._listener is not None:
            self._listener.sni_callback = self._on_client_hello

    @property
    def server_context(self) -> ssl.SSLContext | None:
        """Return the TLS context to listen with (None: plain HTTP)."""
        return self._listener

    def refresh(self) -> bool:
        """Re-read the config if its files changed since the last look; say if it was."""
        now = self._clock()
        if self.web.path is None or now - self._checked_at < self._interval:
            return False
        self._checked_at = now
        stamp = _stamp(self.web)
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            new = load_web_config(self.web.path)
        except ConfigError as exc:
            log.error("web config %s is not valid; the one in force stays: %s", self.web.path, exc)
            return False
        self._apply(new)
        self._stamp = _stamp(self.web)
        return True

    def _apply(self, new: WebConfig) -> None:
        restart = _restart_reason(self.web.tls, new.tls)
        if restart is not None:
            log.warning("web config %s: %s; restart to apply that", self.web.path, restart)
            new = replace(new, tls=self.web.tls)
        elif new.tls is not None:
            try:
                self._current = new.ssl_context()
            except (OSError, ValueError) as exc:  # a file replaced again since it was checked
                log.error("web config %s: cannot load the new certificate: %s", new.path, exc)
                new = replace(new, tls=self.web.tls)
        if new.users != self.web.users:
            self.on_users_changed(new.users)
        self.web = new
        log.info("web config %s reloaded: %s", new.path, new.describe())

    def _on_client_hello(
        self, connection: ssl.SSLObject, _server_name: str | None, _context: ssl.SSLContext
    ) -> None:
        """Swap in the current certificate context before the server hello."""
        try:
            self.refresh()
        except Exception:  # a handshake must not die of a reload
            log.exception("reloading the web config failed")
        if self._current is not None and connection.context is not self._current:
            connection.context = self._current
