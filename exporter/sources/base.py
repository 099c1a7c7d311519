"""What every platform declares: its spec, the source interface, and the page a source yields.

Each `sources/<platform>.py` sets `SPEC = PlatformSpec(...)`, and `sources.registry` collects them:

    PlatformSpec  name, title, endpoints, auth header, agent discovery, rate limit, build
    Source        the platform's run API for one configured source (built by `spec.build`)
    Page          one page of an agent's runs, with what was skipped
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from exporter.errors import ParseError
from exporter.model import Run
from exporter.sources.fields import printable

if TYPE_CHECKING:
    from exporter.sources.http import HttpClient

UNDOCUMENTED_DEFAULT = 60  # requests a minute on a platform whose limit we do not know: stay modest


@dataclass(slots=True)
class Page:
    """One page of an agent's runs, newest first, as far as it could be read.

    `skips` are the items that were dropped, with their reason (e.g. `malformed_item`) and id
    when they had one, so a run seen again next poll is counted and logged once. `history_cut`
    says that older runs exist which the platform will not show (it offers no paging), so runs
    between this page and the last poll may be invisible.
    """

    runs: list[Run]
    has_more: bool
    skips: list[Skip] = field(default_factory=list)
    history_cut: bool = False

    @property
    def skipped(self) -> dict[str, int]:
        """Return how many items were dropped, by reason."""
        return dict(Counter(skip.reason for skip in self.skips))

    def skip(self, error: ParseError, item: Any, id_key: str = "id") -> None:
        """Record that `item` was dropped because of `error`."""
        raw = item.get(id_key) if isinstance(item, dict) else None
        item_id = printable(raw[:200]) if isinstance(raw, str) and raw else None
        self.skips.append(Skip(error.reason, item_id, str(error)))


@dataclass(frozen=True, slots=True)
class Skip:
    """One dropped item: why, its id when it had one, and the parser's message."""

    reason: str
    item_id: str | None
    message: str


@dataclass(frozen=True, slots=True)
class AgentEntry:
    """One agent as the platform lists it."""

    id: str
    name: str | None = None


def agent_entry(item: Any, *, id_key: str = "id") -> AgentEntry | None:
    """Return an agent entry from an `{id, name}` object, or None when it has no id."""
    if not isinstance(item, dict) or not isinstance(item.get(id_key), str) or not item[id_key]:
        return None
    name = item.get("name")
    return AgentEntry(item[id_key], name if isinstance(name, str) and name else None)


class Source(Protocol):
    """A platform's run API for one configured source."""

    name: str
    platform: str
    terminal_statuses: tuple[str, ...]
    dispositions: tuple[str, ...]
    token_types: tuple[str, ...]  # `type` values of agent_run_tokens declared at zero per agent
    has_cost: bool  # whether agent_run_cost_usd is declared at zero per agent

    async def list_agents(self) -> list[AgentEntry] | None:
        """Return every agent the platform lists, or None when it cannot list agents."""
        ...

    def pages(self, agent_id: str) -> AsyncGenerator[Page, None]:
        """Yield the agent's runs page by page, newest first, until the caller stops."""
        ...

    async def agent_name(self, agent_id: str) -> str | None:
        """Return the agent's display name, or None when the platform has none."""
        ...

    async def fetch_detail(self, run: Run) -> Run:
        """Return `run` completed with what only its detail call gives (tool steps)."""
        ...

    async def aclose(self) -> None:
        """Release the source's connections."""
        ...


class SourceOptions(Protocol):
    """The settings a platform's `build` reads (the config's `SourceSettings` has them)."""

    @property
    def name(self) -> str: ...

    @property
    def page_size(self) -> int: ...

    @property
    def workspace_id(self) -> str | None: ...


SourceBuilder = Callable[[SourceOptions, "HttpClient", Callable[[], float]], Source]


@dataclass(frozen=True, slots=True)
class AuthHeader:
    """The header a platform's token goes in, and the scheme before it (None: the bare token)."""

    name: str
    scheme: str | None

    def headers(self, token: str | None) -> dict[str, str]:
        """Return the headers that carry `token` (none without a token)."""
        if not token:
            return {}
        return {self.name: f"{self.scheme} {token}" if self.scheme else token}


BEARER = AuthHeader("Authorization", "Bearer")


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A platform's request limit: as documented (None: unknown), our safe default, its scope."""

    documented: int | None
    default: int
    per_workspace: bool  # sources of one workspace share the limit (else: each token its own)


@dataclass(frozen=True, slots=True)
class PlatformSpec:
    """Everything the exporter knows about one platform, declared once in its source module.

    `endpoints` are the `endpoint` label values of its requests (declared at zero per source);
    `build(settings, client, clock)` returns the source for one configured account.
    """

    name: str  # the `platform` config value and label
    title: str  # how docs and the simulator name it
    endpoints: tuple[str, ...]
    auth: AuthHeader
    discovers_agents: bool  # it can list its agents (else the config must list them)
    rate_limit: RateLimit
    build: SourceBuilder
