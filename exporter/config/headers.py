"""The `headers:` key of a source as pydantic types: each name and each value checked on its own.

A problem is reported at the header's own key path (`sources[0].headers.Host`) and names the
source; a value is never quoted, and one that cannot be sent is masked in logs from then on.
What HTTP allows is `exporter.sources.headers`'s to say.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, SecretStr, ValidationInfo

from exporter.logs import register_secret
from exporter.sources import headers as request_headers
from exporter.sources.registry import spec as platform_spec

__all__ = ["HeaderName", "HeaderValue", "source_name"]


def source_name(info: ValidationInfo) -> str:
    """Return the name of the source being validated ('?' while it has none)."""
    name = info.data.get("name")
    return name if isinstance(name, str) else "?"


def _check_header_name(name: str, info: ValidationInfo) -> str:
    """Refuse a header name HTTP cannot carry, or one the exporter or the client sets itself."""
    platform = info.data.get("platform")
    auth = platform_spec(platform).auth.name if isinstance(platform, str) else None
    if problem := request_headers.name_problem(name, auth):
        raise ValueError(f"header {name[:64]!r} of source {source_name(info)} {problem}")
    return name


def _check_header_value(value: SecretStr, info: ValidationInfo) -> SecretStr:
    """Refuse a header value no request can carry (masked from now on, never quoted)."""
    text = value.get_secret_value().strip()
    if problem := request_headers.value_problem(text):
        register_secret(text)
        raise ValueError(f"the value of this header of source {source_name(info)} {problem}")
    return SecretStr(text)


HeaderName = Annotated[str, AfterValidator(_check_header_name)]
HeaderValue = Annotated[SecretStr, AfterValidator(_check_header_value)]
