"""Upstream hygiene: redirects stay on their origin, bodies are capped, TLS is verified."""

from __future__ import annotations

import asyncio
import gzip
import logging
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from exporter.errors import (
    AuthError,
    MalformedPageError,
    RedirectError,
    ResponseTooLargeError,
    TransportError,
)
from exporter.sources.auth import HeaderAuth, static_token
from exporter.sources.http import HttpClient
from exporter.sources.transfer import MAX_REDIRECTS, tls_verify
from exporter.web.config import TlsServerConfig
from exporter.web.server import serve_in_loop
from tests.unit.certs import make_pki
from tests.unit.sources.test_decoding import gzip_stream

TOKEN = "tok-transfer-9f8e"
Seen = list[tuple[str, httpx.Headers]]


def client(
    handler: httpx.MockTransport,
    *,
    base_url: str = "https://api.u.test",
    max_bytes: int = 16 * 1024 * 1024,
    auth: HeaderAuth | None = None,
    codes: list[str] | None = None,
) -> HttpClient:
    return HttpClient(
        base_url=base_url,
        headers={},
        timeout_s=5,
        on_response=lambda _endpoint, code: (codes if codes is not None else []).append(code),
        auth=auth or HeaderAuth(static_token(TOKEN)),
        max_response_bytes=max_bytes,
        transport=handler,
    )


def get(c: HttpClient, path: str = "/v1/runs") -> object:
    async def go() -> object:
        try:
            return await c.get_json(path, endpoint="list_runs", params={})
        finally:
            await c.aclose()

    return asyncio.run(go())


def redirecting(location: str, seen: Seen) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((str(request.url), request.headers))
        if request.url.path == "/v1/runs":
            return httpx.Response(302, headers={"Location": location})
        return httpx.Response(200, json={"data": []})

    return httpx.MockTransport(handler)


@pytest.mark.parametrize(
    "location",
    [
        "https://evil.test/steal",
        "https://api.u.test:8443/v1/moved",  # another port is another origin
        "http://api.u.test/v1/moved",  # a downgrade to plain HTTP
        "//evil.test/steal",
    ],
)
@pytest.mark.parametrize("header", ["Authorization", "X-API-KEY"])
def test_a_redirect_to_another_origin_never_carries_the_token(location: str, header: str) -> None:
    seen: Seen = []
    codes: list[str] = []
    auth = HeaderAuth(static_token(TOKEN), header, "Bearer" if header == "Authorization" else None)
    with pytest.raises(RedirectError) as raised:
        get(client(redirecting(location, seen), auth=auth, codes=codes))
    assert [url for url, _ in seen] == ["https://api.u.test/v1/runs"]  # nothing sent elsewhere
    assert raised.value.reason == "redirect"
    assert codes == ["302"]
    assert TOKEN not in str(raised.value)


def test_a_redirect_on_the_same_origin_is_followed_with_the_token() -> None:
    seen: Seen = []
    body = get(client(redirecting("/v1/moved?page=2", seen)))
    assert body == {"data": []}
    assert [url for url, _ in seen] == [
        "https://api.u.test/v1/runs",
        "https://api.u.test/v1/moved?page=2",
    ]
    assert all(headers["Authorization"] == f"Bearer {TOKEN}" for _, headers in seen)


def test_a_redirect_loop_ends() -> None:
    seen: Seen = []
    with pytest.raises(RedirectError, match="redirects"):
        get(client(redirecting("/v1/runs", seen)))
    assert len(seen) == MAX_REDIRECTS + 1


def test_a_body_over_the_cap_is_refused_by_its_length() -> None:
    codes: list[str] = []
    handler = httpx.MockTransport(lambda _r: httpx.Response(200, content=b"x" * 5000))
    with pytest.raises(ResponseTooLargeError) as raised:
        get(client(handler, max_bytes=4096, codes=codes))
    assert raised.value.reason == "too_large"
    assert "declares 5000 bytes" in str(raised.value)
    assert codes == ["200"]


def test_a_streamed_body_stops_being_read_past_the_cap() -> None:
    produced: list[int] = []

    async def endless() -> AsyncIterator[bytes]:
        for index in range(1000):  # 64 MiB if it were all read
            produced.append(index)
            yield b"[" + b"0," * 32 * 1024

    handler = httpx.MockTransport(lambda _r: httpx.Response(200, content=endless()))
    with pytest.raises(ResponseTooLargeError, match="is over max_response_bytes"):
        get(client(handler, max_bytes=256 * 1024))
    assert len(produced) < 10


def test_a_compressed_body_is_capped_after_decompression() -> None:
    bomb = gzip.compress(b" " * (2 * 1024 * 1024))  # 2 MiB of spaces in ~2 KiB
    assert len(bomb) < 64 * 1024

    def handler(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=bomb, headers={"Content-Encoding": "gzip"})

    with pytest.raises(ResponseTooLargeError):
        get(client(httpx.MockTransport(handler), max_bytes=64 * 1024))


def test_bodies_within_the_cap_and_error_bodies_are_read() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/gone":
            return httpx.Response(404, json={"error": "no such agent"})
        compressed = gzip.compress(b'{"data": [1, 2]}')
        return httpx.Response(200, content=compressed, headers={"Content-Encoding": "gzip"})

    assert get(client(httpx.MockTransport(handler), max_bytes=1024)) == {"data": [1, 2]}
    with pytest.raises(Exception, match="no such agent"):
        get(client(httpx.MockTransport(handler)), "/gone")


def test_an_upstream_echoing_the_token_is_masked_in_the_error() -> None:
    def handler(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"error": f"token {TOKEN} is revoked"})

    with pytest.raises(Exception, match="revoked") as raised:
        get(client(httpx.MockTransport(handler)))
    assert TOKEN not in str(raised.value)


async def _json(_request: Request) -> JSONResponse:
    return JSONResponse({"data": "over tls"})


def tls_get(tmp_path: Path, ca_file: str | None, insecure: bool) -> object:
    """Serve a JSON endpoint over real TLS on 127.0.0.1 and GET it with a source's client."""
    pki = make_pki(tmp_path)
    tls = TlsServerConfig(cert_file=pki.server_cert, key_file=pki.server_key).ssl_context()
    ca = {"server": str(pki.ca), "stranger": str(pki.other_ca)}.get(ca_file or "")

    async def go() -> object:
        server = await serve_in_loop(Starlette(routes=[Route("/v1/runs", _json)]), tls=tls)
        c = HttpClient(
            base_url=server.url,
            headers={},
            timeout_s=5,
            on_response=lambda _e, _c: None,
            verify=tls_verify(ca, insecure, "tls-test"),
        )
        try:
            return await c.get_json("/v1/runs", endpoint="list_runs", params={})
        finally:
            await c.aclose()
            await server.stop(grace=1)

    return asyncio.run(asyncio.wait_for(go(), timeout=20))


def test_tls_to_the_upstream_is_verified_against_the_ca_file(tmp_path: Path) -> None:
    assert tls_get(tmp_path, "server", insecure=False) == {"data": "over tls"}


@pytest.mark.parametrize("ca_file", [None, "stranger"])
def test_an_untrusted_upstream_certificate_fails(tmp_path: Path, ca_file: str | None) -> None:
    with pytest.raises(TransportError, match=r"(?i)certificate verify failed"):
        tls_get(tmp_path, ca_file, insecure=False)


def test_insecure_skip_verify_connects_and_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        assert tls_get(tmp_path, None, insecure=True) == {"data": "over tls"}
    assert "insecure_skip_verify is on" in caplog.text


def test_a_gzip_of_gzip_bomb_is_refused_without_expanding_it() -> None:
    bomb = gzip.compress(gzip_stream(64 * 1024 * 1024))  # 64 MiB behind a few KiB
    codes: list[str] = []

    def handler(_request: httpx.Request) -> httpx.Response:
        headers = {"Content-Encoding": "gzip, gzip"}
        return httpx.Response(200, stream=httpx.ByteStream(bomb), headers=headers)

    c = client(httpx.MockTransport(handler), max_bytes=1024 * 1024, codes=codes)
    tracemalloc.start()
    try:
        with pytest.raises(ResponseTooLargeError, match="is over max_response_bytes") as raised:
            get(c)
        _now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert raised.value.reason == "too_large"
    assert codes == ["200"]
    assert peak < 8 * 1024 * 1024  # the 1 MiB cap and a few steps, never the 64 MiB


def test_a_corrupt_or_unknown_encoding_is_a_malformed_page() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        encoding = "br" if request.url.path == "/br" else "gzip"
        body = httpx.ByteStream(b"\x1f\x8bnot-gzip")
        return httpx.Response(200, stream=body, headers={"Content-Encoding": encoding})

    for path in ("/br", "/corrupt"):
        with pytest.raises(MalformedPageError, match="cannot be decoded") as raised:
            get(client(httpx.MockTransport(handler)), path)
        assert raised.value.reason == "malformed_page"


def test_only_decodable_encodings_are_asked_for() -> None:
    seen: Seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.path, request.headers))
        return httpx.Response(200, json={})

    get(client(httpx.MockTransport(handler)))
    assert seen[0][1]["Accept-Encoding"] == "gzip, deflate"


def test_a_streamed_compressed_body_within_the_cap_is_decoded() -> None:
    body = gzip.compress(b'{"data": [1, 2]}')

    def handler(_request: httpx.Request) -> httpx.Response:
        headers = {"Content-Encoding": "gzip"}
        return httpx.Response(200, stream=httpx.ByteStream(body), headers=headers)

    assert get(client(httpx.MockTransport(handler))) == {"data": [1, 2]}


def test_a_401_echoing_the_token_past_the_cut_shows_none_of_it() -> None:
    def handler(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"error": "x" * 191 + " bad token " + TOKEN})

    with pytest.raises(AuthError) as raised:
        get(client(httpx.MockTransport(handler)))
    assert TOKEN[:6] not in str(raised.value)
