"""Serve an ASGI app with uvicorn, either inside a running asyncio loop or as a blocking command.

async serve_in_loop(app, host="127.0.0.1", port=0) -> RunningServer
    start uvicorn as a task of the current loop, without its signal handlers; port 0 picks a
    free port, read back from `RunningServer.port` / `.url`; `await server.stop()` to end it.

run_simulator(settings: SimulatorSettings, host: str, port: int) -> None
    entry point of the `simulate` CLI subcommand: build a World and the fake Conduit app,
    print the base URL, workspace, agent ids and names, then serve until SIGINT or SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import uvicorn

from exporter.simulator.conduit import create_app
from exporter.simulator.world import SimulatorSettings, World

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

    @property
    def url(self) -> str:
        """Return the base URL, e.g. `http://127.0.0.1:41234`."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

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
            logger.warning("simulator server ended with %r", self._task.exception())


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


async def serve_in_loop(
    app: Any, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning"
) -> RunningServer:
    """Start serving `app` in the current loop and return once it accepts connections."""
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
    )
    server = _LoopServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="simulator-server")
    running = RunningServer(host, sock.getsockname()[1], server, task)
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
            raise RuntimeError("simulator server exited before it started")
        await asyncio.sleep(0.01)


def run_simulator(settings: SimulatorSettings, host: str, port: int) -> None:
    """Serve a fake Conduit API for `settings` on host:port until SIGINT or SIGTERM."""
    asyncio.run(_serve_until_signalled(settings, host, port))


async def _serve_until_signalled(settings: SimulatorSettings, host: str, port: int) -> None:
    world = World(settings)
    running = await serve_in_loop(create_app(world), host, port)
    _announce(running, world)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        logger.info("stopping the simulator")
        await running.stop()


def _announce(running: RunningServer, world: World) -> None:
    # Printed, not logged: this is the command's output, and the user needs it to configure a run.
    print(f"Conduit simulator listening on {running.url}", flush=True)
    print(f"  workspace_id {world.workspace_id}", flush=True)
    for agent in world.agents:
        print(f"  agent {agent.id}  {agent.name}", flush=True)
    logger.info("simulator serving %d agents on %s", len(world.agents), running.url)
