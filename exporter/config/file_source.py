"""The settings file as a pydantic-settings source: YAML with `${VAR}` expansion and its problems.

`ConfigFileSource` is a `YamlConfigSettingsSource` that also notes duplicate keys, YAML syntax
errors at `<file>:<line>:<column>`, an unreadable file, and `${VAR}` / `${VAR:-default}` / `$$`
references expanded from a given environment. It never raises: the loader reports `problems`
with the validation errors in one `ConfigError`. The key-path helpers here serve every config
report (`sources[0].platform`).

Hostile files are problems too, found before any work grows with them: a file that is not
regular (a FIFO is never opened) or larger than `textfile.MAX_CONFIG_BYTES`, and YAML whose
anchors and aliases expand to more than `MAX_VALUES` values or that nests deeper than
`MAX_DEPTH` (measured on the composed node graph, each shared node once).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic_settings import YamlConfigSettingsSource

from exporter import textfile
from exporter.errors import ConfigError, ConfigProblem

if TYPE_CHECKING:
    from pydantic_settings import BaseSettings

__all__ = [
    "ConfigFileSource",
    "Loc",
    "dotted",
    "read_yaml",
    "unreadable_reason",
    "yaml_problem",
]

Loc = tuple[str | int, ...]
_REFERENCE = re.compile(r"\$\$|\$\{(?P<body>[^}]*)\}|\$\{")
_VARIABLE = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>.*))?", re.DOTALL)
MAX_VALUES = 1_000_000  # scalars, lists and mappings once aliases are expanded
MAX_DEPTH = 32  # lists and mappings inside each other (the settings need five)


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
            text = textfile.read_text(file_path, textfile.MAX_CONFIG_BYTES)
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
                textfile.read_text(path, 0)  # stats first: a FIFO would block an open
            except (OSError, UnicodeError) as error:
                exc = error
        reason = unreadable_reason(exc) if exc is not None else "not a regular file"
        return ConfigProblem(self.origin, f"cannot read the configuration file: {reason}")

    def _parse(self, text: str) -> dict[str, Any] | None:
        """Return the YAML document as a mapping, or None with the problems noted."""
        try:
            data, duplicates = read_yaml(text, self.origin)
        except ConfigError as exc:
            self.problems += exc.problems
            return None
        self.problems += duplicates
        if data is None:
            return {}
        if not isinstance(data, dict):
            self.problems.append(
                ConfigProblem(self.origin, "the top level must be a mapping of settings")
            )
            return None
        return {str(key): value for key, value in data.items()}  # `1:` is an unknown key too

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


def read_yaml(text: str, origin: str) -> tuple[Any, list[ConfigProblem]]:
    """Return the YAML document in `text` (None when empty) and its duplicate keys as problems.

    Raises ConfigError for a syntax error, an alias bomb or too deep a nesting.
    """
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is not None and (refusal := _oversized(node)):
            raise ConfigError([ConfigProblem(origin, refusal)])
        data = None if node is None else loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise ConfigError([yaml_problem(exc, origin)]) from None
    except RecursionError:
        raise ConfigError([ConfigProblem(origin, _TOO_DEEP)]) from None
    finally:
        loader.dispose()
    duplicates = [
        ConfigProblem(f"{origin}:{line}", f"duplicate key {key!r}: only the last one would count")
        for key, line in loader.duplicates
    ]
    return data, duplicates


_TOO_DEEP = f"the YAML nests lists and mappings more than {MAX_DEPTH} deep"


class _Oversized(Exception):
    """The node graph expands past a bound (the message says which)."""


def _oversized(node: yaml.Node) -> str | None:
    """Say why the composed document is too big to build, or None when it is not."""
    try:
        _measure(node, 0, {})
    except _Oversized as exc:
        return str(exc)
    return None


def _measure(node: yaml.Node, depth: int, memo: dict[int, tuple[int, int]]) -> tuple[int, int]:
    """Return (values, height) of `node` with aliases expanded, each shared node measured once."""
    if depth > MAX_DEPTH:
        raise _Oversized(_TOO_DEEP)
    known = memo.get(id(node))
    if known is not None:
        if depth + known[1] > MAX_DEPTH:
            raise _Oversized(_TOO_DEEP)
        return known
    children: list[yaml.Node] = []
    if isinstance(node, yaml.SequenceNode):
        children = list(node.value)
    elif isinstance(node, yaml.MappingNode):
        children = [part for pair in node.value for part in pair]
    size, height = 1, 0
    for child in children:
        child_size, child_height = _measure(child, depth + 1, memo)
        size, height = size + child_size, max(height, child_height + 1)
        if size > MAX_VALUES:
            raise _Oversized(
                f"the YAML expands to more than {MAX_VALUES} values (anchors and aliases)"
            )
    memo[id(node)] = (size, height)
    return size, height


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
