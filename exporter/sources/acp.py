"""Computer Agents' ACP API: list the runs of a server's connected agent runtime.

    GET /v1/servers/{serverId}/runtime/agent/runs?limit=
        {serverId, agentRuntimeId, object, data:[run], runs:[run]}

The same runs come in both `data` and `runs`; each is read once. There is no cursor, offset or
time filter: only the newest `limit` runs are visible, so a page whose oldest run is still newer
than everything read before may hide runs (`Page.history_cut`; the poller counts the gap). Runs
carry no tokens, cost, duration or tool calls: duration comes from `createdAt`/`completedAt`, and a
run's trace is its root span alone. Every field is optional in the API: a run needs only `id` and
`status` here. Statuses: queued and running are in flight; completed, failed and cancelled are
terminal. A "agent" of this source is a server id.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from dataclasses import replace
from typing import Any

from exporter.errors import MalformedPageError, ParseError
from exporter.model import Run, Status
from exporter.sources import fields
from exporter.sources.base import (
    BEARER,
    UNDOCUMENTED_DEFAULT,
    AgentEntry,
    Page,
    PlatformSpec,
    RateLimit,
    SourceOptions,
)
from exporter.sources.http import HttpClient

STATUS_MAP = {
    "queued": Status.QUEUED,
    "running": Status.RUNNING,
    "completed": Status.COMPLETED,
    "failed": Status.FAILED,
    "cancelled": Status.CANCELLED,
}
_ATTRIBUTES = (
    ("threadId", "agent_run.thread_id"),
    ("mode", "agent_run.mode"),
    ("sessionProtocol", "agent_run.session_protocol"),
)


def parse_run(item: Any, server_id: str, first_seen: Callable[[str], float] | None = None) -> Run:
    """Translate one ACP runtime run into a `Run` (no tokens or cost: absent, never zero).

    Every field is optional in the API. Without `createdAt` the run is ordered by a stand-in (its
    `completedAt`, else when `first_seen` first saw it: see `fields.order_time`), its duration is
    absent and `createdAt` is counted as invalid.
    """
    item = fields.run_object(item)
    drift = fields.Drift()
    completed = drift.value(fields.optional_timestamp, item.get("completedAt"), "completedAt")
    status, raw_status = fields.status(item, STATUS_MAP, ended=completed is not None)
    run_id = fields.run_id(item, "id")
    created = drift.expected(fields.optional_timestamp, item.get("createdAt"), "createdAt")
    ended = completed if status.terminal else None
    order, estimated = fields.order_time(created, ended, f"{server_id}/{run_id}", first_seen)
    attributes = {a: v for key, a in _ATTRIBUTES if (v := drift.text(item, key))}
    return Run(
        id=run_id,
        agent_id=server_id,
        status=status,
        raw_status=raw_status,
        created_at=order,
        completed_at=None if estimated else ended,
        conversation_id=drift.text(item, "threadId"),
        error=drift.text(item, "error") if status.is_error else None,
        attributes=attributes | ({"agent_run.start_unknown": "true"} if estimated else {}),
        invalid_fields=drift.invalid,
        created_estimated=estimated,
    )


def parse_list(
    body: Any, server_id: str, limit: int, first_seen: Callable[[str], float] | None = None
) -> Page:
    """Translate a list response into one page, reading each run of `data` and `runs` once."""
    if not isinstance(body, dict):
        raise MalformedPageError("list-runs response is not an object")
    arrays: list[list[Any]] = [body[k] for k in ("data", "runs") if isinstance(body.get(k), list)]
    if not arrays:
        raise MalformedPageError("list-runs response has neither a 'data' nor a 'runs' array")
    page = Page(runs=[], has_more=False)
    seen: set[str] = set()
    items = 0
    for item in (item for array in arrays for item in array):
        run_id = item.get("id") if isinstance(item, dict) else None
        if isinstance(run_id, str):
            if run_id in seen:
                continue
            seen.add(run_id)
        items += 1
        try:
            page.runs.append(parse_run(item, server_id, first_seen))
        except ParseError as exc:
            page.skip(exc, item)
    page.runs.sort(key=lambda run: run.created_at, reverse=True)
    page.history_cut = items >= limit
    return page


class AcpSource:
    """The ACP runtime-runs API for one configured source; its agents are server ids."""

    platform = "acp"
    terminal_statuses: tuple[str, ...] = ("completed", "failed", "cancelled")
    dispositions: tuple[str, ...] = ()
    token_types: tuple[str, ...] = ()
    has_cost = False

    def __init__(
        self,
        name: str,
        client: HttpClient,
        *,
        page_size: int,
        clock: Callable[[], float],
    ) -> None:
        self.name = name
        self._client = client
        self._page_size = page_size
        self._first_seen = fields.FirstSeen(clock)  # the stand-in of runs without createdAt

    async def pages(self, agent_id: str) -> AsyncGenerator[Page, None]:
        """Yield the one page the API shows: the server's newest runs."""
        body = await self._client.get_json(
            f"/v1/servers/{agent_id}/runtime/agent/runs",
            endpoint="list_runs",
            params={"limit": self._page_size},
        )
        yield parse_list(body, agent_id, self._page_size, self._first_seen)

    async def list_agents(self) -> list[AgentEntry] | None:
        """Return None: servers are configured, not discovered."""
        return None

    async def agent_name(self, agent_id: str) -> str | None:
        """Return None: the runtime-runs API names no agent; the server id stands for it."""
        return None

    async def fetch_detail(self, run: Run) -> Run:
        """Return `run` without steps: the platform has no structured tool calls."""
        return replace(run, tool_steps=())

    async def aclose(self) -> None:
        """Close the source's HTTP client."""
        await self._client.aclose()


def build(settings: SourceOptions, client: HttpClient, clock: Callable[[], float]) -> AcpSource:
    """Return the ACP source for `settings` (its agents are the configured server ids)."""
    return AcpSource(settings.name, client, page_size=settings.page_size, clock=clock)


SPEC = PlatformSpec(
    name="acp",
    title="ACP",
    endpoints=("list_runs",),
    auth=BEARER,
    discovers_agents=False,
    rate_limit=RateLimit(documented=None, default=UNDOCUMENTED_DEFAULT, per_workspace=False),
    build=build,
)
