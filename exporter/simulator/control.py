"""Test-only control endpoints of a platform app, under `/_simulator/`; no real platform has them.

GET  /_simulator/truth      {platform, now, paused, agents: [{id, name}], counts, runs: [{id,
                            agent_id, status, terminal, documented, invalid_fields, ...}]}
                            (+ workspace_id for Conduit); `id` is the id the exporter dedupes
                            on, `agent_id` the id in the URL; `documented` false: the exporter
                            counts the run `unknown`; `invalid_fields`: what it should drop
GET  /_simulator/requests   answered platform requests per (endpoint, status) and per minute
POST /_simulator/pause      stop new arrivals (runs in flight still finish)
POST /_simulator/resume     start arrivals again
GET  /_simulator/faults     current fault knobs
POST /_simulator/faults     change fault knobs: JSON object with any of latency, error_ratio,
                            throttle_ratio, retry_after, rate_limit, slow_ratio, slow_seconds,
                            malformed_ratio; 400 on a bad key or value
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from exporter.simulator.faults import Faults
from exporter.simulator.records import iso_ms
from exporter.simulator.traffic import RequestLog
from exporter.simulator.world import BaseWorld

PREFIX = "/_simulator"


def truth_payload(world: BaseWorld[Any, Any]) -> dict[str, Any]:
    """Return the world's ground truth as a JSON-ready dict."""
    runs = world.truth_rows()
    counts: dict[str, Counter[str]] = {agent.id: Counter() for agent in world.agents}
    for run in runs:
        counts[run["agent_id"]][run["status"]] += 1
    return {
        "platform": world.platform,
        "now": iso_ms(world.now_ms()),
        "paused": world.paused,
        **world.truth_header(),
        "agents": [{"id": agent.id, "name": agent.name} for agent in world.agents],
        "counts": {agent_id: dict(by_status) for agent_id, by_status in counts.items()},
        "runs": runs,
    }


def routes(world: BaseWorld[Any, Any], faults: Faults, requests: RequestLog) -> list[BaseRoute]:
    """Build the control routes over the app's world, faults and request log."""

    async def truth(request: Request) -> Response:
        return JSONResponse(truth_payload(world))

    async def request_counts(request: Request) -> Response:
        return JSONResponse(requests.snapshot())

    async def pause(request: Request) -> Response:
        world.pause_arrivals()
        return JSONResponse({"paused": world.paused})

    async def resume(request: Request) -> Response:
        world.resume_arrivals()
        return JSONResponse({"paused": world.paused})

    async def show_faults(request: Request) -> Response:
        return JSONResponse(faults.knobs.as_dict())

    async def change_faults(request: Request) -> Response:
        try:
            changes = json.loads(await request.body())
            if not isinstance(changes, dict):
                raise ValueError("body must be a JSON object")
            faults.knobs = faults.knobs.updated(changes)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(faults.knobs.as_dict())

    return [
        Route("/truth", truth, methods=["GET"]),
        Route("/requests", request_counts, methods=["GET"]),
        Route("/pause", pause, methods=["POST"]),
        Route("/resume", resume, methods=["POST"]),
        Route("/faults", show_faults, methods=["GET"]),
        Route("/faults", change_faults, methods=["POST"]),
    ]
