"""Build the source object for a configured platform."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from exporter.config import SourceSettings
from exporter.sources.base import Source
from exporter.sources.budget import (
    UNLIMITED,
    Budget,
    BudgetSpec,
    default_limit,
    limited_per_workspace,
    workspace_key,
)
from exporter.sources.conduit import ConduitSource
from exporter.sources.http import HttpClient, ResponseHook

ENDPOINTS = {"conduit": ("list_runs", "get_run", "get_agent")}


def build_source(
    settings: SourceSettings,
    *,
    on_response: ResponseHook,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Callable[[], float] = time.time,
    budget: Budget = UNLIMITED,
) -> Source:
    """Return the platform source for `settings`, with its own HTTP client."""
    token = settings.resolved_token()
    client = HttpClient(
        base_url=settings.base_url,
        headers={"Authorization": f"Bearer {token}"} if token else {},
        timeout_s=settings.request_timeout,
        on_response=on_response,
        transport=transport,
        clock=clock,
        budget=budget,
    )
    if settings.platform == "conduit":
        return ConduitSource(
            settings.name, client, page_size=settings.page_size, workspace_id=settings.workspace_id
        )
    raise ValueError(f"unsupported platform {settings.platform!r}")


def budget_spec(settings: SourceSettings) -> BudgetSpec:
    """Return the request budget `settings` asks for, with the workspace it counts against."""
    limit = settings.max_requests_per_minute
    workspace = None
    if limited_per_workspace(settings.platform):
        token = settings.resolved_token()
        workspace = workspace_key(
            settings.platform, settings.base_url, settings.workspace_id, token
        )
    return BudgetSpec(
        source=settings.name,
        limit=default_limit(settings.platform) if limit is None else limit,
        workspace=workspace,
    )
