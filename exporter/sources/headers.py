"""Extra request headers a source is configured with: which ones a request may carry.

    headers:
      X-Computer-Agents-Organization: ${ACP_ORG}   sent on every request of the source

A name must be an RFC 9110 token; a value must fit on one header line in ASCII (httpx sends
header values as ASCII). Names the exporter or the HTTP client owns are refused: the platform's
auth header (the token goes there), the framing and connection headers, and `Accept-Encoding`
(the response decoder reads only the encodings it asks for). Values may be secrets: each one is
registered with `exporter.logs.register_secret` and no problem ever quotes it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from exporter.logs import register_secret

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 section 5.6.2: 1*tchar
_CLIENT_OWNED = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
    }
)
_EXPORTER_OWNED = {
    "accept-encoding": "the response decoder reads only the encodings the exporter asks for",
}


def name_problem(name: str, auth_header: str | None) -> str | None:
    """Say why `name` cannot be a configured header (`auth_header`: the platform's), or None."""
    if not _TOKEN.fullmatch(name):
        return (
            "is not a valid header name: use letters, digits and !#$%&'*+-.^_`|~ "
            "(no spaces or colons), e.g. X-Computer-Agents-Organization"
        )
    lowered = name.lower()
    if auth_header is not None and lowered == auth_header.lower():
        return "carries the token: set token or token_file instead"
    if lowered in _CLIENT_OWNED:
        return "is set by the HTTP client and cannot be configured"
    if lowered in _EXPORTER_OWNED:
        return f"is set by the exporter: {_EXPORTER_OWNED[lowered]}"
    return None


def value_problem(value: str) -> str | None:
    """Say why `value` cannot be sent as a header value (never quoting it), or None if it can."""
    if not value:
        return "is empty (remove the header, or give it a value)"
    if any(char in "\r\n" for char in value):
        return "holds a line break: an HTTP header cannot carry it"
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in value if char != "\t"):
        return "holds a control character: an HTTP header cannot carry it"
    if not value.isascii():
        return "holds a character outside ASCII: header values are sent as ASCII"
    return None


def duplicate_names(names: list[str]) -> list[str]:
    """Return the names that repeat an earlier one, compared case-insensitively."""
    seen: set[str] = set()
    repeats = []
    for name in names:
        if name.lower() in seen:
            repeats.append(name)
        seen.add(name.lower())
    return repeats


def static_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Return the headers to send on every request, each value registered as a secret."""
    for value in headers.values():
        register_secret(value)
    return dict(headers)
