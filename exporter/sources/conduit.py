"""Conduit (api.conduit.ai): list agent runs, get one run for its tool trace.

    GET /v1/agents?limit=&cursor=&workspace_id=            {data:[agent], next_cursor, has_more}
    GET /v1/agents/{id}?workspace_id=                      {data: agent}
    GET /v1/agents/{id}/runs?limit=&cursor=&workspace_id=  {data:[run], next_cursor, has_more}
    GET /v1/agents/{id}/runs/{run_id}?workspace_id=        {data: run + tool_trace[...]}

A `tool_trace` item is `{name, input, output}` or null.

Runs are keyed by `id` (not the backend's `run_id`). Statuses: accepted and running are in flight,
completed and failed are terminal. `tool_trace` steps carry no timing, ids or status.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Callable
from dataclasses import replace
from typing import Any

from exporter.errors import MalformedPageError, ParseError
from exporter.model import Run, Status, ToolStep
from exporter.sources import fields
from exporter.sources.base import (
    BEARER,
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

STATUS_MAP = {
    "accepted": Status.QUEUED,
    "running": Status.RUNNING,
    "completed": Status.COMPLETED,
    "failed": Status.FAILED,
}
DISPOSITIONS = (
    "escalated",
    "escalation_and_answer",
    "resolved",
    "unresolved",
    "no_op",
    "proactive",
)


def parse_run(item: Any, agent_id: str | None = None) -> Run:
    """Translate one Conduit run object (list item or detail) into a `Run`.

    `agent_id` is the agent whose list the item came from: it wins over the item's own field,
    so an upstream cannot invent agents (and metric series) by naming new ones.
    """
    item = fields.run_object(item, "run item")
    drift = fields.Drift()
    usage = item.get("token_usage")
    if usage is not None and not isinstance(usage, dict):
        drift.fields.append("token_usage")
    usage = usage if isinstance(usage, dict) else {}
    completed = drift.value(fields.optional_timestamp, item.get("completed_at"), "completed_at")
    duration_ms = drift.value(fields.optional_number, item.get("duration_ms"), "duration_ms")
    ended = completed is not None or duration_ms is not None
    status, raw_status = fields.status(item, STATUS_MAP, ended=ended)
    return Run(
        id=fields.run_id(item, "id"),
        agent_id=agent_id or fields.required_str(item, "agent_id"),
        status=status,
        raw_status=raw_status,
        created_at=fields.timestamp(item.get("created_at"), "created_at"),
        completed_at=completed,
        duration_s=_seconds(duration_ms),
        disposition=drift.text(item, "disposition"),
        input_tokens=drift.value(fields.optional_int, usage.get("input"), "token_usage.input"),
        output_tokens=drift.value(fields.optional_int, usage.get("output"), "token_usage.output"),
        cost_usd=drift.value(fields.optional_number, item.get("total_cost"), "total_cost"),
        trace_id=drift.text(item, "trace_id"),
        conversation_id=drift.text(item, "conversation_id"),
        error=drift.text(item, "error"),
        attributes=_attributes(item, drift),
        invalid_fields=drift.invalid,
    )


def _seconds(ms: float | None) -> float | None:
    return None if ms is None else ms / 1000.0


def _attributes(item: dict[str, Any], drift: fields.Drift) -> dict[str, str]:
    keys = (("run_id", "agent_run.backend_run_id"), ("workspace_id", "agent_run.workspace_id"))
    return {attr: value for key, attr in keys if (value := drift.text(item, key))}


def parse_tool_trace(trace: Any) -> tuple[ToolStep, ...]:
    """Translate a `tool_trace` array into steps, skipping null and nameless items."""
    if trace is None:
        return ()
    if not isinstance(trace, list):
        raise ParseError("field 'tool_trace' must be an array or null")
    return tuple(step for item in trace if (step := _tool_step(item)) is not None)


def _tool_step(item: Any) -> ToolStep | None:
    if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"]:
        return None
    output = item.get("output")
    return ToolStep(name=item["name"], input=item.get("input"), output=output, error=_error(output))


def _error(output: Any) -> str | None:
    """Return the error a step's output reports (`{"error": ...}` or `success: false`)."""
    if not isinstance(output, dict):
        return None
    if output.get("error"):
        return str(output["error"])[:200]
    if output.get("success") is False:
        return "tool reported success=false"
    return None


def parse_list_page(body: Any, agent_id: str | None = None) -> Page:
    """Translate a list response into a page; malformed items are skipped and counted.

    The runs belong to `agent_id`, the agent polled, when given (see `parse_run`).
    """
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise MalformedPageError("list response has no 'data' array")
    page = Page(runs=[], has_more=body.get("has_more") is True)
    for item in body["data"]:
        try:
            page.runs.append(parse_run(item, agent_id))
        except ParseError as exc:
            page.skip(exc, item)
    return page


def parse_agents(body: Any) -> list[AgentEntry]:
    """Translate a list-agents response into entries; items without an id are skipped."""
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise MalformedPageError("list-agents response has no 'data' array")
    return [entry for item in body["data"] if (entry := agent_entry(item)) is not None]


def parse_detail(body: Any) -> Run:
    """Translate a get-run response into a `Run` with its tool steps."""
    if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
        raise MalformedPageError("get-run response has no 'data' object")
    data = body["data"]
    return replace(parse_run(data), tool_steps=parse_tool_trace(data.get("tool_trace")))


class ConduitSource:
    """The Conduit run API for one configured source."""

    platform = "conduit"
    terminal_statuses: tuple[str, ...] = ("completed", "failed")
    dispositions: tuple[str, ...] = DISPOSITIONS
    token_types: tuple[str, ...] = ("input", "output")
    has_cost = True

    def __init__(
        self, name: str, client: HttpClient, *, page_size: int, workspace_id: str | None
    ) -> None:
        self.name = name
        self._client = client
        self._page_size = page_size
        self._workspace = workspace_id

    async def pages(self, agent_id: str) -> AsyncGenerator[Page, None]:
        """Yield the agent's runs page by page, newest first, following `next_cursor`."""

        async def fetch(cursor: str | None) -> tuple[Page, str | None, bool]:
            body = await self._client.get_json(
                f"/v1/agents/{agent_id}/runs",
                endpoint="list_runs",
                params={
                    "limit": self._page_size,
                    "cursor": cursor,
                    "workspace_id": self._workspace,
                },
            )
            page = parse_list_page(body, agent_id)
            # An empty page that claims more would only lead to the page cap: stop there.
            return page, cursor_of(body.get("next_cursor")), page.has_more and bool(page.runs)

        async with contextlib.aclosing(cursor_pages(fetch)) as pages:
            async for page in pages:
                yield page

    async def list_agents(self) -> list[AgentEntry]:
        """Return the workspace's agents from `GET /v1/agents`."""

        async def fetch(cursor: str | None) -> tuple[list[AgentEntry], str | None, bool]:
            body = await self._client.get_json(
                "/v1/agents",
                endpoint="list_agents",
                params={"limit": 100, "cursor": cursor, "workspace_id": self._workspace},
            )
            agents = parse_agents(body)
            return agents, cursor_of(body.get("next_cursor")), body.get("has_more") is True

        return await collect(fetch)

    async def agent_name(self, agent_id: str) -> str | None:
        """Return the agent's name from `GET /v1/agents/{id}`."""
        body = await self._client.get_json(
            f"/v1/agents/{agent_id}",
            endpoint="get_agent",
            params={"workspace_id": self._workspace},
            priority=Priority.DETAIL,
        )
        data = body.get("data") if isinstance(body, dict) else None
        name = data.get("name") if isinstance(data, dict) else None
        return name if isinstance(name, str) and name else None

    async def fetch_detail(self, run: Run) -> Run:
        """Return `run` with the tool steps of its get-run call."""
        body = await self._client.get_json(
            f"/v1/agents/{run.agent_id}/runs/{run.id}",
            endpoint="get_run",
            params={"workspace_id": self._workspace},
            priority=Priority.DETAIL,
        )
        detail = parse_detail(body)
        return replace(run, tool_steps=detail.tool_steps)

    async def aclose(self) -> None:
        """Close the source's HTTP client."""
        await self._client.aclose()


def build(settings: SourceOptions, client: HttpClient, clock: Callable[[], float]) -> ConduitSource:
    """Return the Conduit source for `settings`, scoped to its workspace when one is set."""
    return ConduitSource(
        settings.name, client, page_size=settings.page_size, workspace_id=settings.workspace_id
    )


SPEC = PlatformSpec(
    name="conduit",
    title="Conduit",
    endpoints=("list_agents", "get_agent", "list_runs", "get_run"),
    auth=BEARER,
    discovers_agents=True,
    rate_limit=RateLimit(documented=120, default=100, per_workspace=True),
    build=build,
)
