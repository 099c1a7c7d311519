"""Serve an ACP (Computer Agents) world through its connected-runtime routes, as a Starlette app.

    GET /v1/servers/{serverId}/runtime/agent/runs           {serverId, agentRuntimeId,
                                                             object: "list", data, runs}
    GET /v1/servers/{serverId}/runtime/agent/runs/{runId}   {serverId, agentRuntimeId, run, thread}
    GET .../runs/{runId}/events                             ... + events: [log line]

The list has only `limit` (default 20, max 100), newest first, no cursor: older runs cannot be
reached. The same items come in both `data` and `runs`. Auth is `Authorization: Bearer` or
`X-API-Key`; errors are `{error, message, code}`. ACP has no list of servers: they are configured.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from exporter.simulator.acp_runs import (
    AcpFlavor,
    AcpRun,
    AcpServer,
    events_payload,
    run_payload,
    thread_payload,
)
from exporter.simulator.gate import ApiError, Dialect, bearer, bind, build_app
from exporter.simulator.paging import query_limit
from exporter.simulator.settings import SimulatorSettings
from exporter.simulator.world import BaseWorld, Clock

Payload = dict[str, Any]
AcpWorld = BaseWorld[AcpServer, AcpRun]
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
_CODES = {400: "invalid_request", 401: "unauthorized", 404: "not_found", 429: "rate_limited"}


def acp_world(settings: SimulatorSettings, clock: Clock) -> AcpWorld:
    """Build a simulated ACP world."""
    return BaseWorld(AcpFlavor(settings), settings, clock)


def _server(request: Request, world: AcpWorld) -> AcpServer:
    server = world.agent(request.path_params["serverId"])
    if server is None:
        raise ApiError(404, "Resource not found")
    return server


def _run(request: Request, world: AcpWorld) -> tuple[AcpServer, AcpRun]:
    server = _server(request, world)
    run = world.run(server.id, request.path_params["runId"])
    if run is None:
        raise ApiError(404, "Run not found")
    return server, run


def list_runs(request: Request, world: AcpWorld) -> Payload:
    """Answer the runtime runs list: one page of the newest runs, in both `data` and `runs`."""
    server = _server(request, world)
    limit = query_limit(request, DEFAULT_LIMIT, MAX_LIMIT)
    now_ms = world.now_ms()
    newest = list(reversed(world.runs(server.id)[-limit:]))
    items = [run_payload(run, now_ms) for run in newest]
    return {
        "serverId": server.id,
        "agentRuntimeId": server.runtime_id,
        "object": "list",
        "data": items,
        "runs": [dict(item) for item in items],
    }


def get_run(request: Request, world: AcpWorld) -> Payload:
    """Answer one runtime run with its thread."""
    server, run = _run(request, world)
    now_ms = world.now_ms()
    return {
        "serverId": server.id,
        "agentRuntimeId": server.runtime_id,
        "run": run_payload(run, now_ms),
        "thread": thread_payload(run, now_ms),
    }


def get_events(request: Request, world: AcpWorld) -> Payload:
    """Answer one runtime run with its thread and log-line events."""
    answer = get_run(request, world)
    _, run = _run(request, world)
    return answer | {"events": events_payload(run, world.now_ms())}


def _error(
    status: int, message: str, code: str | None, headers: Mapping[str, str] | None
) -> Response:
    body = {"error": message, "message": message, "code": _CODES.get(status, "internal_error")}
    return JSONResponse(body, status_code=status, headers=headers)


def _credentials(request: Request) -> str | None:
    return bearer(request) or request.headers.get("x-api-key")


DIALECT = Dialect(
    credentials=_credentials,
    unauthorized=lambda: _error(401, "Missing or invalid API key", None, None),
    error=_error,
)


def create_app(world: AcpWorld) -> Starlette:
    """Build the fake ACP app over `world`; `app.state` holds world, faults and requests."""
    runs = "/v1/servers/{serverId}/runtime/agent/runs"
    handlers: list[tuple[str, Callable[[Request, AcpWorld], Payload]]] = [
        (runs, list_runs),
        (runs + "/{runId}", get_run),
        (runs + "/{runId}/events", get_events),
    ]
    return build_app(world, DIALECT, [(path, bind(fn, world)) for path, fn in handlers])
