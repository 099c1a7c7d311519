"""The one typed settings model, loaded once from YAML plus `AGENT_RUNS_EXPORTER_*` overrides.

Precedence is environment > file > defaults. `load_settings` collects every problem (file, YAML
syntax, `${VAR}` expansion, validation, cross-field checks) into one `ConfigError`. A problem's
location reads `<file>: <key path>` (`config.yaml: sources[0].platform`), `<ENV_VAR>: <key path>`
when an environment override supplied the value, or `<file>:<line>:<column>` for YAML syntax.
Secrets never appear in problems nor in `render_effective`. Relative paths are relative to the
working directory.
"""

from __future__ import annotations

import difflib
import itertools
import json
import logging
import math
import os
import re
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin
from urllib.parse import urlsplit

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from exporter.durations import Duration, format_duration, parse_duration
from exporter.errors import ConfigError, ConfigProblem
from exporter.logs import MASK, register_secret

__all__ = [
    "ENV_PREFIX",
    "Duration",
    "MetricsSettings",
    "Platform",
    "Settings",
    "SourceSettings",
    "StateSettings",
    "TracesSettings",
    "format_duration",
    "load_settings",
    "parse_duration",
    "render_effective",
]

logger = logging.getLogger(__name__)

Platform = Literal["conduit"]  # add a platform here (and a module under exporter/sources/)
ENV_PREFIX = "AGENT_RUNS_EXPORTER_"
_NAME = re.compile(r"[a-zA-Z0-9_.-]{1,63}")
_LISTEN = re.compile(r"(?P<host>\[[0-9a-fA-F:.]+\]|[^\s:/\[\]]+):(?P<port>\d{1,5})")
Loc = tuple[str | int, ...]
DURATION_BUCKETS = (0.25, 0.5, 1, 2.5, 5, 10, 15, 30, 60, 120, 300, 600, 1200, 1800)  # seconds
TOKEN_BUCKETS = (100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000)
COST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)  # USD
_SEEN_NAMES: ContextVar[set[str] | None] = ContextVar("seen_source_names", default=None)


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


def _check_url(value: str) -> str:
    """Require an http(s) URL with a host, no query or fragment; drop a trailing slash."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host, e.g. https://host:8443")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not contain credentials (use token or token_file)")
    if parts.query or parts.fragment:
        raise ValueError("must not have a query (?...) or fragment (#...)")
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not 0-65535
    except ValueError:
        raise ValueError("has an invalid port (must be 0-65535)") from None
    return value.strip().rstrip("/")


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


def _read_token_file(path: str) -> str:
    """Return the stripped content of a token file (raises OSError or UnicodeError)."""
    return Path(path).read_text(encoding="utf-8").strip()


def _reason(exc: OSError | UnicodeError) -> str:
    """Say briefly why a file could not be read."""
    if isinstance(exc, UnicodeError):
        return "not UTF-8 text"
    return exc.strerror or type(exc).__name__


def _duplicates(names: list[str]) -> list[str]:
    """Return the names that occur more than once, in first-seen order."""
    return [name for index, name in enumerate(names) if name in names[:index]]


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
    timeout: Duration = Field(default=10.0, gt=0)
    detail_concurrency: int = Field(default=4, ge=1, le=32)

    @field_validator("endpoint")
    @classmethod
    def _check_endpoint(cls, value: str | None) -> str | None:
        return None if value is None else _check_url(value)


class MetricsSettings(_Model):
    """Histogram bucket bounds for the run metrics."""

    duration_buckets: Buckets = list(DURATION_BUCKETS)
    token_buckets: Buckets = list(TOKEN_BUCKETS)
    cost_buckets: Buckets = list(COST_BUCKETS)


class SourceSettings(_Model):
    """One upstream account to poll; `name` becomes the `source` label."""

    name: str
    platform: Platform
    base_url: str
    token: SecretStr | None = None
    token_file: str | None = None
    agents: list[str] = Field(min_length=1)
    workspace_id: str | None = None
    service_name: str | None = Field(default=None, min_length=1)
    page_size: int = Field(default=100, ge=1, le=100)
    request_timeout: Duration = Field(default=10.0, gt=0)
    max_pages_per_poll: int = Field(default=100, ge=1)

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _NAME.fullmatch(value):
            raise ValueError("must be 1-63 characters of letters, digits, '_', '.' or '-'")
        seen = _SEEN_NAMES.get()
        if seen is not None:  # set while load_settings validates, to report every duplicate
            if value in seen:
                raise ValueError(f"duplicate source name {value!r}: every source needs its own")
            seen.add(value)
        return value

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        return _check_url(value)

    @field_validator("token")
    @classmethod
    def _check_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            raise ValueError("must not be empty (remove the key for an unauthenticated upstream)")
        return value

    @field_validator("token_file")
    @classmethod
    def _check_token_file(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        if info.data.get("token") is not None:
            raise ValueError("set either token or token_file, not both")
        try:
            content = _read_token_file(value)
        except (OSError, UnicodeError) as exc:
            raise ValueError(f"cannot read token file {value}: {_reason(exc)}") from None
        if not content:
            raise ValueError(f"token file {value} is empty")
        return value

    @field_validator("agents")
    @classmethod
    def _check_agents(cls, value: list[str]) -> list[str]:
        agents = [agent.strip() for agent in value]
        if not all(agents):
            raise ValueError("agent ids must not be blank")
        if dupes := _duplicates(agents):
            raise ValueError(f"duplicate agent ids: {', '.join(dupes)}")
        return agents

    def resolved_token(self) -> str | None:
        """Return the API token (re-reading token_file), or None for an unauthenticated upstream."""
        if self.token is not None:
            return self.token.get_secret_value().strip()
        if self.token_file is not None:
            return _read_token_file(self.token_file)
        return None


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
        """Use constructor values only: `load_settings` applies the environment it is given."""
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
        if dupes := _duplicates([source.name for source in self.sources]):
            raise ValueError(f"duplicate source names: {', '.join(dupes)}")
        return self

    @property
    def listen_address(self) -> tuple[str, int]:
        """Return (host, port) to bind; IPv6 hosts come without brackets."""
        return _split_listen(self.listen)


def load_settings(path: str | Path, environ: Mapping[str, str] | None = None) -> Settings:
    """Load the YAML file at `path`, apply `environ` (default os.environ), validate, or raise."""
    environ = os.environ if environ is None else environ
    origin = str(path)
    data, problems = _read_yaml(Path(path), origin)
    if data is None:
        raise ConfigError(problems)
    data = _expand(data, environ, origin, problems)
    env_origins = _apply_env_overrides(data, environ, problems)
    settings: Settings | None = None
    seen_names = _SEEN_NAMES.set(set())
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        known = {problem.location for problem in problems}
        translated = (_translate(error, origin, env_origins) for error in exc.errors())
        problems += [problem for problem in translated if problem.location not in known]
    finally:
        _SEEN_NAMES.reset(seen_names)
    if problems or settings is None:
        raise ConfigError(_scrubbed(problems, _token_values(data)))
    for source in settings.sources:
        if token := source.resolved_token():
            register_secret(token)
    if not settings.state.persistent:
        logger.warning("state.path is %s: runs are counted again after a restart", ":memory:")
    return settings


def render_effective(settings: Settings) -> str:
    """Render the effective settings as YAML, durations compact and the token masked."""
    data = settings.model_dump(mode="json")
    for source in data["sources"]:
        if source["token"] is not None:
            source["token"] = MASK
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


class _Dumper(yaml.SafeDumper):
    """A YAML dumper that writes mappings as blocks and lists of scalars on one line."""


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.SequenceNode:
    """Write a list of scalars in flow style, any other list as a block."""
    flow = not any(isinstance(item, dict | list) for item in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(list, _represent_list)


class _Loader(yaml.SafeLoader):
    """A safe YAML loader that records duplicate keys instead of silently keeping the last."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[tuple[str, int]] = []

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[str] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                if key_node.value in seen:
                    self.duplicates.append((key_node.value, key_node.start_mark.line + 1))
                seen.add(key_node.value)
        return super().construct_mapping(node, deep=deep)


def _read_yaml(path: Path, origin: str) -> tuple[dict[str, Any] | None, list[ConfigProblem]]:
    """Parse the file into a mapping, or return None with the problems that prevented it."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeError) as exc:
        return None, [ConfigProblem(origin, f"cannot read the configuration file: {_reason(exc)}")]
    loader = _Loader(text)
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{origin}:{mark.line + 1}:{mark.column + 1}" if mark else origin
        reason = getattr(exc, "problem", None) or str(exc)
        return None, [ConfigProblem(where, f"invalid YAML: {reason}")]
    finally:
        loader.dispose()
    problems = [
        ConfigProblem(f"{origin}:{line}", f"duplicate key {key!r}: only the last one would count")
        for key, line in loader.duplicates
    ]
    if data is None:
        data = {}
    if not isinstance(data, dict):
        problems.append(ConfigProblem(origin, "the top level must be a mapping of settings"))
        return None, problems
    return data, problems


_REFERENCE = re.compile(r"\$\$|\$\{(?P<body>[^}]*)\}|\$\{")
_VARIABLE = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>.*))?", re.DOTALL)


def _expand(data: Any, environ: Mapping[str, str], origin: str, out: list[ConfigProblem]) -> Any:
    """Return `data` with `${VAR}`, `${VAR:-default}` and `$$` expanded in every string."""

    def walk(value: Any, loc: Loc) -> Any:
        if isinstance(value, dict):
            return {key: walk(item, (*loc, key)) for key, item in value.items()}
        if isinstance(value, list):
            return [walk(item, (*loc, index)) for index, item in enumerate(value)]
        if not isinstance(value, str):
            return value
        errors: list[str] = []
        expanded = _REFERENCE.sub(lambda match: _substitute(match, environ, errors), value)
        out.extend(ConfigProblem(_at(origin, loc), message) for message in errors)
        return expanded

    return walk(data, ())


def _substitute(match: re.Match[str], environ: Mapping[str, str], errors: list[str]) -> str:
    """Return the replacement for one `$$` or `${...}` reference, noting any problem."""
    if match.group(0) == "$$":
        return "$"
    body = match.group("body")
    if body is None:
        errors.append("unclosed '${' (write '$$' for a literal dollar sign)")
        return match.group(0)
    reference = _VARIABLE.fullmatch(body)
    if reference is None:
        errors.append("invalid reference: write ${NAME} or ${NAME:-default}")
        return match.group(0)
    name, default = reference["name"], reference["default"]
    value = environ.get(name)
    if not value and default is not None:  # like the shell: the default covers unset and empty
        return default
    if value is None:
        errors.append(f"environment variable {name} is not set (or write ${{{name}:-default}})")
        return match.group(0)
    return value


def _apply_env_overrides(
    data: dict[str, Any], environ: Mapping[str, str], out: list[ConfigProblem]
) -> dict[Loc, str]:
    """Apply `AGENT_RUNS_EXPORTER_*` variables onto `data`; return which key came from which."""
    origins: dict[Loc, str] = {}
    overrides = []
    for variable, raw in environ.items():
        if variable.upper().startswith(ENV_PREFIX):
            path = tuple(part.lower() for part in variable[len(ENV_PREFIX) :].split("__"))
            overrides.append((path, variable, raw))
    for path, variable, raw in sorted(overrides, key=lambda item: len(item[0])):
        annotation = _annotation_at(path, variable, out)
        if annotation is None:
            continue
        value: Any = raw
        if _is_structured(annotation):
            try:
                value = json.loads(raw)
            except json.JSONDecodeError as exc:
                out.append(ConfigProblem(variable, f"must be JSON for this key: {exc.msg}"))
                continue
        _set_at(data, path, value)
        origins[path] = variable
    return origins


def _annotation_at(path: tuple[str, ...], variable: str, out: list[ConfigProblem]) -> Any:
    """Return the annotation of the field `path` names, or None (noting nested unknown keys)."""
    model: type[BaseModel] | None = Settings
    annotation: Any = None
    for depth, part in enumerate(path):
        field = model.model_fields.get(part) if model is not None else None
        if field is None:
            if depth > 0:  # unknown top-level names are ignored: Kubernetes adds *_PORT etc.
                where = ".".join(path[:depth])
                message = _unknown(part, model) if model else f"{where} has no nested keys"
                out.append(ConfigProblem(variable, message))
            return None
        annotation = field.annotation
        model = _model_of(annotation, lists=False)
    return annotation


def _set_at(data: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    """Set `value` at `path` in `data`, merging mappings into existing mappings."""
    for part in path[:-1]:
        if not isinstance(data.get(part), dict):
            data[part] = {}
        data = data[part]
    current = data.get(path[-1])
    if isinstance(current, dict) and isinstance(value, dict):
        for key, item in value.items():
            _set_at(current, (key,), item)
    else:
        data[path[-1]] = value


def _model_of(annotation: Any, lists: bool = True) -> type[BaseModel] | None:
    """Return the settings model an annotation holds (or lists, if `lists`), if any."""
    if lists and get_origin(annotation) is list:
        annotation = get_args(annotation)[0]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _is_structured(annotation: Any) -> bool:
    """Say whether an environment value for this annotation is written as JSON."""
    return get_origin(annotation) in (list, dict) or _model_of(annotation) is not None


def _model_at(loc: Loc) -> type[BaseModel] | None:
    """Return the settings model found at a key path, or None."""
    model: type[BaseModel] | None = Settings
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        field = model.model_fields.get(part)
        model = _model_of(field.annotation) if field is not None else None
    return model


def _unknown(key: str, model: type[BaseModel]) -> str:
    """Explain an unknown key, suggesting the closest known one."""
    close = difflib.get_close_matches(key, list(model.model_fields), n=1, cutoff=0.6)
    known = ", ".join(model.model_fields)
    hint = f"did you mean {close[0]!r}?" if close else f"known keys: {known}"
    return f"unknown key {key!r} ({hint})"


_TYPE_MESSAGES = {
    "missing": "is required",
    "string_type": "must be a string (quote it in YAML)",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "list_type": "must be a list",
    "dict_type": "must be a mapping of keys to values",
    "model_type": "must be a mapping of keys to values",
}


def _translate(error: Any, origin: str, env_origins: dict[Loc, str]) -> ConfigProblem:
    """Turn one pydantic error into a problem with a location and a human message."""
    loc: Loc = tuple(error["loc"])
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "extra_forbidden":
        model = _model_at(loc[:-1])
        message = _unknown(str(loc[-1]), model) if model else f"unknown key {loc[-1]!r}"
    elif kind == "literal_error":
        message = "must be one of: " + ", ".join(re.findall(r"'([^']*)'", ctx["expected"]))
    elif kind == "value_error":
        message = str(ctx["error"])
    elif kind == "too_short" and ctx.get("min_length") == 1:
        message = "must not be empty"
    else:
        message = _TYPE_MESSAGES.get(kind) or re.sub(r"^Input should", "must", error["msg"])
    for depth in range(len(loc), 0, -1):
        if loc[:depth] in env_origins:
            return ConfigProblem(f"{env_origins[loc[:depth]]}: {_dotted(loc)}", message)
    return ConfigProblem(_at(origin, loc), message)


def _at(origin: str, loc: Loc) -> str:
    """Return the location string for a key path in the file."""
    return f"{origin}: {_dotted(loc)}" if loc else origin


def _dotted(loc: Loc) -> str:
    """Render a key path as `sources[0].platform`."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


def _token_values(data: dict[str, Any]) -> list[str]:
    """Return every token string present in the raw settings data."""
    sources = data.get("sources")
    if not isinstance(sources, list):
        return []
    tokens = (source.get("token") for source in sources if isinstance(source, dict))
    return [token for token in tokens if isinstance(token, str) and token.strip()]


def _scrubbed(problems: list[ConfigProblem], secrets: list[str]) -> list[ConfigProblem]:
    """Return the problems with any secret value masked out of their text."""
    result = []
    for problem in problems:
        location, message = problem.location, problem.message
        for secret in sorted(secrets, key=len, reverse=True):
            location, message = location.replace(secret, MASK), message.replace(secret, MASK)
        result.append(ConfigProblem(location, message))
    return result
