"""The environment as a pydantic-settings source: `AGENT_RUNS_EXPORTER_*` over the file's values.

    AGENT_RUNS_EXPORTER_POLL_INTERVAL=5s          a key
    AGENT_RUNS_EXPORTER_TRACES__EXPORTER=none     a nested key (`__`, from the model_config)
    AGENT_RUNS_EXPORTER_TRACES='{"timeout": "3s"}'  a section or list as JSON
    AGENT_RUNS_EXPORTER_SOURCES__0__TOKEN=...     one list item, by its number from 0
    AGENT_RUNS_EXPORTER_SOURCES__0__HEADERS='{"X-Org": "o1"}'  a mapping (headers) as JSON

`EnvironmentSource` is an `EnvSettingsSource` that reads a given mapping instead of os.environ,
sets list items by number (which pydantic-settings does not), and keeps a problem, named by the
variable, for an unknown nested key or bad JSON instead of raising. Unknown top-level names are
ignored: Kubernetes adds `AGENT_RUNS_EXPORTER_PORT` and the like for a Service.
"""

from __future__ import annotations

import copy
import difflib
import json
import types
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic_settings import EnvSettingsSource

from exporter.config.file_source import ConfigFileSource, Loc, dotted
from exporter.errors import ConfigProblem

if TYPE_CHECKING:
    from pydantic_settings import BaseSettings

__all__ = ["EnvironmentSource", "key_hint", "model_at"]


def key_hint(key: str, known: list[str]) -> str:
    """Suggest the known key closest to an unknown one, or list the known keys."""
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(known)}"


class EnvironmentSource(EnvSettingsSource):
    """`AGENT_RUNS_EXPORTER_*` variables from `environ`, over the file's values.

    Prefix and `__` nesting come from the settings' model_config. `origins` maps each key path
    set here to the variable that set it, so a problem can name the variable.
    """

    def __init__(
        self, settings_cls: type[BaseSettings], environ: Mapping[str, str], file: ConfigFileSource
    ) -> None:
        super().__init__(settings_cls)  # reads os.environ; replaced by `environ` below
        self.file = file
        self.problems: list[ConfigProblem] = []
        self.origins: dict[Loc, str] = {}
        self.items: list[tuple[Loc, str, Any]] = []  # (path, variable, value) of list items
        self.values: dict[str, Any] | None = None
        kept = [item for item in environ.items() if self._accepts(*item)]
        self.env_vars = {name if self.case_sensitive else name.lower(): v for name, v in kept}

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
        parts = variable[len(prefix) :].split(self.env_nested_delimiter or "__")
        path: Loc = tuple(_part(part) for part in parts)
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
        elif get_origin(annotation) is dict:  # a variable name cannot spell `X-Org` (case, dash)
            return None, f"{where} is a mapping: set it whole, as a JSON object"
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
