"""Assemble a fake platform app: latency, auth, refusals and counting around each handler.

Every platform request goes through, in order: the `latency` sleep, the platform's auth check
(when a token is configured), the faults of `faults.Faults` (429 with Retry-After, 5xx, an answer
held `slow_seconds`, a body cut in half), then the handler. A handler returns a JSON-ready payload
(or a ready `Response`), or raises `ApiError`. How a platform words errors and checks credentials
is its `Dialect`. Answers are counted in a `traffic.RequestLog` under the route template, in the
minute the request arrived. The control endpoints under `/_simulator/` need no
token and are neither delayed, refused nor counted.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from exporter.simulator import control
from exporter.simulator.faults import FaultKnobs, Faults, Refusal
from exporter.simulator.traffic import RequestLog
from exporter.simulator.world import BaseWorld

Handler = Callable[[Request], Any]
ErrorRenderer = Callable[[int, str, str | None, Mapping[str, str] | None], Response]


class ApiError(Exception):
    """An error answer a handler gives instead of a payload; `code` is for coded platforms."""

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


@dataclass(frozen=True, slots=True)
class Dialect:
    """How one platform reads credentials and words its error answers."""

    credentials: Callable[[Request], str | None]  # the token the request carries, if any
    unauthorized: Callable[[], Response]
    error: ErrorRenderer  # (status, message, code, headers) -> Response


def bearer(request: Request) -> str | None:
    """Return the token of an `Authorization: Bearer` header, or None."""
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return given if scheme.lower() == "bearer" else None


W = TypeVar("W")


def bind(handler: Callable[[Request, W], Any], world: W) -> Handler:
    """Close a `(request, world)` handler over its world."""
    return lambda request: handler(request, world)


def refusal_code(refusal: Refusal) -> str:
    """Name a refusal for platforms whose errors carry a code."""
    return "RATE_LIMIT_EXCEEDED" if refusal.status == 429 else "INTERNAL_SERVER_ERROR"


class Gate:
    """Apply latency, auth, refusals and counting around each handler of one app."""

    def __init__(
        self,
        token: str | None,
        dialect: Dialect,
        faults: Faults,
        requests: RequestLog,
        clock: Callable[[], float] | None = None,
    ):
        self.dialect, self.faults, self.requests = dialect, faults, requests
        self._expected = token.encode() if token else None
        self._clock = clock

    def route(self, path: str, handler: Handler) -> Route:
        """Wrap a handler into a GET route whose answers are gated and counted."""

        async def endpoint(request: Request) -> Response:
            arrived = None if self._clock is None else self._clock()  # a slow answer counts then
            response = await self._answer(request, handler)
            self.requests.record(path, response.status_code, arrived)
            return response

        return Route(path, endpoint, methods=["GET"])

    async def _answer(self, request: Request, handler: Handler) -> Response:
        if self.faults.knobs.latency > 0:
            await asyncio.sleep(self.faults.knobs.latency)
        if not self._authorized(request):
            return self.dialect.unauthorized()
        fault = self.faults.choose()
        if isinstance(fault, Refusal):
            wait = fault.retry_after
            headers = None if wait is None else {"Retry-After": str(wait)}
            return self.dialect.error(fault.status, fault.error, refusal_code(fault), headers)
        if fault is not None and fault.delay > 0:
            await asyncio.sleep(fault.delay)
        try:
            answer = handler(request)
        except ApiError as exc:
            return self.dialect.error(exc.status, exc.message, exc.code, None)
        response = answer if isinstance(answer, Response) else JSONResponse(answer)
        if fault is not None and fault.malformed:
            cut = bytes(response.body)[: len(response.body) // 2]
            return Response(cut, 200, media_type=response.media_type or "application/json")
        return response

    def _authorized(self, request: Request) -> bool:
        if self._expected is None:
            return True
        given = self.dialect.credentials(request)
        return given is not None and hmac.compare_digest(given.encode(), self._expected)


def build_app(
    world: BaseWorld[Any, Any], dialect: Dialect, handlers: Sequence[tuple[str, Handler]]
) -> Starlette:
    """Build a platform app over `world`; `app.state` holds world, faults and requests."""
    settings = world.settings
    faults = Faults(FaultKnobs.from_settings(settings), settings.seed, world.clock)
    requests = RequestLog(world.clock)
    gate = Gate(settings.token, dialect, faults, requests, world.clock)
    routes: list[BaseRoute] = [gate.route(path, handler) for path, handler in handlers]
    routes.append(Mount(control.PREFIX, routes=control.routes(world, faults, requests)))

    async def http_error(request: Request, exc: Exception) -> Response:
        if isinstance(exc, HTTPException):
            return dialect.error(exc.status_code, exc.detail, None, exc.headers)
        return dialect.error(500, "Internal server error", "INTERNAL_SERVER_ERROR", None)

    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error})
    app.state.world, app.state.faults, app.state.requests = world, faults, requests
    return app
