"""Serve an ElizaOS world through the agent server's `/api/agents` routes, as a Starlette app.

    GET /api/agents                          {success, data: {agents: [{id, name, characterName,
                                             bio, status}]}}
    GET /api/agents/{agentId}                {success, data: agent}      404 NOT_FOUND
    GET /api/agents/{agentId}/runs           {success, data: {runs, total, hasMore}}
    GET /api/agents/{agentId}/runs/{runId}   {success, data: {summary, events}}

The runs list behaves like `runs.ts` on its SQL fast path: no cursor; `limit` is
`min(Number(limit) || 20, 100)` (at least 1); `from`/`to` are epoch ms, inclusive, and bound the
run_event *logs*, newest first, at most `max(limit*20, 200)` of them; each run is folded from its
logs inside the bounds only (so a cut-off start gives `startedAt: null`, a cut-off end shows
`started`), and only `completed`, `timeout` and `error` ends are folded (a run that ended `muted`,
`self`... shows `started`, its end only in its detail); runs sort by startedAt desc, null as 0;
`total` counts the folded runs and `hasMore = total > limit`. Without `from` and `to` the answer
is cached for 15 s per (agent, roomId, status, limit, X-Entity-Id). An unknown run's detail is 200
with status `started` and no events. Non-UUID ids are 400 INVALID_ID. Errors are `{success: false,
error: {code, message}}`; when a token is configured every route needs `X-API-KEY`, else 401
with the real server's JSON body `{"error": "API key required", "message": "Missing or invalid
X-API-KEY header"}` (no envelope).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from exporter.simulator import quirks
from exporter.simulator.elizaos_runs import (
    DRIFTS,
    LISTED_ENDS,
    ElizaAgent,
    ElizaFlavor,
    ElizaRun,
    counts_of,
    events_of,
)
from exporter.simulator.gate import ApiError, Dialect, bind, build_app
from exporter.simulator.settings import SimulatorSettings
from exporter.simulator.timeline import max_span_ms
from exporter.simulator.world import BaseWorld, Clock

Payload = dict[str, Any]
ElizaWorld = BaseWorld[ElizaAgent, ElizaRun]
CACHE_MS = 15_000
_FILTERS = ("started", "completed", "timeout", "error")
UNAUTHORIZED = {"error": "API key required", "message": "Missing or invalid X-API-KEY header"}


def elizaos_world(settings: SimulatorSettings, clock: Clock) -> ElizaWorld:
    """Build a simulated ElizaOS world."""
    return BaseWorld(ElizaFlavor(settings), settings, clock)


def ok(data: Any) -> Payload:
    """Wrap a payload in the success envelope."""
    return {"success": True, "data": data}


def _uuid(raw: str, what: str) -> str:
    try:
        uuid.UUID(raw)
    except ValueError:
        raise ApiError(400, f"Invalid {what} ID format", "INVALID_ID") from None
    return raw


def _agent(request: Request, world: ElizaWorld) -> ElizaAgent:
    agent = world.agent(_uuid(request.path_params["agentId"], "agent"))
    if agent is None:
        raise ApiError(404, "Agent not found", "NOT_FOUND")
    return agent


def _agent_payload(agent: ElizaAgent) -> Payload:
    return {
        "id": agent.id,
        "name": agent.name,
        "characterName": agent.name,
        "bio": agent.bio,
        "status": "active",
    }


def list_agents(request: Request, world: ElizaWorld) -> Payload:
    """Answer `GET /api/agents`: active first, then by name."""
    agents = sorted(world.agents, key=lambda agent: agent.name)
    return ok({"agents": [_agent_payload(agent) for agent in agents]})


def get_agent(request: Request, world: ElizaWorld) -> Payload:
    """Answer `GET /api/agents/{agentId}`."""
    agent = _agent(request, world)
    return ok(
        _agent_payload(agent)
        | {
            "username": agent.name.lower(),
            "enabled": True,
            "createdAt": agent.created_ms,
            "updatedAt": agent.created_ms,
        }
    )


def _number(raw: str | None) -> float | None:
    try:
        value = float(raw) if raw not in (None, "") else math.nan
    except ValueError:
        value = math.nan
    return None if math.isnan(value) else value


def _limit(raw: str | None) -> int:
    value = _number(raw) or 20  # Math.min(Number(limit) || 20, 100)
    return max(1, math.floor(min(value, 100)))


def fold(
    runs: list[ElizaRun], now_ms: int, bounds: tuple[float, float], cap: int, span: int
) -> list[Payload]:
    """Fold the newest `cap` run_event logs inside `bounds` into run summaries, one per run."""
    logs: list[tuple[int, str, ElizaRun]] = []
    floor_ms = -math.inf
    for run in reversed(runs):  # newest first; stop once no older run can reach the newest `cap`
        if run.created_ms + span < floor_ms:
            break
        logs += [(at, st, run) for at, st in run.logs(now_ms) if bounds[0] <= at <= bounds[1]]
        if len(logs) >= cap and floor_ms == -math.inf:
            floor_ms = sorted(at for at, _, _ in logs)[-cap]
    logs.sort(key=lambda log: log[0], reverse=True)
    folded: dict[str, tuple[ElizaRun, Payload]] = {}
    for at, status, run in logs[:cap]:
        _, summary = folded.setdefault(run.id, (run, _blank(run)))
        if status == "started":
            summary["startedAt"] = at
        elif status in LISTED_ENDS:  # `muted`, `self`... are not folded: the run shows `started`
            summary["status"], summary["endedAt"] = status, at
    for run, summary in folded.values():
        if summary["startedAt"] is not None and summary["endedAt"] is not None:
            summary["durationMs"] = summary["endedAt"] - summary["startedAt"]
        quirks.spoil(summary, run.drift, DRIFTS)
    return [summary for _, summary in folded.values()]


def _blank(run: ElizaRun) -> Payload:
    return {
        "runId": run.id,
        "status": "started",
        "startedAt": None,
        "endedAt": None,
        "durationMs": None,
        "messageId": run.message_id,
        "roomId": run.room_id,
        "entityId": run.entity_id,
        "metadata": {},
        "counts": {},
    }


class RunsList:
    """Answer `GET /api/agents/{agentId}/runs`, with the server's 15 s cache."""

    def __init__(self, world: ElizaWorld) -> None:
        self.world = world
        self._cache: dict[tuple[str | None, ...], tuple[int, Payload]] = {}

    def __call__(self, request: Request) -> Payload:
        """Answer one list request."""
        agent, query = _agent(request, self.world), request.query_params
        room = query.get("roomId")
        if room is not None:
            _uuid(room, "room")
        now_ms = self.world.now_ms()
        cached = "from" not in query and "to" not in query
        key = (
            agent.id,
            room,
            query.get("status"),
            query.get("limit"),
            request.headers.get("x-entity-id"),
        )
        if cached and key in self._cache and self._cache[key][0] > now_ms:
            return self._cache[key][1]
        answer = ok(self._list(agent, query, now_ms))
        if cached:
            self._cache = {k: hit for k, hit in self._cache.items() if hit[0] > now_ms}
            self._cache[key] = (now_ms + CACHE_MS, answer)
        return answer

    def _list(self, agent: ElizaAgent, query: Mapping[str, str], now_ms: int) -> Payload:
        limit, room, status = _limit(query.get("limit")), query.get("roomId"), query.get("status")
        lo, hi = _number(query.get("from")), _number(query.get("to"))
        bounds = (-math.inf if lo is None else lo, math.inf if hi is None else hi)
        runs = [run for run in self.world.runs(agent.id) if room is None or run.room_id == room]
        span = max_span_ms(self.world.settings)
        summaries = fold(runs, now_ms, bounds, max(limit * 20, 200), span)
        if status in _FILTERS:
            summaries = [summary for summary in summaries if summary["status"] == status]
        summaries.sort(key=lambda summary: summary["startedAt"] or 0, reverse=True)
        for summary in summaries[:limit]:
            run = self.world.find_run(summary["runId"])
            summary["counts"] = counts_of(events_of(run, now_ms)) if run else {}
        return {
            "runs": summaries[:limit],
            "total": len(summaries),
            "hasMore": len(summaries) > limit,
        }


def get_run(request: Request, world: ElizaWorld) -> Payload:
    """Answer `GET /api/agents/{agentId}/runs/{runId}`; an unknown run is `started`, no events."""
    agent = _agent(request, world)
    run_id = _uuid(request.path_params["runId"], "run")
    now_ms = world.now_ms()
    run = world.run(agent.id, run_id)
    if run is None:
        summary = {
            "runId": run_id,
            "status": "started",
            "startedAt": None,
            "endedAt": None,
            "durationMs": None,
            "entityId": agent.id,
            "counts": counts_of([]),
        }
        return ok({"summary": summary, "events": []})
    events = events_of(run, now_ms)
    done = run.terminal(now_ms)
    summary = _blank(run) | {
        "status": run.status(now_ms),
        "startedAt": run.times.started_ms,
        "endedAt": run.times.completed_ms if done else None,
        "durationMs": run.times.duration_ms if done else None,
        "counts": counts_of(events),
    }
    del summary["metadata"]
    return ok({"summary": quirks.spoil(summary, run.drift, DRIFTS), "events": events})


def _error(
    status: int, message: str, code: str | None, headers: Mapping[str, str] | None
) -> Response:
    if status == 429:
        message = "Too many requests. Please try again later."
    code = code or ("NOT_FOUND" if status == 404 else "INTERNAL_SERVER_ERROR")
    body = {"success": False, "error": {"code": code, "message": message}}
    return JSONResponse(body, status_code=status, headers=headers)


DIALECT = Dialect(
    credentials=lambda request: request.headers.get("x-api-key"),
    unauthorized=lambda: JSONResponse(UNAUTHORIZED, status_code=401),
    error=_error,
)


def create_app(world: ElizaWorld) -> Starlette:
    """Build the fake ElizaOS app over `world`; `app.state` holds world, faults and requests."""
    handlers: list[tuple[str, Callable[[Request], Payload]]] = [
        ("/api/agents", bind(list_agents, world)),
        ("/api/agents/{agentId}", bind(get_agent, world)),
        ("/api/agents/{agentId}/runs", RunsList(world)),
        ("/api/agents/{agentId}/runs/{runId}", bind(get_run, world)),
    ]
    return build_app(world, DIALECT, handlers)
