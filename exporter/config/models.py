"""The one typed settings model, loaded once from YAML plus `AGENT_RUNS_EXPORTER_*` overrides.

Precedence is environment > file > defaults. `load_settings` collects every problem (file, YAML
syntax, `${VAR}` expansion, validation, cross-field checks) into one `ConfigError`; locations are
described in `exporter.config.loading`. Secrets never appear in problems nor in `render_effective`.
Relative paths are relative to the working directory.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from exporter.config import loading
from exporter.config.checks import NAME, check_url, duplicates
from exporter.config.durations import Duration, format_duration, parse_duration
from exporter.config.sharding import ShardingSettings
from exporter.config.source import SourceSettings
from exporter.logs import MASK, SHORT_SECRET, register_secret
from exporter.sinks.traces.redaction import DEFAULT_KEYS as DEFAULT_REDACT_KEYS

__all__ = [
    "ENV_PREFIX",
    "Duration",
    "MetricsSettings",
    "OtlpMetricsSettings",
    "Settings",
    "ShardingSettings",
    "StateSettings",
    "TracesSettings",
    "WebSettings",
    "format_duration",
    "load_settings",
    "parse_duration",
    "render_effective",
]

logger = logging.getLogger(__name__)

ENV_PREFIX = "AGENT_RUNS_EXPORTER_"
_LISTEN = re.compile(r"(?P<host>\[[0-9a-fA-F:.]+\]|[^\s:/\[\]]+):(?P<port>\d{1,5})")
DURATION_BUCKETS = (0.25, 0.5, 1, 2.5, 5, 10, 15, 30, 60, 120, 300, 600, 1200, 1800)  # seconds
TOKEN_BUCKETS = (100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000)
COST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)  # USD


def _check_buckets(bounds: list[float]) -> list[float]:
    """Require histogram bounds that are non-empty, finite, positive and strictly increasing."""
    if not bounds:
        raise ValueError("must list at least one bucket bound")
    if not all(math.isfinite(b) and b > 0 for b in bounds):
        raise ValueError("bucket bounds must be finite numbers greater than 0")
    if any(later <= earlier for earlier, later in itertools.pairwise(bounds)):
        raise ValueError("bucket bounds must be strictly increasing, e.g. [1, 2.5, 5]")
    return bounds


Buckets = Annotated[list[float], AfterValidator(_check_buckets)]


def _split_listen(value: str) -> tuple[str, int]:
    """Split `host:port` (IPv6 in brackets) into host and port, or raise ValueError."""
    match = _LISTEN.fullmatch(value.strip())
    if match is None:
        raise ValueError(
            "must be host:port, e.g. 0.0.0.0:9464, 127.0.0.1:9464 or [::]:9464 "
            "(wrap IPv6 addresses in brackets)"
        )
    port = int(match["port"])
    if port > 65535:
        raise ValueError(f"port {port} is out of range 0-65535")
    return match["host"].strip("[]"), port


class _Model(BaseModel):
    """Base of the nested settings models: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class StateSettings(_Model):
    """Where the run tracker keeps what it has already counted."""

    path: str = Field(default="./agent-runs-exporter.db", min_length=1)

    @property
    def persistent(self) -> bool:
        """Say whether state survives a restart (False for `:memory:`)."""
        return self.path != ":memory:"


class TracesSettings(_Model):
    """Where and how run spans are exported."""

    exporter: Literal["otlp", "file", "none"] = "otlp"
    endpoint: str | None = None
    protocol: Literal["http/protobuf", "grpc"] | None = None
    file: str = Field(default="./spans.jsonl", min_length=1)
    capture_content: bool = False
    max_content_chars: int = Field(default=4096, ge=64)
    redact_keys: list[str] = list(DEFAULT_REDACT_KEYS)
    max_tool_steps: int = Field(default=1000, ge=1)
    timeout: Duration = Field(default=10.0, gt=0)
    detail_concurrency: int = Field(default=4, ge=1, le=32)
    sample_successful: float = Field(default=1.0, ge=0, le=1)
    queue_size: int = Field(default=8192, ge=1)

    @field_validator("endpoint")
    @classmethod
    def _check_endpoint(cls, value: str | None) -> str | None:
        return None if value is None else check_url(value)


class WebSettings(_Model):
    """Who may read the HTTP endpoints."""

    config_file: str | None = Field(default=None, min_length=1)
    health_without_auth: bool = False


class OtlpMetricsSettings(_Model):
    """Whether and where the /metrics families are also pushed over OTLP.

    Unset `endpoint`, `protocol` and `temporality` defer to the standard `OTEL_EXPORTER_OTLP_*`
    variables (then http/protobuf to localhost, cumulative).
    """

    enabled: bool = False
    endpoint: str | None = None
    protocol: Literal["http/protobuf", "grpc"] | None = None
    interval: Duration = Field(default=15.0, gt=0)
    temporality: Literal["cumulative", "delta"] | None = None

    @field_validator("endpoint")
    @classmethod
    def _check_endpoint(cls, value: str | None) -> str | None:
        return None if value is None else check_url(value)


class MetricsSettings(_Model):
    """Histogram bucket bounds for the run metrics, whether histograms are per agent, OTLP push."""

    duration_buckets: Buckets = list(DURATION_BUCKETS)
    token_buckets: Buckets = list(TOKEN_BUCKETS)
    cost_buckets: Buckets = list(COST_BUCKETS)
    per_agent_histograms: bool = True  # false: histograms without agent_id (a series budget)
    otlp: OtlpMetricsSettings = OtlpMetricsSettings()


class Settings(BaseSettings):
    """Everything the exporter is configured with."""

    model_config = SettingsConfigDict(
        extra="forbid", frozen=True, env_prefix=ENV_PREFIX, env_nested_delimiter="__"
    )

    listen: str = "0.0.0.0:9464"
    poll_interval: Duration = Field(default=15.0, gt=0)
    lookback: Duration = 3600.0
    state: StateSettings = StateSettings()
    traces: TracesSettings = TracesSettings()
    metrics: MetricsSettings = MetricsSettings()
    sharding: ShardingSettings = ShardingSettings()
    web: WebSettings = WebSettings()
    sources: list[SourceSettings] = Field(min_length=1)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Build from constructor values only; `load_settings` brings the file and environment."""
        return (init_settings,)

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, value: str) -> str:
        _split_listen(value)
        return value.strip()

    @field_validator("lookback")
    @classmethod
    def _check_lookback(cls, value: float, info: ValidationInfo) -> float:
        poll_interval = info.data.get("poll_interval")
        if poll_interval is not None and value <= poll_interval:
            raise ValueError(
                f"must be longer than poll_interval ({format_duration(poll_interval)}), e.g. 1h"
            )
        return value

    @model_validator(mode="after")
    def _check_unique_sources(self) -> Settings:
        if dupes := duplicates([source.name for source in self.sources]):
            raise ValueError(f"duplicate source names: {', '.join(dupes)}")
        return self

    @property
    def listen_address(self) -> tuple[str, int]:
        """Return (host, port) to bind; IPv6 hosts come without brackets."""
        return _split_listen(self.listen)


def load_settings(path: str | Path, environ: Mapping[str, str] | None = None) -> Settings:
    """Load the YAML file at `path`, apply `environ` (default os.environ), validate, or raise."""
    environ = os.environ if environ is None else environ
    settings = loading.load(Settings, path, environ, checks=repeated_source_names)
    for source in settings.sources:
        for what, secret in source.secrets():
            register_secret(secret)
            if len(secret) < SHORT_SECRET:
                logger.warning(
                    "source %s: the %s is shorter than %d characters: log lines mask it only "
                    "where it stands alone as a word, never inside other words",
                    source.name,
                    what,
                    SHORT_SECRET,
                )
    if not settings.state.persistent:
        logger.warning("state.path is %s: runs are counted again after a restart", ":memory:")
    return settings


def repeated_source_names(values: Mapping[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
    """Point at every source whose name an earlier source already has, in the raw values."""
    sources = values.get("sources")
    items = sources if isinstance(sources, list) else []
    names = [item.get("name") if isinstance(item, dict) else None for item in items]
    message = "duplicate source name {!r}: every source needs its own"
    seen: set[str] = set()
    repeats: list[tuple[tuple[str | int, ...], str]] = []
    for index, name in enumerate(names):
        if isinstance(name, str) and NAME.fullmatch(name):
            if name in seen:
                repeats.append((("sources", index, "name"), message.format(name)))
            seen.add(name)
    return repeats


def render_effective(settings: Settings) -> str:
    """Render the effective settings as YAML, durations compact, tokens and header values masked."""
    data = settings.model_dump(mode="json")
    for source in data["sources"]:
        if source["token"] is not None:
            source["token"] = MASK
        source["headers"] = dict.fromkeys(source["headers"], MASK)
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


class _Dumper(yaml.SafeDumper):
    """A YAML dumper that writes mappings as blocks and lists of scalars on one line."""


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.SequenceNode:
    """Write a list of scalars in flow style, any other list as a block."""
    flow = not any(isinstance(item, dict | list) for item in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(list, _represent_list)
