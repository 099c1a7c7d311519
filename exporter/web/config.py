"""Read the web config file (the Prometheus exporter-toolkit format): TLS and basic-auth users.

    tls_server_config:
      cert_file: server.crt             # relative paths are relative to this file
      key_file: server.key
      client_auth_type: RequireAndVerifyClientCert   # or VerifyClientCertIfGiven, NoClientCert
      client_ca_file: clients-ca.crt    # required by the two verifying types, refused otherwise
      min_version: TLS12                # TLS10, TLS11, TLS12 (default), TLS13; max_version too
    basic_auth_users:
      prometheus: $2y$10$...            # bcrypt hash: `htpasswd -nBC 10 "" | tr -d ':\\n'`

`load_web_config` validates the file with pydantic models (unknown keys refused), then loads the
certificates and keys, and raises one `ConfigError` listing every problem as `<file>: <key>:
<message>`. Hashes never appear in a problem. Toolkit keys this server cannot honour are refused
by name rather than silently ignored.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from exporter import textfile
from exporter.config.env_source import key_hint, model_at
from exporter.config.file_source import dotted, read_yaml, unreadable_reason
from exporter.errors import ConfigError, ConfigProblem

CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
_UNVERIFIED_CLIENT_AUTH = ("RequestClientCert", "RequireAnyClientCert", "RequireClientCert")
TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
_BCRYPT = re.compile(r"\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}")
_MESSAGES = {
    "missing": "is required to serve TLS",
    "dict_type": "must map user names to bcrypt hashes",
    "model_type": "must be a mapping of keys to values",
}


def _path_text(value: Any) -> str | Path:
    """Require a non-empty string (or a Path, from code)."""
    if isinstance(value, Path):
        return value
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a non-empty string")
    return value


def _beside_the_file(value: Path, info: ValidationInfo) -> Path:
    """Resolve a relative path against the web config file's folder (the `base` in context)."""
    base = (info.context or {}).get("base")
    return value if base is None else base / value


def _verified_client_auth(value: Any) -> Any:
    """Refuse the toolkit's client-auth types that ask for a certificate without verifying it."""
    if value in _UNVERIFIED_CLIENT_AUTH:
        raise ValueError(
            f"{value} is not supported (a client certificate cannot be asked for without "
            "being verified here): use VerifyClientCertIfGiven or RequireAndVerifyClientCert"
        )
    return value


def _user_name(value: Any) -> str:
    """Require a user name that can appear in a basic-auth header."""
    if not isinstance(value, str) or not value or ":" in value:
        raise ValueError(f"user name {value!r} must be a string without ':'")
    return value


def _bcrypt_hash(value: Any) -> str:
    """Require a bcrypt hash, so a plain password is never accepted."""
    if not isinstance(value, str) or not _BCRYPT.fullmatch(value):
        raise ValueError("must be a bcrypt hash ($2y$10$... , 60 characters), not a plain password")
    return value


FilePath = Annotated[Path, BeforeValidator(_path_text), AfterValidator(_beside_the_file)]
ClientAuth = Literal["NoClientCert", "VerifyClientCertIfGiven", "RequireAndVerifyClientCert"]
TlsVersion = Literal["TLS10", "TLS11", "TLS12", "TLS13"]


class TlsServerConfig(BaseModel):
    """The server side of TLS: certificate, key, client verification and protocol versions."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    UNSUPPORTED: ClassVar[tuple[str, ...]] = (
        "cert",
        "key",
        "client_ca",
        "cipher_suites",
        "curve_preferences",
        "prefer_server_cipher_suites",
        "client_allowed_sans",
    )

    cert_file: FilePath
    key_file: FilePath
    client_auth_type: Annotated[ClientAuth, BeforeValidator(_verified_client_auth)] = "NoClientCert"
    client_ca_file: FilePath | None = Field(default=None, validate_default=True)
    min_version: TlsVersion = "TLS12"
    max_version: TlsVersion | None = None

    @model_validator(mode="before")
    @classmethod
    def _drop_nulls(cls, data: Any) -> Any:
        """Read an empty key (`min_version:`) as an absent one."""
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if value is not None}
        return data

    @field_validator("max_version")
    @classmethod
    def _check_max_version(cls, value: TlsVersion | None, info: ValidationInfo) -> Any:
        low = info.data.get("min_version")
        if value is not None and low is not None and TLS_VERSIONS[value] < TLS_VERSIONS[low]:
            raise ValueError(f"{value} is below min_version {low}: no TLS version would be left")
        return value

    @field_validator("client_ca_file")
    @classmethod
    def _check_client_ca_file(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        auth = info.data.get("client_auth_type")
        if auth == "NoClientCert" and value is not None:
            raise ValueError(
                "is set but client_auth_type does not verify client certificates: set "
                "client_auth_type to RequireAndVerifyClientCert (or VerifyClientCertIfGiven)"
            )
        if auth not in (None, "NoClientCert") and value is None:
            raise ValueError(f"is required by {auth}")
        return value

    def ssl_context(self) -> ssl.SSLContext:
        """Build the server's TLS context (raises OSError or ssl.SSLError if files are bad)."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = TLS_VERSIONS[self.min_version]
        if self.max_version is not None:
            context.maximum_version = TLS_VERSIONS[self.max_version]
        context.load_cert_chain(self.cert_file, self.key_file)
        if self.client_ca_file is not None:
            context.load_verify_locations(cafile=self.client_ca_file)
        context.verify_mode = CLIENT_AUTH[self.client_auth_type]
        return context


class WebConfigFile(BaseModel):
    """The web config file as written: TLS and basic-auth users, nothing else."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    UNSUPPORTED: ClassVar[tuple[str, ...]] = ("http_server_config", "rate_limit")

    tls_server_config: TlsServerConfig | None = None
    basic_auth_users: dict[
        Annotated[str, BeforeValidator(_user_name)], Annotated[str, BeforeValidator(_bcrypt_hash)]
    ] = Field(default_factory=dict)

    @field_validator("basic_auth_users", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return {} if value is None else value


@dataclass(frozen=True, slots=True)
class WebConfig:
    """What the web config file asks for; empty (plain HTTP, no auth) without a file."""

    path: str | None = None
    tls: TlsServerConfig | None = None
    users: Mapping[str, bytes] = field(default_factory=dict)

    def ssl_context(self) -> ssl.SSLContext | None:
        """Return the TLS context to serve with, or None for plain HTTP."""
        return None if self.tls is None else self.tls.ssl_context()

    def describe(self) -> str:
        """Summarize the config in one line, for check-config and the start-up log."""
        if self.tls is None:
            tls = "plain HTTP"
        else:
            tls = f"TLS (min {self.tls.min_version}, client certs: {self.tls.client_auth_type})"
        users = f"basic auth for {len(self.users)} user(s)" if self.users else "no basic auth"
        return f"{tls}, {users}"


def load_web_config(path: str | None) -> WebConfig:
    """Read and validate the web config file at `path` (None: no file), or raise ConfigError."""
    if path is None:
        return WebConfig()
    data, problems = _read(path)
    if data is None:
        raise ConfigError(problems)
    try:
        parsed = WebConfigFile.model_validate(data, context={"base": Path(path).parent})
    except ValidationError as exc:
        errors = exc.errors()
    else:
        errors = []
        if parsed.tls_server_config is not None:
            problems += _load_tls_files(parsed.tls_server_config, f"{path}: tls_server_config")
    failed_keys = {tuple(error["loc"][:-1]) for error in errors if error["loc"][-1:] == ("[key]",)}
    problems += [_translate(e, path) for e in errors if tuple(e["loc"]) not in failed_keys]
    if problems:
        raise ConfigError(problems)
    users = {name: hashed.encode("ascii") for name, hashed in parsed.basic_auth_users.items()}
    return WebConfig(path=path, tls=parsed.tls_server_config, users=users)


def _read(path: str) -> tuple[dict[str, Any] | None, list[ConfigProblem]]:
    """Parse the file into a mapping, or return None with the problem that prevented it."""
    try:
        data, duplicates = read_yaml(textfile.read_text(path, textfile.MAX_CONFIG_BYTES), path)
    except (OSError, UnicodeError) as exc:
        reason = unreadable_reason(exc)
        return None, [ConfigProblem(path, f"cannot read the web config file: {reason}")]
    except ConfigError as exc:  # a syntax error, an alias bomb, too deep a nesting
        return None, exc.problems
    if data is None:
        return {}, duplicates
    if not isinstance(data, dict):
        return None, [ConfigProblem(path, "the top level must be a mapping of settings")]
    return data, duplicates  # a repeated user name, say: a problem, not the last one winning


def _translate(error: Any, path: str) -> ConfigProblem:
    """Turn one pydantic error into a `<file>: <key>` problem with a human message."""
    loc = tuple(error["loc"])
    kind, ctx = error["type"], error.get("ctx") or {}
    if loc[-1:] == ("[key]",):  # a user name: the problem is the mapping's
        loc = loc[:-2]
    if kind == "extra_forbidden":
        model = model_at(WebConfigFile, loc[:-1]) or WebConfigFile
        key = str(loc[-1])
        unsupported = key in getattr(model, "UNSUPPORTED", ())
        hint = key_hint(key, list(model.model_fields))
        message = (
            "is not supported by agent-runs-exporter; remove it"
            if unsupported
            else f"unknown key ({hint})"
        )
    elif kind == "literal_error":
        message = "must be one of: " + ", ".join(re.findall(r"'([^']*)'", ctx["expected"]))
    elif kind == "value_error":
        message = str(ctx["error"])
    else:
        message = _MESSAGES.get(kind, error["msg"])
    return ConfigProblem(f"{path}: {dotted(loc)}" if loc else path, message)


def _load_tls_files(config: TlsServerConfig, where: str) -> list[ConfigProblem]:
    """Load the certificate, key and client CAs now, so a bad file fails at start-up."""
    files = [("cert_file", config.cert_file), ("key_file", config.key_file)]
    if config.client_ca_file is not None:
        files.append(("client_ca_file", config.client_ca_file))
    problems = []
    for key, file in files:
        try:
            file.read_bytes()
        except OSError as exc:
            problems.append(ConfigProblem(f"{where}.{key}", f"cannot read {file}: {exc.strerror}"))
    if problems:
        return problems
    try:
        config.ssl_context()
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        reason = getattr(exc, "reason", None) or str(exc)
        message = f"cannot use the certificate, key or client CA file: {reason}"
        return [ConfigProblem(where, message)]
    return []
