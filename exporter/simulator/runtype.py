"""Serve a Runtype world through Runtype's agent and execution endpoints, as a Starlette app.

    GET /v1/agents                                    {data: [agent], pagination}
    GET /v1/agents/{id}                               agent                  404 Agent not found
    GET /v1/agents/{id}/executions                    {data: [execution], pagination}
    GET /v1/agents/{id}/executions/{executionId}      execution + detail     404 Execution not found
    GET /v1/agents/{id}/executions/{executionId}/tool-calls               {toolCalls: [...]}
    GET /v1/agents/{id}/executions/{executionId}/tool-calls/{toolCallId}  full tool call

Lists are newest first with an opaque `cursor`; `pagination` is `{nextCursor, prevCursor, hasMore,
hasPrev, limit, currentOffset}` plus `totalCount, totalPages, currentPage` with `includeCount=true`.
Executions filter on `status`, `parentExecutionId` and `executionId`; `view=compact` drops
`finalOutput` and shortens long strings. Auth is `Authorization: Bearer`; every error body is
`{"error": "..."}`; requests pass the shared `gate` (latency, 401, 429 + Retry-After, 5xx).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from exporter.simulator import runtype_payloads as render
from exporter.simulator.gate import ApiError, Dialect, bearer, bind, build_app
from exporter.simulator.paging import encode_cursor, query_cursor, query_limit
from exporter.simulator.runtype_runs import STATUSES, Execution, RuntypeAgent, RuntypeFlavor
from exporter.simulator.settings import SimulatorSettings
from exporter.simulator.world import BaseWorld, Clock

Payload = dict[str, Any]
RuntypeWorld = BaseWorld[RuntypeAgent, Execution]
T = TypeVar("T")
DEFAULT_LIMIT = 20
MAX_LIMIT = 100


def runtype_world(settings: SimulatorSettings, clock: Clock) -> RuntypeWorld:
    """Build a simulated Runtype world."""
    return BaseWorld(RuntypeFlavor(settings), settings, clock)


def _page(
    request: Request, items: Sequence[T], key: Callable[[T], tuple[int, str]]
) -> tuple[list[T], Payload]:
    """Cut the page after the cursor from `items` (oldest first) and describe it, Runtype style."""
    limit, before = query_limit(request, DEFAULT_LIMIT, MAX_LIMIT), query_cursor(request)
    end = len(items) if before is None else bisect.bisect_left(items, before, key=key)
    page = list(reversed(items[max(0, end - limit) : end]))
    has_more = end > limit
    pagination: Payload = {
        "nextCursor": encode_cursor(key(page[-1])) if has_more and page else None,
        "prevCursor": None,  # backwards paging is not simulated
        "hasMore": has_more,
        "hasPrev": before is not None,
        "limit": limit,
        "currentOffset": len(items) - end,
    }
    if request.query_params.get("includeCount") == "true":
        pages = max(1, math.ceil(len(items) / limit))
        current = (len(items) - end) // limit + 1
        pagination |= {"totalCount": len(items), "totalPages": pages, "currentPage": current}
    return page, pagination


def _agent(request: Request, world: RuntypeWorld) -> RuntypeAgent:
    agent = world.agent(request.path_params["id"])
    if agent is None:
        raise ApiError(404, "Agent not found")
    return agent


def _execution(request: Request, world: RuntypeWorld) -> Execution:
    agent = _agent(request, world)
    run = world.run(agent.id, request.path_params["executionId"])
    if run is None:
        raise ApiError(404, "Execution not found")
    return run


def _last_run_ms(world: RuntypeWorld, agent_id: str) -> int | None:
    runs = world.runs(agent_id)
    return runs[-1].created_ms if runs else None


def list_agents(request: Request, world: RuntypeWorld) -> Payload:
    """Answer `GET /v1/agents`."""
    world.now_ms()
    ordered = sorted(world.agents, key=_agent_key)
    agents, pagination = _page(request, ordered, _agent_key)
    data = [render.agent_payload(agent, _last_run_ms(world, agent.id)) for agent in agents]
    return {"data": data, "pagination": pagination}


def _agent_key(agent: RuntypeAgent) -> tuple[int, str]:
    return (agent.created_ms, agent.id)


def get_agent(request: Request, world: RuntypeWorld) -> Payload:
    """Answer `GET /v1/agents/{id}`."""
    world.now_ms()
    agent = _agent(request, world)
    return render.agent_detail(agent, _last_run_ms(world, agent.id))


def list_executions(request: Request, world: RuntypeWorld) -> Payload:
    """Answer `GET /v1/agents/{id}/executions`."""
    agent = _agent(request, world)
    now_ms = world.now_ms()
    keep = _filter(request.query_params, now_ms)
    kept = [run for run in world.runs(agent.id) if keep(run)]
    runs, pagination = _page(request, kept, _run_key)
    compact = request.query_params.get("view") == "compact"
    data = [render.execution_payload(run, now_ms, compact) for run in runs]
    return {"data": data, "pagination": pagination}


def _filter(query: Mapping[str, str], now_ms: int) -> Callable[[Execution], bool]:
    status = query.get("status")
    if status is not None and status not in STATUSES:
        raise ApiError(400, f"status must be one of {', '.join(STATUSES)}")
    parent, only = query.get("parentExecutionId"), query.get("executionId")

    def keep(run: Execution) -> bool:
        return (
            (status is None or run.status(now_ms) == status)
            and (parent is None or run.parent_id == parent)
            and (only is None or run.id == only)
        )

    return keep


def _run_key(run: Execution) -> tuple[int, str]:
    return run.key


def get_execution(request: Request, world: RuntypeWorld) -> Payload:
    """Answer `GET /v1/agents/{id}/executions/{executionId}`."""
    run = _execution(request, world)
    return render.execution_detail(run, world.now_ms())


def list_tool_calls(request: Request, world: RuntypeWorld) -> Payload:
    """Answer `GET /v1/agents/{id}/executions/{executionId}/tool-calls`."""
    run = _execution(request, world)
    return {"toolCalls": render.tool_calls(run, world.now_ms())}


def get_tool_call(request: Request, world: RuntypeWorld) -> Payload:
    """Answer `GET .../tool-calls/{toolCallId}` (the row `id`)."""
    run = _execution(request, world)
    call = render.tool_call_detail(run, request.path_params["toolCallId"], world.now_ms())
    if call is None:
        raise ApiError(404, "Tool call not found")
    return call


def _error(
    status: int, message: str, code: str | None, headers: Mapping[str, str] | None
) -> Response:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


DIALECT = Dialect(
    credentials=bearer,
    unauthorized=lambda: _error(401, "Unauthorized", None, None),
    error=_error,
)


def create_app(world: RuntypeWorld) -> Starlette:
    """Build the fake Runtype app over `world`; `app.state` holds world, faults and requests."""
    executions = "/v1/agents/{id}/executions"
    handlers: list[tuple[str, Callable[[Request, RuntypeWorld], Payload]]] = [
        ("/v1/agents", list_agents),
        ("/v1/agents/{id}", get_agent),
        (executions, list_executions),
        (executions + "/{executionId}", get_execution),
        (executions + "/{executionId}/tool-calls", list_tool_calls),
        (executions + "/{executionId}/tool-calls/{toolCallId}", get_tool_call),
    ]
    return build_app(world, DIALECT, [(path, bind(fn, world)) for path, fn in handlers])
