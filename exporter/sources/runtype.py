"""Runtype (api.runtype.com): list an agent's executions, list one execution's tool calls.

    GET /v1/agents?limit=&cursor=                          {data:[agent], pagination}
    GET /v1/agents/{id}                                    agent (bare object)
    GET /v1/agents/{id}/executions?limit=&cursor=          {data:[execution], pagination}
    GET /v1/agents/{id}/executions/{executionId}/tool-calls  {toolCalls:[call]}

`pagination` is `{nextCursor, hasMore, ...}`. Executions are keyed by `id`. Status mapping:
queued -> queued; running and paused -> running (paused is not terminal); completed -> completed;
failed and interrupted -> failed (interrupted: the platform stopped it, nobody asked to);
cancelled -> cancelled. The raw status stays on the span (`agent_run.raw_status`).
`totalCost` is a decimal string; `totalTokens` has no input/output split; durations come from
`startedAt`/`completedAt`. A failed execution's error is the platform's message (`error`, a string
or `{code, message}` as its status and stream payloads have it, or `errorMessage`), never the
`stopReason` code, which stays `agent_run.stop_reason`. A sub-agent execution names its parent
(`parentExecutionId`), the parent's tool call that started it (`parentToolCallId`) and its
lineage's root (`rootExecutionId`). Tool calls carry real times (`startedAt`, `completedAt` or
`executionTimeMs`), the model's `toolCallId` (null when Runtype wrote the row itself: the row's
own `id` is then no call id, only `record_id`) and an `errorMessage`.
"""

from __future__ import annotations

import contextlib
import logging
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
    agent_entry,
)
from exporter.sources.budget import Priority
from exporter.sources.http import HttpClient
from exporter.sources.paging import collect, cursor_of, cursor_pages
from exporter.sources.runtype_tools import parse_tool_calls

log = logging.getLogger(__name__)

STATUS_MAP = {
    "queued": Status.QUEUED,
    "running": Status.RUNNING,
    "paused": Status.RUNNING,
    "completed": Status.COMPLETED,
    "failed": Status.FAILED,
    "interrupted": Status.FAILED,
    "cancelled": Status.CANCELLED,
}
_LINEAGE = (
    ("retryOfExecutionId", "agent_run.retry_of_run_id"),
    ("surfaceType", "agent_run.surface"),
    ("stopReason", "agent_run.stop_reason"),
)


def parse_run(item: Any, agent_id: str) -> Run:
    """Translate one Runtype execution (list item or detail) into a `Run`."""
    item = fields.run_object(item, "execution")
    drift = fields.Drift()
    created = fields.timestamp(item.get("createdAt"), "createdAt")
    started = drift.value(fields.optional_timestamp, item.get("startedAt"), "startedAt")
    completed = drift.value(fields.optional_timestamp, item.get("completedAt"), "completedAt")
    status, raw_status = fields.status(item, STATUS_MAP, ended=completed is not None)
    terminal = status.terminal
    return Run(
        id=fields.run_id(item, "id"),
        agent_id=agent_id,  # the agent polled: an item cannot name another (or a new) one
        status=status,
        raw_status=raw_status,
        created_at=created,
        started_at=started,
        completed_at=completed if terminal else None,
        total_tokens=drift.value(fields.optional_int, item.get("totalTokens"), "totalTokens"),
        cost_usd=drift.value(fields.optional_number, item.get("totalCost"), "totalCost"),
        conversation_id=drift.text(item, "conversationId"),
        error=_error(item, drift) if status.is_error else None,
        parent_run_id=drift.text(item, "parentExecutionId"),
        parent_call_id=drift.text(item, "parentToolCallId"),
        root_run_id=drift.text(item, "rootExecutionId"),
        attributes=_attributes(item, drift),
        invalid_fields=drift.invalid,
    )


def _attributes(item: dict[str, Any], drift: fields.Drift) -> dict[str, str]:
    """Return the execution's own span attributes: lineage, budget and version."""
    attributes = {a: v for key, a in _LINEAGE if (v := drift.text(item, key))}
    exhausted = drift.value(_optional_bool, item.get("budgetExhausted"), "budgetExhausted")
    if exhausted is not None:  # null is unknown, never false
        attributes["agent_run.budget_exhausted"] = "true" if exhausted else "false"
    version = drift.value(_version, item.get("agentVersion"), "agentVersion")
    attributes.update(version or {})
    version_id = drift.text(item, "agentVersionId")
    if version_id:
        attributes["agent_run.agent_version_id"] = version_id
    return attributes


def _optional_bool(value: Any, key: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise ParseError(f"field {key!r} must be a boolean, got {type(value).__name__}")


def _version(value: Any, key: str) -> dict[str, str] | None:
    """Read `agentVersion` (`{id, label?, versionNumber}`) as span attributes."""
    if value is None:
        return None
    number = value.get("versionNumber") if isinstance(value, dict) else None
    if type(number) is not int:
        raise ParseError(f"field {key!r} must be an object with an integer 'versionNumber'")
    attributes = {"gen_ai.agent.version": str(number)}
    for field, attribute in (
        ("id", "agent_run.agent_version_id"),
        ("label", "agent_run.agent_version_label"),
    ):
        text = value.get(field)
        if isinstance(text, str) and text:
            attributes[attribute] = text[:200]
    return attributes


def _error(item: dict[str, Any], drift: fields.Drift) -> str | None:
    """Return the platform's message for a failed execution, or None when it gives none."""
    error = drift.value(_message, item.get("error"), "error")
    return error or drift.value(_message, item.get("errorMessage"), "errorMessage")


def _message(value: Any, key: str) -> str | None:
    """Read an error as a string or an object with a `message` (and maybe a `code`)."""
    if isinstance(value, dict):
        value = value.get("message") or value.get("code")
    if value is None or isinstance(value, str):
        return value or None
    raise ParseError(f"field {key!r} must be a message or an object with one")


def parse_list_page(body: Any, agent_id: str) -> tuple[Page, str | None]:
    """Translate a list-executions response into a page and its next cursor."""
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise MalformedPageError("list-executions response has no 'data' array")
    pagination = body.get("pagination")
    pagination = pagination if isinstance(pagination, dict) else {}
    page = Page(runs=[], has_more=pagination.get("hasMore") is True)
    for item in body["data"]:
        try:
            page.runs.append(parse_run(item, agent_id))
        except ParseError as exc:
            page.skip(exc, item)
    return page, cursor_of(pagination.get("nextCursor"))


def parse_agents(body: Any) -> tuple[list[AgentEntry], str | None, bool]:
    """Translate a list-agents response into entries, the next cursor and has-more."""
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise MalformedPageError("list-agents response has no 'data' array")
    pagination = body.get("pagination")
    pagination = pagination if isinstance(pagination, dict) else {}
    agents = [entry for item in body["data"] if (entry := agent_entry(item)) is not None]
    return agents, cursor_of(pagination.get("nextCursor")), pagination.get("hasMore") is True


class RuntypeSource:
    """The Runtype executions API for one configured source."""

    platform = "runtype"
    terminal_statuses: tuple[str, ...] = ("completed", "failed", "cancelled")
    dispositions: tuple[str, ...] = ()
    token_types: tuple[str, ...] = ("total",)
    has_cost = True

    def __init__(self, name: str, client: HttpClient, *, page_size: int) -> None:
        self.name = name
        self._client = client
        self._page_size = page_size

    async def pages(self, agent_id: str) -> AsyncGenerator[Page, None]:
        """Yield the agent's executions page by page, newest first, following `nextCursor`."""

        async def fetch(cursor: str | None) -> tuple[Page, str | None, bool]:
            body = await self._client.get_json(
                f"/v1/agents/{agent_id}/executions",
                endpoint="list_executions",
                params={"limit": self._page_size, "cursor": cursor, "view": "compact"},
            )
            page, next_cursor = parse_list_page(body, agent_id)
            return page, next_cursor, page.has_more and bool(page.runs)

        async with contextlib.aclosing(cursor_pages(fetch)) as pages:
            async for page in pages:
                yield page

    async def list_agents(self) -> list[AgentEntry]:
        """Return the account's agents from `GET /v1/agents`."""

        async def fetch(cursor: str | None) -> tuple[list[AgentEntry], str | None, bool]:
            body = await self._client.get_json(
                "/v1/agents", endpoint="list_agents", params={"limit": 100, "cursor": cursor}
            )
            return parse_agents(body)

        return await collect(fetch)

    async def agent_name(self, agent_id: str) -> str | None:
        """Return the agent's name from `GET /v1/agents/{id}`."""
        body = await self._client.get_json(
            f"/v1/agents/{agent_id}", endpoint="get_agent", params={}, priority=Priority.DETAIL
        )
        entry = agent_entry(body.get("data", body) if isinstance(body, dict) else None)
        return entry.name if entry else None

    async def fetch_detail(self, run: Run) -> Run:
        """Return `run` with the tool calls of its execution."""
        body = await self._client.get_json(
            f"/v1/agents/{run.agent_id}/executions/{run.id}/tool-calls",
            endpoint="list_tool_calls",
            params={},
            priority=Priority.DETAIL,
        )
        return replace(run, tool_steps=parse_tool_calls(body))

    async def aclose(self) -> None:
        """Close the source's HTTP client."""
        await self._client.aclose()


def build(settings: SourceOptions, client: HttpClient, clock: Callable[[], float]) -> RuntypeSource:
    """Return the Runtype source for `settings`."""
    return RuntypeSource(settings.name, client, page_size=settings.page_size)


SPEC = PlatformSpec(
    name="runtype",
    title="Runtype",
    endpoints=("list_agents", "get_agent", "list_executions", "list_tool_calls"),
    auth=BEARER,
    discovers_agents=True,
    rate_limit=RateLimit(documented=None, default=UNDOCUMENTED_DEFAULT, per_workspace=False),
    build=build,
)
