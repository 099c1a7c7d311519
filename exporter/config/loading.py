"""Build the settings from their pydantic-settings sources, reporting every problem at once.

pydantic-settings merges the sources (`file_source`, `env_source`) and validates; this module
turns what goes wrong into one `ConfigError`. A problem's location reads `<file>: <key path>`
(`config.yaml: sources[0].platform`), `<ENV_VAR>: <key path>` when an environment variable
supplied the value, `<ENV_VAR>` alone for a variable that names no setting, or
`<file>:<line>[:<column>]` for YAML. Token values are masked out of every problem. The settings
model is passed in as `root`, so this module never imports it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_settings import BaseSettings
from pydantic_settings.exceptions import SettingsError

from exporter.config.env_source import EnvironmentSource, key_hint, model_at
from exporter.config.file_source import ConfigFileSource, Loc, dotted
from exporter.errors import ConfigError, ConfigProblem
from exporter.logs import SHORT_SECRET, mask_values

__all__ = ["load"]

S = TypeVar("S", bound=BaseSettings)
Checks = Callable[[Mapping[str, Any]], list[tuple[Loc, str]]]
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


def load(root: type[S], path: str | Path, environ: Mapping[str, str], *, checks: Checks) -> S:
    """Build `root` from the YAML file at `path` under `environ`, or raise one ConfigError.

    Precedence: environment, then file, then defaults. `checks` looks across the raw values for
    what one field cannot see (repeated names) and returns (key path, message) pairs; the model's
    own root-level summary of the same fact is then left out.
    """
    file = ConfigFileSource(root, path, environ)
    if file.unusable:
        raise ConfigError(file.problems)
    env = EnvironmentSource(root, environ, file)
    values = {**file(), **env()}  # shallow: enough for the checks
    problems = [*file.problems, *env.problems]
    crossed = [ConfigProblem(_where(loc, file.origin, env.origins), m) for loc, m in checks(values)]
    settings, errors = _build(root, env, file)
    known = {problem.location for problem in problems + crossed}
    for error in errors:
        if crossed and not error["loc"]:
            continue
        problem = _translate(error, file.origin, env.origins, root)
        if problem.location not in known:
            problems.append(problem)
    problems += crossed
    if problems or settings is None:
        raise ConfigError(_scrubbed(problems, _token_values(file()) + _token_values(env())))
    return settings


def _build(
    root: type[S], env: EnvironmentSource, file: ConfigFileSource
) -> tuple[S | None, list[Any]]:
    """Let pydantic-settings merge the sources and validate; return the settings or the errors."""
    try:
        return root(_build_sources=((env, file), {})), []
    except ValidationError as exc:
        return None, list(exc.errors())
    except SettingsError as exc:  # not expected: the sources check what pydantic-settings parses
        return None, [{"loc": (), "type": "settings", "msg": str(exc)}]


def _translate(
    error: Any, origin: str, env_origins: dict[Loc, str], root: type[BaseModel]
) -> ConfigProblem:
    """Turn one pydantic error into a problem with a location and a human message."""
    loc: Loc = tuple(error["loc"])
    if loc and loc[-1] == "[key]":  # a mapping's key (a header name): the key path names it
        loc = loc[:-1]
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "extra_forbidden":
        model = model_at(root, loc[:-1])
        known = list(model.model_fields) if model else []
        message = f"unknown key {loc[-1]!r} ({key_hint(str(loc[-1]), known)})"
    elif kind == "literal_error":
        message = "must be one of: " + ", ".join(re.findall(r"'([^']*)'", ctx["expected"]))
    elif kind == "value_error":
        message = str(ctx["error"])
    elif kind == "too_short" and ctx.get("min_length") == 1:
        message = "must not be empty"
    else:
        message = _TYPE_MESSAGES.get(kind) or re.sub(r"^Input should", "must", error["msg"])
    return ConfigProblem(_where(loc, origin, env_origins), message)


def _where(loc: Loc, origin: str, env_origins: dict[Loc, str]) -> str:
    """Locate a key path: at the variable that set it (or a section of it), else in the file."""
    for depth in range(len(loc), 0, -1):
        if loc[:depth] in env_origins:
            return f"{env_origins[loc[:depth]]}: {dotted(loc)}"
    return f"{origin}: {dotted(loc)}" if loc else origin


def _token_values(values: Mapping[str, Any]) -> list[str]:
    """Return every token and header value string present in the raw settings values."""
    sources = values.get("sources")
    if not isinstance(sources, list):
        return []
    found: list[Any] = []
    for source in sources:
        if isinstance(source, dict):
            headers = source.get("headers")
            found += [source.get("token"), *(headers.values() if isinstance(headers, dict) else ())]
    return [value for value in found if isinstance(value, str) and value.strip()]


def _scrubbed(problems: list[ConfigProblem], secrets: list[str]) -> list[ConfigProblem]:
    """Return the problems with any secret value masked out of their text."""
    long = [secret for secret in secrets if len(secret) >= SHORT_SECRET]  # short: `[0]` is a word
    result = []
    for problem in problems:
        location = mask_values(problem.location, long)
        result.append(ConfigProblem(location, mask_values(problem.message, secrets)))
    return result
