"""The exporter's HTTP endpoints: /metrics, /healthz (liveness) and /readyz (readiness)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from exporter import __version__
from exporter.poll.health import Health
from exporter.sinks.metrics.exposition import render

_INDEX = """<!doctype html><html><head><title>agent-runs-exporter</title></head><body>
<h1>agent-runs-exporter {version}</h1>
<ul><li><a href="metrics">/metrics</a></li><li><a href="healthz">/healthz</a></li>
<li><a href="readyz">/readyz</a></li></ul></body></html>"""


def create_app(
    registry: CollectorRegistry, health: Health, clock: Callable[[], float]
) -> Starlette:
    """Build the ASGI app serving metrics from `registry` and probes from `health`."""

    async def index(_request: Request) -> Response:
        return HTMLResponse(_INDEX.format(version=__version__))

    async def healthz(_request: Request) -> Response:
        alive, stalled = health.alive(clock())
        body = {"status": "ok" if alive else "stalled", "stalled_sources": stalled}
        return JSONResponse(body, status_code=200 if alive else 503)

    async def readyz(_request: Request) -> Response:
        ready, sources = health.ready(clock())
        stale = sorted(name for name, report in sources.items() if not report["ready"])
        body = {
            "status": "ready" if ready else "not ready",
            "stale_sources": stale,
            "sources": sources,
            "state": health.state(),
        }
        return JSONResponse(body, status_code=200 if ready else 503)

    async def metrics(request: Request) -> Response:
        # OpenMetrics (with exemplars) only when the scraper asks for it, as Prometheus does;
        # gzip when it accepts it, as Prometheus does too.
        headers = request.headers
        body, content_type, encoding = render(
            registry, headers.get("accept", ""), headers.get("accept-encoding", "")
        )
        extra = {"Content-Encoding": encoding} if encoding else None
        return Response(body, media_type=content_type, headers=extra)

    return Starlette(
        routes=[
            Route("/", index),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
        ]
    )
