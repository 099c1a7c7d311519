"""Build a configured source from its settings and its platform's spec: HTTP client, auth, budget.

The client sends the source's `headers:` on every request, beside the token's auth header.

It is the one place that reads both the settings and the sources, so it sits beside the
composition root (`app`), outside both: the configuration validates platforms through the
registry, and no module under `sources/` imports the configuration.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import httpx

from exporter.sources.auth import HeaderAuth, TokenFile, TokenGetter, static_token
from exporter.sources.base import Source
from exporter.sources.budget import UNLIMITED, Budget, BudgetSpec, workspace_key
from exporter.sources.headers import static_headers
from exporter.sources.http import HttpClient, ResponseHook
from exporter.sources.registry import spec
from exporter.sources.transfer import tls_verify

if TYPE_CHECKING:
    from exporter.config.source import SourceSettings  # only a type: settings never import this


def auth_headers(platform: str, token: str | None) -> dict[str, str]:
    """Return the headers that carry `token` on `platform` (ElizaOS: X-API-KEY; others: Bearer)."""
    return spec(platform).auth.headers(token)


def source_auth(settings: SourceSettings) -> HeaderAuth:
    """Return the auth that puts the source's current token in its platform's header."""
    header = spec(settings.platform).auth
    return HeaderAuth(token_getter(settings), header.name, header.scheme)


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
    platform = spec(settings.platform)
    client = HttpClient(
        base_url=settings.base_url,
        headers=static_headers(settings.resolved_headers()),
        timeout_s=settings.request_timeout,
        on_response=on_response,
        auth=source_auth(settings),
        verify=tls_verify(settings.ca_file, settings.insecure_skip_verify, settings.name),
        max_response_bytes=settings.max_response_bytes,
        transport=transport,
        clock=clock,
        budget=budget,
    )
    return platform.build(settings, client, clock)


def budget_spec(settings: SourceSettings) -> BudgetSpec:
    """Return the request budget `settings` asks for, with the workspace it counts against."""
    limit = spec(settings.platform).rate_limit
    workspace = None
    if limit.per_workspace:
        token = settings.resolved_token()
        workspace = workspace_key(
            settings.platform, settings.base_url, settings.workspace_id, token
        )
    requested = settings.max_requests_per_minute
    return BudgetSpec(
        source=settings.name,
        limit=limit.default if requested is None else requested,
        workspace=workspace,
        discovery_interval_s=settings.discovery_interval,
    )
