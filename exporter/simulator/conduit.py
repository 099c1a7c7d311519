"""Serve a `World` through Conduit's agent and agent-run endpoints, as a Starlette app.

    GET /v1/agents                          {data: [agent], next_cursor, has_more}
    GET /v1/agents/{id}                     {data: agent}               404 Agent not found
    GET /v1/agents/{id}/runs                {data: [run], next_cursor, has_more}
    GET /v1/agents/{id}/runs/{run_id}       {data: run + detail}        404 Run not found

Every error body is `{"error": "..."}`. Requests pass the shared `gate` (latency, bearer auth:
401 when a token is configured and missing or wrong, 429 with Retry-After, 5xx), then the
handler: a `workspace_id` other than the world's is 403 "Invalid workspace id"; a bad `limit`,
`status` or `cursor` is 400. The test-only control endpoints live under `/_simulator/`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from exporter.simulator.gate import ApiError, Dialect, bearer, bind, build_app
from exporter.simulator.paging import encode_cursor, newest_first, query_cursor, query_limit
from exporter.simulator.payloads import agent_payload, run_detail, run_summary
from exporter.simulator.records import Agent, SimRun
from exporter.simulator.world import World

Payload = dict[str, Any]

STATUSES = ("accepted", "running", "completed", "failed")
JSON_TYPE = "application/json"
DEFAULT_LIMIT = 20
MAX_LIMIT = 100


def error_response(status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    """Build a Conduit error response `{"error": message}`."""
    return JSONResponse({"error": message}, status_code=status, headers=headers)


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
    limit, before = query_limit(request, DEFAULT_LIMIT, MAX_LIMIT), query_cursor(request)
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
    limit, before, status = (
        query_limit(request, DEFAULT_LIMIT, MAX_LIMIT),
        query_cursor(request),
        _query_status(request),
    )
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


def _error(
    status: int, message: str, code: str | None, headers: Mapping[str, str] | None
) -> Response:
    return error_response(status, message, headers)


DIALECT = Dialect(
    credentials=bearer,
    unauthorized=lambda: error_response(401, "Invalid or missing API token"),
    error=_error,
)


def create_app(world: World) -> Starlette:
    """Build the fake Conduit app over `world`; `app.state` holds world, faults and requests."""
    handlers: list[tuple[str, Callable[[Request, World], Payload]]] = [
        ("/v1/agents", list_agents),
        ("/v1/agents/{id}", get_agent),
        ("/v1/agents/{id}/runs", list_runs),
        ("/v1/agents/{id}/runs/{run_id}", get_run),
    ]
    return build_app(world, DIALECT, [(path, bind(fn, world)) for path, fn in handlers])
