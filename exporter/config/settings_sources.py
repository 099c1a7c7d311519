"""The pydantic-settings sources behind `load_settings`: the YAML file and `AGENT_RUNS_EXPORTER_*`.

    EnvironmentSource (highest)  AGENT_RUNS_EXPORTER_TRACES__EXPORTER=none, ..._SOURCES__0__TOKEN=t
    ConfigFileSource             config.yaml, with ${VAR}, ${VAR:-default} and $$ expanded
    the model's defaults (lowest)

Both are pydantic-settings sources with the parts it does not have added: the file source notes
duplicate keys, YAML syntax errors with their line and column, and `${VAR}` references; the
environment source reads a given mapping, sets list items by number (`__0__`) and rejects unknown
nested keys and bad JSON by variable name. Neither raises: each keeps `problems` for the loader,
which reports them with the validation errors in one `ConfigError`.
"""

from __future__ import annotations

import copy
import difflib
import json
import re
import types
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel
from pydantic_settings import EnvSettingsSource, YamlConfigSettingsSource

from exporter.errors import ConfigProblem

if TYPE_CHECKING:
    from pydantic_settings import BaseSettings

__all__ = [
    "ConfigFileSource",
    "EnvironmentSource",
    "Loc",
    "dotted",
    "key_hint",
    "model_at",
    "unreadable_reason",
    "yaml_problem",
]

Loc = tuple[str | int, ...]
_REFERENCE = re.compile(r"\$\$|\$\{(?P<body>[^}]*)\}|\$\{")
_VARIABLE = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>.*))?", re.DOTALL)


def unreadable_reason(exc: OSError | UnicodeError) -> str:
    """Say briefly why a file could not be read."""
    if isinstance(exc, UnicodeError):
        return "not UTF-8 text"
    return exc.strerror or type(exc).__name__


def dotted(loc: Loc) -> str:
    """Render a key path as `sources[0].platform`."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


def key_hint(key: str, known: list[str]) -> str:
    """Suggest the known key closest to an unknown one, or list the known keys."""
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(known)}"


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


class ConfigFileSource(YamlConfigSettingsSource):
    """The settings file: YAML, duplicate keys noted, `${VAR}` expanded from `environ`."""

    def __init__(
        self, settings_cls: type[BaseSettings], path: str | Path, environ: Mapping[str, str]
    ) -> None:
        self.origin = str(path)
        self.environ = environ
        self.problems: list[ConfigProblem] = []
        self.unusable = True  # until the file is read as a mapping
        super().__init__(settings_cls, yaml_file=Path(path), yaml_file_encoding="utf-8")
        if self.unusable and not self.problems:  # pydantic-settings skips what is not a file
            self.problems.append(self._unreadable(Path(path)))

    def __call__(self) -> dict[str, Any]:
        """Return the file's settings, keys exactly as written."""
        data: dict[str, Any] = self.yaml_data
        return data

    def _read_file(self, file_path: Any) -> dict[str, Any]:
        """Parse the file into a mapping, noting every problem (the mixin's per-file hook)."""
        try:
            text = Path(file_path).read_text(encoding="utf-8")
        except (OSError, UnicodeError) as exc:
            self.problems.append(self._unreadable(Path(file_path), exc))
            return {}
        data = self._parse(text)
        if data is None:
            return {}
        self.unusable = False
        expanded: dict[str, Any] = self._expand(data)
        return expanded

    def _unreadable(self, path: Path, exc: OSError | UnicodeError | None = None) -> ConfigProblem:
        """Say why the file cannot be read."""
        if exc is None:
            try:
                path.open("rb").close()
            except OSError as error:
                exc = error
        reason = unreadable_reason(exc) if exc is not None else "not a regular file"
        return ConfigProblem(self.origin, f"cannot read the configuration file: {reason}")

    def _parse(self, text: str) -> dict[str, Any] | None:
        """Return the YAML document as a mapping, or None with the problems noted."""
        loader = _Loader(text)
        try:
            data = loader.get_single_data()
        except yaml.YAMLError as exc:
            self.problems.append(yaml_problem(exc, self.origin))
            return None
        finally:
            loader.dispose()
        self.problems += [
            ConfigProblem(
                f"{self.origin}:{line}", f"duplicate key {key!r}: only the last one would count"
            )
            for key, line in loader.duplicates
        ]
        if data is None:
            return {}
        if not isinstance(data, dict):
            self.problems.append(
                ConfigProblem(self.origin, "the top level must be a mapping of settings")
            )
            return None
        return data

    def _expand(self, value: Any, loc: Loc = ()) -> Any:
        """Return `value` with `${VAR}`, `${VAR:-default}` and `$$` expanded in every string."""
        if isinstance(value, dict):
            return {key: self._expand(item, (*loc, key)) for key, item in value.items()}
        if isinstance(value, list):
            return [self._expand(item, (*loc, index)) for index, item in enumerate(value)]
        if not isinstance(value, str):
            return value
        errors: list[str] = []
        expanded = _REFERENCE.sub(lambda match: _substitute(match, self.environ, errors), value)
        where = f"{self.origin}: {dotted(loc)}" if loc else self.origin
        self.problems += [ConfigProblem(where, message) for message in errors]
        return expanded


def yaml_problem(exc: yaml.YAMLError, origin: str) -> ConfigProblem:
    """Describe a YAML syntax error at `origin:line:column`."""
    mark = getattr(exc, "problem_mark", None)
    where = f"{origin}:{mark.line + 1}:{mark.column + 1}" if mark else origin
    reason = getattr(exc, "problem", None) or str(exc)
    return ConfigProblem(where, f"invalid YAML: {reason}")


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


class EnvironmentSource(EnvSettingsSource):
    """`AGENT_RUNS_EXPORTER_*` variables from `environ`, over the file's values.

    Prefix and `__` nesting come from the settings' model_config. `origins` maps each key path
    set here to the variable that set it, so a problem can name the variable.
    """

    def __init__(
        self, settings_cls: type[BaseSettings], environ: Mapping[str, str], file: ConfigFileSource
    ) -> None:
        super().__init__(settings_cls)
        self.file = file
        self.problems: list[ConfigProblem] = []
        self.origins: dict[Loc, str] = {}
        self.items: list[tuple[Loc, str, Any]] = []  # (path, variable, value) of list items
        self.values: dict[str, Any] | None = None
        kept = [item for item in environ.items() if self._accepts(*item)]
        self.env_vars = {self._apply_case_sensitive(name): value for name, value in kept}

    def __call__(self) -> dict[str, Any]:
        """Return the values set by variables, with numbered list items applied to their list."""
        if self.values is None:
            self.values = self._read()
        return self.values

    def _read(self) -> dict[str, Any]:
        """Read the variables through pydantic-settings, then apply the numbered list items."""
        data = super().__call__()
        for path, variable, value in sorted(self.items, key=_item_order):
            name = str(path[0])
            if name not in data:  # the list as the file (or nothing) has it, to change items of
                data[name] = copy.deepcopy(self.file().get(name) or [])
            if isinstance(data[name], list):
                self._set_item(data[name], path, variable, value)
        return data

    def _accepts(self, variable: str, raw: str) -> bool:
        """Check one variable; keep it for pydantic-settings, or as a list item, or drop it."""
        prefix = self.env_prefix
        if not variable.upper().startswith(prefix.upper()) or len(variable) == len(prefix):
            return False
        path: Loc = tuple(_part(part) for part in variable[len(prefix) :].split("__"))
        annotation, problem = _annotation_at(self.settings_cls, path)
        if problem:
            self.problems.append(ConfigProblem(variable, problem))
        if annotation is None:
            return False
        value: Any = raw
        if _is_structured(annotation):
            try:
                value = json.loads(raw)
            except json.JSONDecodeError as exc:
                self.problems.append(
                    ConfigProblem(variable, f"must be JSON for this key: {exc.msg}")
                )
                return False
        self.origins[path] = variable
        if any(isinstance(part, int) for part in path):
            self.items.append((path, variable, value))
            return False
        return True

    def _set_item(self, items: list[Any], path: Loc, variable: str, value: Any) -> None:
        """Set `value` at `path` inside a list item, adding the next item if it is numbered so."""
        index = int(path[1])
        if index > len(items):
            where = dotted(path[:1])
            message = f"{where} has {len(items)} item(s): a new item must be number {len(items)}"
            self.problems.append(ConfigProblem(variable, message))
            return
        if index == len(items):
            items.append({})
            self.origins.setdefault(path[:2], variable)
        if len(path) == 2:
            items[index] = _merged(items[index], value)
            return
        target = items[index]
        for part in path[2:-1]:
            if not isinstance(target, dict):
                return  # validation reports the item's type
            target = target.setdefault(part, {})
        if isinstance(target, dict):
            target[path[-1]] = _merged(target.get(path[-1]), value)


def _item_order(item: tuple[Loc, str, Any]) -> tuple[int, int]:
    """Order list-item variables so a whole item comes before its keys, and items by number."""
    path = item[0]
    return len(path), int(path[1])


def _part(text: str) -> str | int:
    """Read one `__`-separated part of a variable name: a key, or a list item's number."""
    return int(text) if text.isdigit() else text.lower()


def _merged(current: Any, value: Any) -> Any:
    """Return `value` merged into `current` when both are mappings, else `value`."""
    if isinstance(current, dict) and isinstance(value, dict):
        return {**current, **{key: _merged(current.get(key), item) for key, item in value.items()}}
    return value


def _annotation_at(root: type[BaseModel], path: Loc) -> tuple[Any, str | None]:
    """Return the annotation of the setting `path` names, or None with a problem to report."""
    annotation: Any = root
    for depth, part in enumerate(path):
        where = dotted(path[:depth])
        annotation = _optional_of(annotation)
        model = _model_of(annotation)
        if model is not None:
            field = model.model_fields.get(str(part))
            if field is None and depth == 0:  # ignored: Kubernetes adds *_PORT, *_SERVICE_HOST
                return None, None
            if field is None:
                return (
                    None,
                    f"unknown key {part!r} ({key_hint(str(part), list(model.model_fields))})",
                )
            annotation = field.annotation
        elif get_origin(annotation) is list and isinstance(part, int) and depth == 1:
            annotation = get_args(annotation)[0]
        elif get_origin(annotation) is list and depth == 1:
            return None, f"{where} is a list: name an item by its number, from 0"
        elif get_origin(annotation) is list:
            return None, f"{where} is a list: set it whole, as JSON"
        else:
            return None, f"{where} has no nested keys"
    return annotation, None


def model_at(root: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """Return the model found at a key path (through lists and `| None`), or None."""
    model: type[BaseModel] | None = root
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        field = model.model_fields.get(part)
        annotation = _optional_of(field.annotation) if field is not None else None
        if get_origin(annotation) is list:
            annotation = get_args(annotation)[0]
        model = _model_of(annotation)
    return model


def _optional_of(annotation: Any) -> Any:
    """Return `X` for `X | None`, else the annotation itself."""
    if get_origin(annotation) in (Union, types.UnionType):
        args = [arg for arg in get_args(annotation) if arg is not type(None)]
        return args[0] if len(args) == 1 else annotation
    return annotation


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """Return the model class an annotation is, if it is one."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _is_structured(annotation: Any) -> bool:
    """Say whether an environment value for this annotation is written as JSON."""
    annotation = _optional_of(annotation)
    return get_origin(annotation) in (list, dict) or _model_of(annotation) is not None
