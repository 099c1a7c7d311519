"""Build the source object for a configured platform."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from exporter.config.models import SourceSettings
from exporter.sources.acp import AcpSource
from exporter.sources.auth import HeaderAuth, TokenFile, TokenGetter, static_token
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
from exporter.sources.elizaos import ElizaSource
from exporter.sources.http import HttpClient, ResponseHook
from exporter.sources.runtype import RuntypeSource
from exporter.sources.transfer import tls_verify

ENDPOINTS = {
    "conduit": ("list_agents", "get_agent", "list_runs", "get_run"),
    "runtype": ("list_agents", "get_agent", "list_executions", "list_tool_calls"),
    "elizaos": ("list_agents", "get_agent", "list_runs", "get_run"),
    "acp": ("list_runs",),
}
AUTH_HEADERS = {"elizaos": ("X-API-KEY", None)}  # (header, scheme); others: Authorization: Bearer
_BEARER = ("Authorization", "Bearer")


def auth_headers(platform: str, token: str | None) -> dict[str, str]:
    """Return the headers that carry `token` on `platform` (ElizaOS: X-API-KEY; others: Bearer)."""
    if not token:
        return {}
    header, scheme = AUTH_HEADERS.get(platform, _BEARER)
    return {header: f"{scheme} {token}" if scheme else token}


def source_auth(settings: SourceSettings) -> HeaderAuth:
    """Return the auth that puts the source's current token in its platform's header."""
    header, scheme = AUTH_HEADERS.get(settings.platform, _BEARER)
    return HeaderAuth(token_getter(settings), header, scheme)


def token_getter(settings: SourceSettings) -> TokenGetter:
    """Return where the source's token comes from: token_file (watched for rotation) or token."""
    if settings.token_file is not None:
        return TokenFile(settings.token_file).current
    return static_token(settings.token.get_secret_value().strip() if settings.token else None)


def build_source(
    settings: SourceSettings,
    *,
    on_response: ResponseHook,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Callable[[], float] = time.time,
    budget: Budget = UNLIMITED,
) -> Source:
    """Return the platform source for `settings`, with its own HTTP client."""
    client = HttpClient(
        base_url=settings.base_url,
        headers={},
        timeout_s=settings.request_timeout,
        on_response=on_response,
        auth=source_auth(settings),
        verify=tls_verify(settings.ca_file, settings.insecure_skip_verify, settings.name),
        max_response_bytes=settings.max_response_bytes,
        transport=transport,
        clock=clock,
        budget=budget,
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
