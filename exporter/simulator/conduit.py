"""Serve a `World` through Conduit's agent and agent-run endpoints, as a Starlette app.

    GET /v1/agents                          {data: [agent], next_cursor, has_more}
    GET /v1/agents/{id}                     {data: agent}               404 Agent not found
    GET /v1/agents/{id}/runs                {data: [run], next_cursor, has_more}
    GET /v1/agents/{id}/runs/{run_id}       {data: run + detail}        404 Run not found

Every error body is `{"error": "..."}`. Each Conduit request goes through, in order: the
`latency` sleep, bearer auth (401 when a token is configured and missing or wrong), the faults
of `faults.Faults` (429 with Retry-After, 5xx, a slow answer, a truncated body), then the
handler: a `workspace_id` other than the world's is 403 "Invalid workspace id"; a bad `limit`,
`status` or `cursor` is 400. Answers are counted in a `traffic.RequestLog`, in the minute the
request arrived. The test-only control endpoints live under `/_simulator/`
(see `control.py`); they need no token and are neither delayed, refused nor counted.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Callable, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from exporter.simulator import control
from exporter.simulator.faults import FaultKnobs, Faults, Refusal
from exporter.simulator.paging import CursorError, decode_cursor, encode_cursor, newest_first
from exporter.simulator.payloads import agent_payload, run_detail, run_summary
from exporter.simulator.records import Agent, SimRun
from exporter.simulator.traffic import RequestLog
from exporter.simulator.world import World

Payload = dict[str, Any]
Handler = Callable[[Request, World], Payload]

STATUSES = ("accepted", "running", "completed", "failed")
JSON_TYPE = "application/json"
DEFAULT_LIMIT = 20
MAX_LIMIT = 100


class ApiError(Exception):
    """An error answer a handler gives instead of a payload."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def error_response(status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    """Build a Conduit error response `{"error": message}`."""
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _query_limit(request: Request) -> int:
    raw = request.query_params.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise ApiError(400, f"limit must be an integer between 1 and {MAX_LIMIT}")
    return int(raw)


def _query_cursor(request: Request) -> tuple[int, str] | None:
    raw = request.query_params.get("cursor")
    if raw is None or raw == "":
        return None
    try:
        return decode_cursor(raw)
    except CursorError:
        raise ApiError(400, "Invalid cursor") from None


def _query_status(request: Request) -> str | None:
    raw = request.query_params.get("status")
    if raw is not None and raw not in STATUSES:
        raise ApiError(400, f"status must be one of {', '.join(STATUSES)}")
    return raw


def _check_workspace(request: Request, world: World) -> None:
    raw = request.query_params.get("workspace_id")
    if raw is not None and raw != world.workspace_id:
        raise ApiError(403, "Invalid workspace id")


def _agent(request: Request, world: World) -> Agent:
    _check_workspace(request, world)
    agent = world.agent(request.path_params["id"])
    if agent is None:
        raise ApiError(404, "Agent not found")
    return agent


def _page(items: list[Payload], last: tuple[int, str] | None, has_more: bool) -> Payload:
    cursor = encode_cursor(last) if has_more and last is not None else None
    return {"data": items, "next_cursor": cursor, "has_more": has_more}


def list_agents(request: Request, world: World) -> Payload:
    """Answer `GET /v1/agents`."""
    _check_workspace(request, world)
    limit, before = _query_limit(request), _query_cursor(request)
    ordered = sorted(world.agents, key=_agent_key)
    agents, has_more = newest_first(ordered, _agent_key, limit, before)
    last = _agent_key(agents[-1]) if agents else None
    return _page([agent_payload(agent) for agent in agents], last, has_more)


def _agent_key(agent: Agent) -> tuple[int, str]:
    return (agent.created_ms, agent.id)


def get_agent(request: Request, world: World) -> Payload:
    """Answer `GET /v1/agents/{id}`."""
    return {"data": agent_payload(_agent(request, world))}


def list_runs(request: Request, world: World) -> Payload:
    """Answer `GET /v1/agents/{id}/runs`."""
    agent = _agent(request, world)
    limit, before, status = _query_limit(request), _query_cursor(request), _query_status(request)
    now_ms = world.now_ms()

    def keep(run: SimRun) -> bool:
        return status is None or run.status(now_ms) == status

    runs, has_more = newest_first(world.runs(agent.id), _run_key, limit, before, keep)
    last = runs[-1].key if runs else None
    return _page([run_summary(run, now_ms) for run in runs], last, has_more)


def _run_key(run: SimRun) -> tuple[int, str]:
    return run.key


def get_run(request: Request, world: World) -> Payload:
    """Answer `GET /v1/agents/{id}/runs/{run_id}`."""
    agent = _agent(request, world)
    now_ms = world.now_ms()
    run = world.run(agent.id, request.path_params["run_id"])
    if run is None:
        raise ApiError(404, "Run not found")
    return {"data": run_detail(run, now_ms)}


class _Gate:
    """Apply latency, auth, refusals and counting around each Conduit handler."""

    def __init__(self, world: World, faults: Faults, requests: RequestLog) -> None:
        self.world, self.faults, self.requests = world, faults, requests
        token = world.settings.token
        self._expected = token.encode() if token else None

    def route(self, path: str, handler: Handler) -> Route:
        """Wrap a handler into a GET route whose answers are gated and counted."""

        async def endpoint(request: Request) -> Response:
            arrived = self.world.clock()  # a slow answer still counts in the minute it was asked
            response = await self._answer(request, handler)
            self.requests.record(path, response.status_code, arrived)
            return response

        return Route(path, endpoint, methods=["GET"])

    async def _answer(self, request: Request, handler: Handler) -> Response:
        if self.faults.knobs.latency > 0:
            await asyncio.sleep(self.faults.knobs.latency)
        if not self._authorized(request):
            return error_response(401, "Invalid or missing API token")
        fault = self.faults.choose()
        if isinstance(fault, Refusal):
            retry = None if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
            return error_response(fault.status, fault.error, retry)
        if fault is not None and fault.delay > 0:
            await asyncio.sleep(fault.delay)
        try:
            response = JSONResponse(handler(request, self.world))
        except ApiError as exc:
            return error_response(exc.status, exc.message)
        if fault is not None and fault.malformed:
            return Response(bytes(response.body)[: len(response.body) // 2], 200, None, JSON_TYPE)
        return response

    def _authorized(self, request: Request) -> bool:
        if self._expected is None:
            return True
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.encode(), self._expected)


async def _http_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, HTTPException):
        return error_response(exc.status_code, exc.detail, exc.headers)
    return error_response(500, "Internal server error")


def create_app(world: World) -> Starlette:
    """Build the fake Conduit app over `world`; `app.state` holds world, faults and requests."""
    faults = Faults(FaultKnobs.from_settings(world.settings), world.settings.seed, world.clock)
    requests = RequestLog(world.clock)
    gate = _Gate(world, faults, requests)
    routes = [
        gate.route("/v1/agents", list_agents),
        gate.route("/v1/agents/{id}", get_agent),
        gate.route("/v1/agents/{id}/runs", list_runs),
        gate.route("/v1/agents/{id}/runs/{run_id}", get_run),
        Mount(control.PREFIX, routes=control.routes(world, faults, requests)),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: _http_error})
    app.state.world, app.state.faults, app.state.requests = world, faults, requests
    return app
