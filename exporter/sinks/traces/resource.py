"""Build the OpenTelemetry resource of a source's spans: SDK defaults, environment, service.name."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from urllib import parse

from opentelemetry.sdk.resources import (
    SERVICE_NAME,
    TELEMETRY_SDK_LANGUAGE,
    TELEMETRY_SDK_NAME,
    TELEMETRY_SDK_VERSION,
    Resource,
)
from opentelemetry.sdk.version import __version__ as sdk_version
from opentelemetry.util.types import AttributeValue

from exporter.model import SourceInfo

logger = logging.getLogger(__name__)

_SDK_ATTRIBUTES = {
    TELEMETRY_SDK_LANGUAGE: "python",
    TELEMETRY_SDK_NAME: "opentelemetry",
    TELEMETRY_SDK_VERSION: sdk_version,
}


def build_resource(source: SourceInfo, environ: Mapping[str, str]) -> Resource:
    """Build a source's resource: SDK defaults, `OTEL_RESOURCE_ATTRIBUTES`, then service.name.

    service.name is the source's configured one, else `OTEL_SERVICE_NAME`, else a service.name
    given in `OTEL_RESOURCE_ATTRIBUTES`, else the source's name.
    """
    attributes: dict[str, AttributeValue] = dict(_SDK_ATTRIBUTES)
    attributes.update(parse_resource_attributes(environ.get("OTEL_RESOURCE_ATTRIBUTES", "")))
    attributes[SERVICE_NAME] = (
        source.service_name
        or environ.get("OTEL_SERVICE_NAME")
        or attributes.get(SERVICE_NAME)
        or source.name
    )
    return Resource(attributes)


def parse_resource_attributes(raw: str) -> dict[str, str]:
    """Parse `key=value,...` as the SDK does (values percent-decoded, bad items skipped)."""
    result: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            logger.warning("ignoring invalid OTEL_RESOURCE_ATTRIBUTES item %r", item)
            continue
        result[key.strip()] = parse.unquote(value.strip())
    return result
