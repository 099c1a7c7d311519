"""Read the web config file (the Prometheus exporter-toolkit format): TLS and basic-auth users.

    tls_server_config:
      cert_file: server.crt             # relative paths are relative to this file
      key_file: server.key
      client_auth_type: RequireAndVerifyClientCert   # or VerifyClientCertIfGiven, NoClientCert
      client_ca_file: clients-ca.crt    # required by the two verifying types, refused otherwise
      min_version: TLS12                # TLS10, TLS11, TLS12 (default), TLS13; max_version too
    basic_auth_users:
      prometheus: $2y$10$...            # bcrypt hash: `htpasswd -nBC 10 "" | tr -d ':\\n'`

`load_web_config` validates everything at once (certificates and keys are loaded, hashes checked
for shape) and raises one `ConfigError` listing every problem. Hashes never appear in a problem.
Toolkit keys this server cannot honour are refused by name rather than silently ignored.
"""

from __future__ import annotations

import difflib
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

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
_TLS_KEYS = (
    "cert_file",
    "key_file",
    "client_auth_type",
    "client_ca_file",
    "min_version",
    "max_version",
)
_UNSUPPORTED = {
    "tls_server_config": (
        "cert",
        "key",
        "client_ca",
        "cipher_suites",
        "curve_preferences",
        "prefer_server_cipher_suites",
        "client_allowed_sans",
    ),
    "": ("http_server_config", "rate_limit"),
}
_BCRYPT = re.compile(r"\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}")


@dataclass(frozen=True, slots=True)
class TlsServerConfig:
    """The server side of TLS: certificate, key, client verification and protocol versions."""

    cert_file: Path
    key_file: Path
    client_auth_type: str = "NoClientCert"
    client_ca_file: Path | None = None
    min_version: str = "TLS12"
    max_version: str | None = None

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
    problems: list[ConfigProblem] = []
    data = _read(path, problems)
    if data is None:
        raise ConfigError(problems)
    _check_keys(data, "", ("tls_server_config", "basic_auth_users"), path, problems)
    tls = _tls(data.get("tls_server_config"), Path(path).parent, path, problems)
    users = _users(data.get("basic_auth_users"), path, problems)
    if problems:
        raise ConfigError(problems)
    return WebConfig(path=path, tls=tls, users=users)


def _read(path: str, problems: list[ConfigProblem]) -> dict[str, Any] | None:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeError) as exc:
        reason = "not UTF-8 text" if isinstance(exc, UnicodeError) else exc.strerror
        problems.append(ConfigProblem(path, f"cannot read the web config file: {reason}"))
        return None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else path
        problems.append(ConfigProblem(where, f"invalid YAML: {getattr(exc, 'problem', exc)}"))
        return None
    if data is None:
        return {}
    if not isinstance(data, dict):
        problems.append(ConfigProblem(path, "the top level must be a mapping of settings"))
        return None
    return data


def _check_keys(
    data: dict[str, Any], section: str, known: tuple[str, ...], path: str, out: list[ConfigProblem]
) -> None:
    unsupported = _UNSUPPORTED.get(section, ())
    for key in data:
        where = f"{path}: {section + '.' if section else ''}{key}"
        if key in unsupported:
            out.append(ConfigProblem(where, "is not supported by agent-runs-exporter; remove it"))
        elif key not in known:
            close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(known)}"
            out.append(ConfigProblem(where, f"unknown key ({hint})"))


def _tls(raw: Any, base: Path, path: str, out: list[ConfigProblem]) -> TlsServerConfig | None:
    if raw is None:
        return None
    where = f"{path}: tls_server_config"
    if not isinstance(raw, dict):
        out.append(ConfigProblem(where, "must be a mapping of keys to values"))
        return None
    before = len(out)
    _check_keys(raw, "tls_server_config", _TLS_KEYS, path, out)
    strings = {key: raw[key] for key in _TLS_KEYS if raw.get(key) is not None}
    for key, value in strings.items():
        if not isinstance(value, str) or not value.strip():
            out.append(ConfigProblem(f"{where}.{key}", "must be a non-empty string"))
    for key in ("cert_file", "key_file"):
        if key not in strings:
            out.append(ConfigProblem(f"{where}.{key}", "is required to serve TLS"))
    _check_choices(strings, where, out)
    if len(out) > before:
        return None
    ca = strings.get("client_ca_file")
    config = TlsServerConfig(
        cert_file=base / strings["cert_file"],
        key_file=base / strings["key_file"],
        client_auth_type=strings.get("client_auth_type", "NoClientCert"),
        client_ca_file=None if ca is None else base / ca,
        min_version=strings.get("min_version", "TLS12"),
        max_version=strings.get("max_version"),
    )
    _try_context(config, where, out)
    return config


def _check_choices(values: dict[str, Any], where: str, out: list[ConfigProblem]) -> None:
    auth = values.get("client_auth_type", "NoClientCert")
    if auth in _UNVERIFIED_CLIENT_AUTH:
        out.append(
            ConfigProblem(
                f"{where}.client_auth_type",
                f"{auth} is not supported (a client certificate cannot be asked for without "
                "being verified here): use VerifyClientCertIfGiven or RequireAndVerifyClientCert",
            )
        )
    elif auth not in CLIENT_AUTH:
        out.append(
            ConfigProblem(f"{where}.client_auth_type", "must be one of: " + ", ".join(CLIENT_AUTH))
        )
    elif auth == "NoClientCert" and "client_ca_file" in values:
        out.append(
            ConfigProblem(
                f"{where}.client_ca_file",
                "is set but client_auth_type does not verify client certificates: set "
                "client_auth_type to RequireAndVerifyClientCert (or VerifyClientCertIfGiven)",
            )
        )
    elif auth != "NoClientCert" and "client_ca_file" not in values:
        out.append(ConfigProblem(f"{where}.client_ca_file", f"is required by {auth}"))
    for key in ("min_version", "max_version"):
        if key in values and values[key] not in TLS_VERSIONS:
            out.append(
                ConfigProblem(f"{where}.{key}", "must be one of: " + ", ".join(TLS_VERSIONS))
            )


def _try_context(config: TlsServerConfig, where: str, out: list[ConfigProblem]) -> None:
    """Load the certificate, key and client CAs now, so a bad file fails at start-up."""
    files = [("cert_file", config.cert_file), ("key_file", config.key_file)]
    if config.client_ca_file is not None:
        files.append(("client_ca_file", config.client_ca_file))
    for key, file in files:
        try:
            file.read_bytes()
        except OSError as exc:
            out.append(ConfigProblem(f"{where}.{key}", f"cannot read {file}: {exc.strerror}"))
    if any(problem.location.startswith(where) for problem in out):
        return
    try:
        config.ssl_context()
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        reason = getattr(exc, "reason", None) or str(exc)
        out.append(
            ConfigProblem(where, f"cannot use the certificate, key or client CA file: {reason}")
        )


def _users(raw: Any, path: str, out: list[ConfigProblem]) -> dict[str, bytes]:
    if raw is None:
        return {}
    where = f"{path}: basic_auth_users"
    if not isinstance(raw, dict):
        out.append(ConfigProblem(where, "must map user names to bcrypt hashes"))
        return {}
    users: dict[str, bytes] = {}
    for name, hashed in raw.items():
        if not isinstance(name, str) or not name or ":" in name:
            out.append(ConfigProblem(where, f"user name {name!r} must be a string without ':'"))
        elif not isinstance(hashed, str) or not _BCRYPT.fullmatch(hashed):
            out.append(
                ConfigProblem(
                    f"{where}.{name}",
                    "must be a bcrypt hash ($2y$10$... , 60 characters), not a plain password",
                )
            )
        else:
            users[name] = hashed.encode("ascii")
    return users
