"""Build the source object for a configured platform."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from exporter.config import SourceSettings
from exporter.sources.auth import HeaderAuth, TokenFile, TokenGetter, static_token
from exporter.sources.base import Source
from exporter.sources.conduit import ConduitSource
from exporter.sources.http import HttpClient, ResponseHook
from exporter.sources.transfer import tls_verify

ENDPOINTS = {"conduit": ("list_runs", "get_run", "get_agent")}


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
        headers={},
        timeout_s=settings.request_timeout,
        on_response=on_response,
        auth=HeaderAuth(token_getter(settings)),  # X-API-KEY style: HeaderAuth(get, header, None)
        verify=tls_verify(settings.ca_file, settings.insecure_skip_verify, settings.name),
        max_response_bytes=settings.max_response_bytes,
        transport=transport,
        clock=clock,
    )
    if settings.platform == "conduit":
        return ConduitSource(
            settings.name, client, page_size=settings.page_size, workspace_id=settings.workspace_id
        )
    raise ValueError(f"unsupported platform {settings.platform!r}")


def token_getter(settings: SourceSettings) -> TokenGetter:
    """Return where the source's token comes from: token_file (watched for rotation) or token."""
    if settings.token_file is not None:
        return TokenFile(settings.token_file).current
    return static_token(settings.token.get_secret_value().strip() if settings.token else None)
