"""A source's configured headers reach every request it sends, beside its platform's auth header."""

from __future__ import annotations

import asyncio
import string

import httpx
import pytest

from exporter import logs
from exporter.config.source import SourceSettings
from exporter.errors import AuthError, NotFoundError
from exporter.sources.base import Source
from exporter.sources.registry import PLATFORMS, spec
from exporter.wiring import build_source
from tests.unit.sourcekit import collect_pages, fixture

pytestmark = pytest.mark.usefixtures("fresh_secrets")  # short values are registered too
ORG_HEADER = "X-Computer-Agents-Organization"
ORG = "org_hdr_4c9e1a7b"
TOKEN = "tb_hdr_token_8f2d6e0a"
TCHARS = "!#$%&'*+-.^_`|~" + string.ascii_letters + string.digits


def settings(platform: str, headers: dict[str, str]) -> SourceSettings:
    """Return a source of `platform` with `headers` and a token."""
    return SourceSettings.model_validate(
        {
            "name": "s",
            "platform": platform,
            "base_url": "https://u.test",
            "token": TOKEN,
            "agents": ["srv_1"],
            "headers": headers,
        }
    )


def built(platform: str, headers: dict[str, str], handler: httpx.MockTransport) -> Source:
    """Build the configured source over a mock transport, as the app does."""

    def on_response(endpoint: str, code: str) -> None:
        return None

    return build_source(settings(platform, headers), on_response=on_response, transport=handler)


def first_page(source: Source) -> None:
    """Ask for the first page of agent srv_1, closing the source afterwards."""

    async def go() -> None:
        try:
            await anext(source.pages("srv_1"))
        finally:
            await source.aclose()

    asyncio.run(go())


@pytest.mark.parametrize("platform", list(PLATFORMS))
def test_every_platform_sends_the_headers_beside_its_auth_header(platform: str) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(404, json={"error": "no such agent"})

    source = built(platform, {ORG_HEADER: ORG, "X-Trace-Tag": "blue"}, httpx.MockTransport(handler))
    with pytest.raises(NotFoundError):
        first_page(source)
    (request,) = seen
    auth = spec(platform).auth
    assert request.headers[ORG_HEADER] == ORG
    assert request.headers["x-trace-tag"] == "blue"
    assert request.headers[auth.name] == (f"{auth.scheme} {TOKEN}" if auth.scheme else TOKEN)
    assert request.headers["User-Agent"].startswith("agent-runs-exporter/")


def test_an_organization_scoped_acp_key_reads_its_runs_through_a_redirect() -> None:
    paths: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path)
        if request.headers.get(ORG_HEADER) != ORG:  # what an organization-scoped key meets
            return httpx.Response(403, json={"error": "organization required"})
        if request.url.path.startswith("/v1/"):
            return httpx.Response(307, headers={"Location": f"/v2{request.url.path[3:]}"})
        return httpx.Response(200, json=fixture("acp_list_runs.json"))

    source = built("acp", {ORG_HEADER: ORG}, httpx.MockTransport(handler))
    (page,) = collect_pages(source, "srv_1")
    asyncio.run(source.aclose())
    assert [run.id for run in page.runs] == ["run_003", "run_002", "run_001"]
    assert paths == ["/v1/servers/srv_1/runtime/agent/runs", "/v2/servers/srv_1/runtime/agent/runs"]


def test_a_header_value_echoed_in_an_error_body_is_masked() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, json={"error": f"organization {ORG} is not yours"})

    source = built("acp", {ORG_HEADER: ORG}, httpx.MockTransport(handler))
    with pytest.raises(AuthError) as caught:
        first_page(source)
    assert ORG not in str(caught.value)
    assert f"organization {logs.MASK} is not yours" in str(caught.value)


def test_every_name_and_value_the_config_accepts_can_be_sent() -> None:
    value = "\t".join(chr(code) for code in range(0x20, 0x7F))  # every visible ASCII, tabs
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(404)

    source = built("conduit", {TCHARS: value}, httpx.MockTransport(handler))
    with pytest.raises(NotFoundError):
        first_page(source)
    assert seen[0].headers[TCHARS] == value.strip()  # surrounding blanks dropped
