"""The settings-file loader behind `load_settings`, which reports every problem with its location.

Every step appends to one list of `ConfigProblem`s instead of raising, so one `ConfigError` lists
them all. A problem's location reads `<file>: <key path>` (`config.yaml: sources[0].platform`),
`<ENV_VAR>: <key path>` when an environment override supplied the value, or
`<file>:<line>:<column>` for YAML syntax. Token values are masked out of every problem. The
settings model is passed in as `root`, so this module never imports it.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TypeVar, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from exporter.errors import ConfigError, ConfigProblem
from exporter.logs import MASK

__all__ = ["load", "load_scope", "unreadable_reason"]

M = TypeVar("M", bound=BaseModel)
_SCOPE: ContextVar[dict[str, Any] | None] = ContextVar("config_load_scope", default=None)
Loc = tuple[str | int, ...]
_REFERENCE = re.compile(r"\$\$|\$\{(?P<body>[^}]*)\}|\$\{")
_VARIABLE = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>.*))?", re.DOTALL)
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


def load(path: str | Path, environ: Mapping[str, str], *, root: type[M], prefix: str) -> M:
    """Read the YAML file at `path`, apply `environ`, validate as `root`, or raise ConfigError."""
    origin = str(path)
    data, problems = _read_yaml(Path(path), origin)
    if data is None:
        raise ConfigError(problems)
    data = _expand(data, environ, origin, problems)
    env_origins = _apply_env_overrides(data, environ, problems, root=root, prefix=prefix)
    settings: M | None = None
    scope = _SCOPE.set({})
    try:
        settings = root.model_validate(data)
    except ValidationError as exc:
        known = {problem.location for problem in problems}
        translated = (_translate(error, origin, env_origins, root) for error in exc.errors())
        problems += [problem for problem in translated if problem.location not in known]
    finally:
        _SCOPE.reset(scope)
    if problems or settings is None:
        raise ConfigError(_scrubbed(problems, _token_values(data)))
    return settings


def load_scope() -> dict[str, Any] | None:
    """Return the scratch mapping of the `load` in progress, for checks across values, else None."""
    return _SCOPE.get()


def unreadable_reason(exc: OSError | UnicodeError) -> str:
    """Say briefly why a file could not be read."""
    if isinstance(exc, UnicodeError):
        return "not UTF-8 text"
    return exc.strerror or type(exc).__name__


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
        message = f"cannot read the configuration file: {unreadable_reason(exc)}"
        return None, [ConfigProblem(origin, message)]
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
    data: dict[str, Any],
    environ: Mapping[str, str],
    out: list[ConfigProblem],
    *,
    root: type[BaseModel],
    prefix: str,
) -> dict[Loc, str]:
    """Apply `{prefix}*` variables onto `data`; return which key came from which."""
    origins: dict[Loc, str] = {}
    overrides = []
    for variable, raw in environ.items():
        if variable.upper().startswith(prefix):
            path = tuple(part.lower() for part in variable[len(prefix) :].split("__"))
            overrides.append((path, variable, raw))
    for path, variable, raw in sorted(overrides, key=lambda item: len(item[0])):
        annotation = _annotation_at(root, path, variable, out)
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


def _annotation_at(
    root: type[BaseModel], path: tuple[str, ...], variable: str, out: list[ConfigProblem]
) -> Any:
    """Return the annotation of the field `path` names, or None (noting nested unknown keys)."""
    model: type[BaseModel] | None = root
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


def _model_at(root: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """Return the settings model found at a key path, or None."""
    model: type[BaseModel] | None = root
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


def _translate(
    error: Any, origin: str, env_origins: dict[Loc, str], root: type[BaseModel]
) -> ConfigProblem:
    """Turn one pydantic error into a problem with a location and a human message."""
    loc: Loc = tuple(error["loc"])
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "extra_forbidden":
        model = _model_at(root, loc[:-1])
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
