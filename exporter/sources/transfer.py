"""One upstream exchange, safely: TLS verification, same-origin redirects only, a capped body.

    request ─► send ─► 3xx to the same origin? follow (up to MAX_REDIRECTS hops, auth re-applied)
                   ├─► 3xx elsewhere: RedirectError, nothing sent there (the token stays home)
                   └─► stream the body; past `max_bytes`: ResponseTooLargeError, reading stops

The origin is scheme, host and port, so an https-to-http downgrade is refused as well. The size
cap counts decoded bytes while they are decoded (`sources.decoding`, any number of stacked
encodings), so a compressed body cannot expand past it, not even inside one chunk.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterator

import httpx

from exporter.errors import MalformedPageError, RedirectError, ResponseTooLargeError
from exporter.sources import decoding

log = logging.getLogger(__name__)

MAX_REDIRECTS = 5
_DROPPED_HEADERS = ("content-encoding", "content-length", "transfer-encoding")


def tls_verify(
    ca_file: str | None, insecure_skip_verify: bool, source: str
) -> ssl.SSLContext | bool:
    """Return httpx's `verify` for a source: its default CAs, `ca_file`'s, or none (warned)."""
    if insecure_skip_verify:
        log.warning(
            "source %s: insecure_skip_verify is on: the upstream's TLS certificate is not "
            "checked, so anyone on the network path can read the API token",
            source,
        )
        return False
    if ca_file is None:
        return True  # httpx's default bundle (certifi), or SSL_CERT_FILE / SSL_CERT_DIR
    return ssl.create_default_context(cafile=ca_file)


def origin(url: httpx.URL) -> tuple[str, str, int | None]:
    """Return (scheme, host, port) with the scheme's default port filled in."""
    default = {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host, url.port or default


async def fetch(
    client: httpx.AsyncClient, request: httpx.Request, *, max_bytes: int
) -> httpx.Response:
    """Send `request` and return the final response with its body read (at most `max_bytes`)."""
    home = origin(request.url)
    for _ in range(MAX_REDIRECTS + 1):
        response = await client.send(request, stream=True)
        try:
            target = response.next_request
            if target is None:
                return await _read_capped(response, max_bytes)
            if origin(target.url) != home:
                raise RedirectError(
                    f"HTTP {response.status_code} from {request.url.path} redirects to another "
                    f"origin ({target.url.scheme}://{target.url.host}); not followed",
                    status_code=response.status_code,
                )
            request = target
        finally:
            await response.aclose()
    raise RedirectError(
        f"more than {MAX_REDIRECTS} redirects from {request.url.path}", status_code=300
    )


async def _read_capped(response: httpx.Response, max_bytes: int) -> httpx.Response:
    """Read the body, stopping past `max_bytes`; return a plain response holding it."""
    path = response.request.url.path
    headers = response.headers
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(response, path, max_bytes, f"declares {declared} bytes, over")
    if declared.isdigit() and headers.get("content-encoding", "identity") == "identity":
        # A plain body of a declared size within the cap: read it whole (h11 stops at the
        # declared length), without the chunk loop and the copy below.
        await response.aread()
        return response
    if response.is_stream_consumed:  # built in memory (a test transport), so decoded already
        if len(response.content) > max_bytes:
            raise _too_large(response, path, max_bytes, "is over")
        return response
    body = bytearray()
    try:
        decoder = decoding.BoundedDecoder(headers.get("content-encoding", "identity"))
        async for chunk in response.aiter_raw():
            _append(body, decoder.feed(chunk), max_bytes, response)
        _append(body, decoder.finish(), max_bytes, response)
    except decoding.DecodingError as exc:
        raise MalformedPageError(
            f"the answer from {path} cannot be decoded: {exc}", status_code=response.status_code
        ) from None
    kept = [(k, v) for k, v in response.headers.multi_items() if k not in _DROPPED_HEADERS]
    return httpx.Response(
        response.status_code, headers=kept, content=bytes(body), request=response.request
    )


def _append(
    body: bytearray, pieces: Iterator[bytes], max_bytes: int, response: httpx.Response
) -> None:
    """Add decoded pieces to `body`, stopping as soon as it passes `max_bytes`."""
    for piece in pieces:
        body += piece
        if len(body) > max_bytes:
            raise _too_large(response, response.request.url.path, max_bytes, "is over")


def _too_large(
    response: httpx.Response, path: str, max_bytes: int, how: str
) -> ResponseTooLargeError:
    return ResponseTooLargeError(
        f"the answer from {path} {how} max_response_bytes ({max_bytes}); not read further",
        status_code=response.status_code,
    )
