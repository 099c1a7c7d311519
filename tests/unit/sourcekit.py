"""Helpers for source tests: fixtures, an HttpClient or a whole exporter over a mock transport,
page collection."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
import yaml

from exporter.app import Exporter
from exporter.config.models import load_settings
from exporter.sources.base import Page, Source
from exporter.sources.http import HttpClient, RetryPolicy

FIXTURES = Path(__file__).parent.parent / "fixtures"
Handler = Callable[[httpx.Request], httpx.Response]


def fixture(name: str) -> Any:
    """Return a JSON fixture from tests/fixtures."""
    return json.loads((FIXTURES / name).read_text())


def mock_client(
    handler: Handler,
    *,
    headers: Mapping[str, str] | None = None,
    calls: list[tuple[str, str]] | None = None,
) -> HttpClient:
    """Return an HttpClient whose requests `handler` answers; (endpoint, code) go to `calls`."""

    async def no_sleep(seconds: float) -> None:
        return None

    def on_response(endpoint: str, code: str) -> None:
        if calls is not None:
            calls.append((endpoint, code))

    return HttpClient(
        base_url="https://upstream.test",
        headers=headers or {},
        timeout_s=5,
        on_response=on_response,
        transport=httpx.MockTransport(handler),
        sleep=no_sleep,
        retry=RetryPolicy(attempts=2, base_delay_s=0.01, deadline_s=5),
    )


def collect_pages(source: Source, agent_id: str) -> list[Page]:
    """Read every page `source` yields for `agent_id`."""

    async def go() -> list[Page]:
        return [page async for page in source.pages(agent_id)]

    return asyncio.run(go())


def run_async(coroutine: Any) -> Any:
    """Run one coroutine to completion."""
    return asyncio.run(coroutine)


def mock_exporter(
    tmp_path: Path,
    transport: httpx.AsyncBaseTransport,
    clock: Callable[[], float],
    *,
    platform: str,
    agent: str,
    name: str = "src",
) -> Exporter:
    """Return an exporter polling one configured agent of `platform` through `transport`
    (5 s polls, an hour's lookback, no traces, no request budget)."""
    source = {
        "name": name,
        "platform": platform,
        "base_url": f"http://{platform}",
        "token": f"{platform}-test-token",
        "agents": [agent],
        "max_requests_per_minute": 0,
    }
    config = {
        "poll_interval": "5s",
        "lookback": "1h",
        "state": {"path": str(tmp_path / "state.db")},
        "traces": {"exporter": "none"},
        "sources": [source],
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return Exporter(load_settings(path, environ={}), clock=clock, transport=transport, environ={})
