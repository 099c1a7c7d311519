"""Bounds on the web listener's connections: a deadline for each request's headers, and a cap.

uvicorn closes a connection idle after a response (`timeout_keep_alive`), but waits forever for
the first request's headers, or for headers sent a byte at a time: idle sockets then hold file
descriptors until none are left for scrapes or upstream requests. This h11 protocol (given to
uvicorn through its public `http` setting) closes a connection whose request headers are not
complete `header_timeout_s` after it opened or after its last response, and aborts a connection
at once when `max_connections` are open already. It is the one seam on uvicorn's h11 protocol;
tests/unit/web/test_connections.py fails if uvicorn changes under it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

HEADER_TIMEOUT_S = 10.0  # to send a request's headers, from connecting or the last response
KEEP_ALIVE_S = 5  # idle time after a response before the connection is closed
MAX_CONNECTIONS = 1024  # open at once; more are closed at once (Prometheus needs a handful)


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a request-header deadline and a connection cap."""

    header_timeout_s = HEADER_TIMEOUT_S
    max_connections = MAX_CONNECTIONS
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Accept the connection, or abort it when too many are open; start the deadline."""
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            transport.abort()
            return
        self._arm()

    def data_received(self, data: bytes) -> None:
        """Read the data; once a request's headers are complete, stop the deadline."""
        super().data_received(data)
        if self._in_request():
            self._disarm()

    def on_response_complete(self) -> None:
        """Finish the response, then give the next request's headers a new deadline."""
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the deadline with the connection."""
        self._disarm()
        super().connection_lost(exc)

    def _in_request(self) -> bool:
        return self.cycle is not None and not self.cycle.response_complete

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._expire)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _expire(self) -> None:
        self._header_timer = None
        if not self._in_request():
            self.transport.close()


def guarded_protocol(header_timeout_s: float, max_connections: int) -> type[GuardedH11Protocol]:
    """Return the protocol class for one server, with its own bounds."""
    bounds: dict[str, Any] = {
        "header_timeout_s": header_timeout_s,
        "max_connections": max_connections,
    }
    return type("GuardedH11Protocol", (GuardedH11Protocol,), bounds)
