"""Build the source object for a configured platform."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from exporter.config import SourceSettings
from exporter.sources.acp import AcpSource
from exporter.sources.base import Source
from exporter.sources.conduit import ConduitSource
from exporter.sources.elizaos import ElizaSource
from exporter.sources.http import HttpClient, ResponseHook
from exporter.sources.runtype import RuntypeSource

ENDPOINTS = {
    "conduit": ("list_agents", "get_agent", "list_runs", "get_run"),
    "runtype": ("list_agents", "get_agent", "list_executions", "list_tool_calls"),
    "elizaos": ("list_agents", "get_agent", "list_runs", "get_run"),
    "acp": ("list_runs",),
}


def auth_headers(platform: str, token: str | None) -> dict[str, str]:
    """Return the headers that carry `token` on `platform` (ElizaOS: X-API-KEY; others: Bearer)."""
    if not token:
        return {}
    if platform == "elizaos":
        return {"X-API-KEY": token}
    return {"Authorization": f"Bearer {token}"}


def build_source(
    settings: SourceSettings,
    *,
    on_response: ResponseHook,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Callable[[], float] = time.time,
) -> Source:
    """Return the platform source for `settings`, with its own HTTP client."""
    client = HttpClient(
        base_url=settings.base_url,
        headers=auth_headers(settings.platform, settings.resolved_token()),
        timeout_s=settings.request_timeout,
        on_response=on_response,
        transport=transport,
        clock=clock,
    )
    name, size = settings.name, settings.page_size
    match settings.platform:
        case "conduit":
            return ConduitSource(name, client, page_size=size, workspace_id=settings.workspace_id)
        case "runtype":
            return RuntypeSource(name, client, page_size=size)
        case "elizaos":
            return ElizaSource(name, client, page_size=size, clock=clock)
        case "acp":
            return AcpSource(name, client, page_size=size)
