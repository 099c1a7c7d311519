"""Serve ASGI apps inside the running asyncio loop, and stop on SIGINT or SIGTERM.

Used by the exporter's own HTTP server, the simulator and the demo. uvicorn serves on a socket we
bind ourselves, so a port in use is a plain `OSError` for the caller, and port 0 works. Connections
are bounded (`web.connections`): a deadline for request headers, keep-alive, a cap on open ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import uvicorn

from exporter.web.connections import (
    HEADER_TIMEOUT_S,
    KEEP_ALIVE_S,
    MAX_CONNECTIONS,
    guarded_protocol,
)

logger = logging.getLogger(__name__)

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5


class _LoopServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to its host program."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Install no signal handlers."""
        yield

    def install_signal_handlers(self) -> None:
        """Install no signal handlers (older uvicorn versions)."""


@dataclass(slots=True)
class RunningServer:
    """A uvicorn server running as a task of the current loop."""

    host: str
    port: int
    _server: _LoopServer
    _task: asyncio.Task[None]
    scheme: str = "http"

    @property
    def url(self) -> str:
        """Return the base URL, e.g. `http://127.0.0.1:41234`."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    @property
    def running(self) -> bool:
        """Say whether the server task is still running."""
        return not self._task.done()

    async def stop(self, grace: float = STOP_TIMEOUT_S) -> None:
        """Stop serving: graceful first, then forced, then cancelled; idempotent."""
        self._server.should_exit = True
        done, _ = await asyncio.wait({self._task}, timeout=grace)
        if not done:
            self._server.force_exit = True
            done, _ = await asyncio.wait({self._task}, timeout=1.0)
        if not done:
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=1.0)
        if self._task.done() and not self._task.cancelled() and self._task.exception():
            logger.warning("HTTP server ended with %r", self._task.exception())


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio turns Nagle off only on such sockets, and without that a
    # keep-alive response waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


async def serve_in_loop(
    app: Any,
    host: str = "127.0.0.1",
    port: int = 0,
    log_level: str = "warning",
    tls: ssl.SSLContext | None = None,
    *,
    header_timeout_s: float = HEADER_TIMEOUT_S,
    max_connections: int = MAX_CONNECTIONS,
) -> RunningServer:
    """Start serving `app` in the current loop and return once it accepts connections.

    With `tls`, connections are TLS handshakes with that context (HTTPS).
    """
    sock = _bind(host, port)
    config = uvicorn.Config(
        app,
        host=host,
        port=sock.getsockname()[1],
        log_level=log_level,
        log_config=None,
        access_log=False,
        lifespan="off",
        ws="none",
        timeout_graceful_shutdown=STOP_TIMEOUT_S,
        http=guarded_protocol(header_timeout_s, max_connections),
        timeout_keep_alive=KEEP_ALIVE_S,
        # No limit_concurrency: it answers 503 once `max_connections` are open, even to a
        # scrape on one of them; the protocol closes connections past the cap instead.
    )
    if tls is not None:
        config.load()  # serve() skips loading a loaded config, so our context stays
        config.ssl = tls
    server = _LoopServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name=f"http-{port}")
    scheme = "https" if tls is not None else "http"
    running = RunningServer(host, sock.getsockname()[1], server, task, scheme)
    try:
        await asyncio.wait_for(_until_started(server, task), START_TIMEOUT_S)
    except BaseException:
        await running.stop(grace=1.0)
        sock.close()
        raise
    return running


async def _until_started(server: _LoopServer, task: asyncio.Task[None]) -> None:
    while not server.started:
        if task.done():
            raise RuntimeError("HTTP server exited before it started")
        await asyncio.sleep(0.01)


def stop_on_signals() -> asyncio.Event:
    """Return an event that SIGINT or SIGTERM sets."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        # Not available on Windows or outside the main thread: then Ctrl-C still raises there.
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, _on_signal, stop, sig)
    return stop


def _on_signal(stop: asyncio.Event, sig: signal.Signals) -> None:
    logger.info("received %s: shutting down", sig.name)
    stop.set()
