"""One upstream account's settings (an item of `sources:`), checked as they load.

A token or header value is never quoted in a problem; one no HTTP header can carry is masked in
logs from then on. The platform decides what else a source needs (listed agents, workspace_id).
"""

from __future__ import annotations

import ssl
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from exporter import textfile
from exporter.config.checks import NAME, check_url, duplicates
from exporter.config.durations import Duration
from exporter.config.file_source import unreadable_reason
from exporter.config.headers import HeaderName, HeaderValue, source_name
from exporter.logs import register_secret
from exporter.sources.auth import token_problem
from exporter.sources.fields import url_safe_id
from exporter.sources.headers import duplicate_names
from exporter.sources.registry import spec as platform_spec

Platform = Literal["conduit", "runtype", "elizaos", "acp"]  # == sources.registry.PLATFORMS (tested)
MAX_RESPONSE_BYTES = 16 * 1024 * 1024


def _read_token_file(path: str) -> str:
    """Return the stripped content of a token file (raises OSError or UnicodeError)."""
    return textfile.read_text(path, textfile.MAX_TOKEN_BYTES).strip()


def _refuse_unsendable(token: str, what: str) -> None:
    """Raise ValueError if no HTTP header can carry `token` (masked from now on, never quoted)."""
    if problem := token_problem(token):
        register_secret(token)
        raise ValueError(f"{what} {problem}")


def check_ca_file(path: str) -> None:
    """Raise ValueError unless `path` is a readable PEM bundle of CA certificates."""
    try:
        ssl.create_default_context(cafile=path)
    except ssl.SSLError:  # an OSError too: catch it first
        raise ValueError(f"CA file {path} holds no PEM certificate") from None
    except (OSError, UnicodeError) as exc:
        reason = unreadable_reason(exc)
        raise ValueError(f"cannot read CA file {path}: {reason}") from None


class SourceSettings(BaseModel):
    """One upstream account to poll; `name` becomes the `source` label."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    platform: Platform
    base_url: str
    token: SecretStr | None = None
    token_file: str | None = None
    headers: dict[HeaderName, HeaderValue] = Field(default_factory=dict)
    agents: list[str] | None = Field(default=None, min_length=1)
    discovery_interval: Duration = Field(default=600.0, gt=0)
    max_poll_interval: Duration = Field(default=600.0, gt=0)  # the budget's longest interval
    workspace_id: str | None = None
    service_name: str | None = Field(default=None, min_length=1)
    page_size: int = Field(default=100, ge=1, le=100)
    request_timeout: Duration = Field(default=10.0, gt=0)
    max_pages_per_poll: int = Field(default=1000, ge=1)
    ca_file: str | None = Field(default=None, min_length=1)
    insecure_skip_verify: bool = False
    max_response_bytes: int = Field(default=MAX_RESPONSE_BYTES, ge=1024)
    capture_content: bool | None = None
    max_requests_per_minute: int | None = Field(default=None, ge=0)  # None: platform default

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not NAME.fullmatch(value):
            raise ValueError("must be 1-63 characters of letters, digits, '_', '.' or '-'")
        return value

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        return check_url(value)

    @field_validator("token")
    @classmethod
    def _check_token(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is None:
            return None
        token = value.get_secret_value().strip()
        if not token:
            raise ValueError("must not be empty (remove the key for an unauthenticated upstream)")
        _refuse_unsendable(token, f"the token of source {info.data.get('name', '?')}")
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
            raise ValueError(f"cannot read token file {value}: {unreadable_reason(exc)}") from None
        if not content:
            raise ValueError(f"token file {value} is empty")
        _refuse_unsendable(content, f"token file {value} of source {info.data.get('name', '?')}")
        return value

    @field_validator("headers")
    @classmethod
    def _check_headers(
        cls, value: dict[str, SecretStr], info: ValidationInfo
    ) -> dict[str, SecretStr]:
        if repeats := duplicate_names(list(value)):
            raise ValueError(
                f"header {repeats[0]!r} of source {source_name(info)} is set twice "
                "(header names ignore case): keep one"
            )
        return value

    @field_validator("ca_file")
    @classmethod
    def _check_ca_file(cls, value: str | None) -> str | None:
        if value is not None:
            check_ca_file(value)
        return value

    @field_validator("insecure_skip_verify")
    @classmethod
    def _check_skip_verify(cls, value: bool, info: ValidationInfo) -> bool:
        if value and info.data.get("ca_file") is not None:
            raise ValueError("set either ca_file or insecure_skip_verify, not both")
        return value

    @field_validator("agents")
    @classmethod
    def _check_agents(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        agents = [agent.strip() for agent in value]
        if not all(agents):
            raise ValueError("agent ids must not be blank")
        if unusable := [agent for agent in agents if not url_safe_id(agent)]:
            raise ValueError(
                f"agent id {unusable[0][:64]!r} cannot be part of a URL: no control characters, "
                "'/', '?', '#' or '\\'"
            )
        if dupes := duplicates(agents):
            raise ValueError(f"duplicate agent ids: {', '.join(dupes)}")
        return agents

    @model_validator(mode="after")
    def _check_platform_fields(self) -> SourceSettings:
        if self.agents is None and not platform_spec(self.platform).discovers_agents:
            raise ValueError(
                f"agents: {self.platform} cannot list its agents; list the ids to poll "
                "(for acp: the server ids), e.g. agents: [srv_abc]"
            )
        if self.workspace_id is not None and self.platform != "conduit":
            raise ValueError(f"workspace_id applies to conduit only, not {self.platform}")
        return self

    @property
    def discovers_agents(self) -> bool:
        """Say whether the agents are discovered from the platform instead of listed."""
        return self.agents is None

    def resolved_token(self) -> str | None:
        """Return the API token (re-reading token_file), or None for an unauthenticated upstream."""
        if self.token is not None:
            return self.token.get_secret_value().strip()
        if self.token_file is not None:
            return _read_token_file(self.token_file)
        return None

    def resolved_headers(self) -> dict[str, str]:
        """Return the extra headers sent on every request of this source."""
        return {name: value.get_secret_value() for name, value in self.headers.items()}

    def secrets(self) -> list[tuple[str, str]]:
        """Return (what, value) for the token and every header value of this source."""
        found = [(f"value of header {name}", v) for name, v in self.resolved_headers().items()]
        token = self.resolved_token()
        return [("token", token), *found] if token else found
