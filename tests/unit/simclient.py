"""An in-process client for the simulator's platform apps, on a fake clock."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from starlette.applications import Starlette

from exporter.simulator.platforms import build
from exporter.simulator.settings import SimulatorSettings
from exporter.simulator.world import BaseWorld
from tests.unit.fakeclock import FakeClock

START = 1_775_186_055.0  # 2026-04-03T03:14:15Z


class SimClient:
    """One platform's (or all platforms') app on a fake clock, with one-call requests."""

    def __init__(self, platform: str, **knobs: Any) -> None:
        knobs.setdefault("rate_limit", None)
        self.clock = FakeClock(START)
        self.app: Starlette
        self.app, self.parts = build(platform, SimulatorSettings(**knobs), self.clock)
        self.world: BaseWorld[Any, Any] = self.parts[0].world
        self.agent_id: str = self.world.agents[0].id

    def get(
        self, path: str, headers: dict[str, str] | None = None, **params: Any
    ) -> httpx.Response:
        """Send a GET and return the response."""
        return asyncio.run(self._send("GET", path, headers=headers or {}, params=params))

    def post(self, path: str, body: Any = None) -> httpx.Response:
        """Send a POST with a JSON body and return the response."""
        return asyncio.run(self._send("POST", path, json=body))

    def json(self, path: str, **params: Any) -> Any:
        """GET a path that must answer 200 and return its JSON."""
        response = self.get(path, **params)
        assert response.status_code == 200, (response.status_code, response.text)
        return response.json()

    def settle(self, seconds: float = 3600.0) -> None:
        """Stop arrivals and let every run in flight finish."""
        self.world.pause_arrivals()
        self.clock.advance(seconds)

    async def _send(self, method: str, path: str, **kw: Any) -> httpx.Response:
        transport = httpx.ASGITransport(app=self.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
            return await client.request(method, path, **kw)
