"""ElizaOS agent server: list an agent's runs, read one run's event timeline.

    GET /api/agents                               {success, data:{agents:[{id, name, status}]}}
    GET /api/agents/{agentId}                     {success, data:{id, name, ...}}
    GET /api/agents/{agentId}/runs?limit=&to=     {success, data:{runs:[run], total, hasMore}}
    GET /api/agents/{agentId}/runs/{runId}?roomId=  {success, data:{summary, events:[...]}}

There is no cursor: older runs are paged with `to` (epoch ms, inclusive) below the oldest
`startedAt` seen, and repeated runs are dropped. Every list request carries `to`, which also
skips the server's 15 s cache of requests without `from`/`to`. Statuses: started is in flight;
completed, timeout and error are terminal. Quirks handled here:

- Run status is folded from event logs no newer than `to`, so on an older page a run that ended
  after `to` shows as `started`: such runs are confirmed with the detail call.
- A run whose start log fell out of the server's scan window comes back with `startedAt: null`:
  terminal, its end is known and its duration is not (absent, never zero); `started` (a run that
  ended `muted` and the like, or an item the SDK allows), it has no time at all and is ordered by
  when it was first seen. The detail gives the start back when it still has it.
- The detail of an unknown (or aged-out) run answers 200 with `started` and no events: that is not
  a finished run, and its trace is reported unavailable.
- A failed run ends `completed` with the error in its `RUN_ENDED` event's `data.error` (1.7.2 never
  writes `error`): only the detail tells a failure from a success, so the source says
  `outcome_in_detail` and the poller counts a run once its detail is read.
- A 401 body is JSON without the envelope (`{"error": "API key required", "message": ...}`), not
  text; a 200 with `success: false` is an error envelope.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from dataclasses import replace
from typing import Any

from exporter.errors import MalformedPageError, NotFoundError, ParseError
from exporter.model import Run, Status
from exporter.sources import fields
from exporter.sources.base import (
    UNDOCUMENTED_DEFAULT,
    AgentEntry,
    AuthHeader,
    Page,
    PlatformSpec,
    RateLimit,
    SourceOptions,
    agent_entry,
)
from exporter.sources.budget import Priority
from exporter.sources.elizaos_events import steps_of, usage_of, with_outcome
from exporter.sources.http import HttpClient

STATUS_MAP = {
    "started": Status.RUNNING,
    "completed": Status.COMPLETED,
    "timeout": Status.TIMEOUT,
    "error": Status.FAILED,
}
FIRST_PAGE_AHEAD_MS = 86_400_000  # `to` of the first page: a day ahead absorbs any clock skew
_ATTRIBUTES = (("messageId", "agent_run.message_id"), ("entityId", "agent_run.entity_id"))
START_UNKNOWN = "agent_run.start_unknown"


def unwrap(body: Any) -> Any:
    """Return the payload of a `{success, data}` envelope (or a bare body, as the docs show)."""
    if not isinstance(body, dict) or "success" not in body:
        return body
    if body.get("success") is True:
        return body.get("data")
    error = body.get("error")
    detail = error if isinstance(error, dict) else {"message": error}
    raise MalformedPageError(
        f"ElizaOS answered success=false: {detail.get('code') or ''!s} "
        f"{str(detail.get('message') or '')[:200]}".strip()
    )


def parse_run(item: Any, agent_id: str, first_seen: Callable[[str], float] | None = None) -> Run:
    """Translate one ElizaOS run summary (list item or detail `summary`) into a `Run`.

    Without `startedAt` (its start log fell out of the server's scan window, or the item is one
    the SDK allows) the run is ordered by a stand-in (its `endedAt`, else when `first_seen` first
    saw it: see `fields.order_time`), its duration is absent and `startedAt` counts as invalid.
    """
    item = fields.run_object(item)
    drift = fields.Drift()
    start = item.get("startedAt", item.get("startTime"))
    started = drift.expected(fields.instant, start, "startedAt")
    ended = drift.value(fields.instant, item.get("endedAt", item.get("endTime")), "endedAt")
    status, raw_status = fields.status(item, STATUS_MAP, ended=ended is not None)
    run_id = fields.run_id(item, "runId")
    created, estimated = fields.order_time(started, ended, f"{agent_id}/{run_id}", first_seen)
    duration_ms = drift.value(fields.optional_number, item.get("durationMs"), "durationMs")
    return Run(
        id=run_id,
        agent_id=agent_id,
        status=status,
        raw_status=raw_status,
        created_at=created,
        completed_at=ended if status.terminal and not estimated else None,
        duration_s=duration_ms / 1000.0 if duration_ms is not None and not estimated else None,
        conversation_id=drift.text(item, "roomId"),
        attributes={a: v for key, a in _ATTRIBUTES if (v := drift.text(item, key))}
        | ({START_UNKNOWN: "true"} if estimated else {}),
        invalid_fields=drift.invalid,
        created_estimated=estimated,
    )


def parse_list(body: Any, agent_id: str, first_seen: Callable[[str], float] | None = None) -> Page:
    """Translate a list-runs response into a page; malformed items are skipped and counted."""
    data = unwrap(body)
    if not isinstance(data, dict) or not isinstance(data.get("runs"), list):
        raise MalformedPageError("list-runs response has no 'runs' array")
    page = Page(runs=[], has_more=data.get("hasMore") is True)
    for item in data["runs"]:
        try:
            page.runs.append(parse_run(item, agent_id, first_seen))
        except ParseError as exc:
            page.skip(exc, item, "runId")
    return page


def parse_detail(body: Any, run: Run) -> Run:
    """Return `run` completed from a run-detail response: steps, usage, reported times."""
    data = unwrap(body)
    if not isinstance(data, dict):
        raise MalformedPageError("run-detail response has no data object")
    events = data.get("events") if isinstance(data.get("events"), list) else []
    summary = data.get("summary", data)
    if not events:
        raise NotFoundError(f"ElizaOS has no events for run {run.id} (unknown or aged out)")
    usage = usage_of(events)
    detailed = with_outcome(events, _summary_state(summary, run))
    return replace(
        detailed,
        tool_steps=steps_of(events),
        input_tokens=run.input_tokens if usage.input_tokens is None else usage.input_tokens,
        output_tokens=run.output_tokens if usage.output_tokens is None else usage.output_tokens,
        cost_usd=run.cost_usd if usage.cost_usd is None else usage.cost_usd,
    )


def _summary_state(summary: Any, run: Run) -> Run:
    """Take the detail's end when the list could not give it (startedAt null, or a run the list
    folds to `started` that the detail shows ended: `muted`, `self`, `off`, `replaced`...)."""
    try:
        parsed = parse_run(summary, run.agent_id)
    except ParseError:
        return run
    if run.completed_at is None and parsed.completed_at is not None:
        ended = (
            run
            if run.status.terminal
            else replace(run, status=parsed.status, raw_status=parsed.raw_status)
        )
        return replace(
            ended,
            created_at=parsed.created_at,
            completed_at=parsed.completed_at,
            duration_s=parsed.duration_s,
            created_estimated=False,  # the detail knows the start the list had lost
            attributes={k: v for k, v in run.attributes.items() if k != START_UNKNOWN},
            invalid_fields=tuple(
                dict.fromkeys(
                    [name for name in run.invalid_fields if name != "startedAt"]
                    + list(parsed.invalid_fields)
                )
            ),
        )
    return run


def parse_agents(body: Any) -> list[AgentEntry]:
    """Translate a list-agents response into the agents that are running (status active)."""
    data = unwrap(body)
    agents = data.get("agents") if isinstance(data, dict) else None
    if not isinstance(agents, list):
        raise MalformedPageError("list-agents response has no 'agents' array")
    active = [
        item for item in agents if isinstance(item, dict) and item.get("status") != "inactive"
    ]
    return [entry for item in active if (entry := agent_entry(item)) is not None]


class ElizaSource:
    """An ElizaOS server's runs API for one configured source."""

    platform = "elizaos"
    terminal_statuses: tuple[str, ...] = ("completed", "failed", "timeout")
    dispositions: tuple[str, ...] = ()
    token_types: tuple[str, ...] = ()  # only a few model calls report usage: nothing declared
    has_cost = False
    outcome_in_detail = True  # a failure shows only in the detail's RUN_ENDED (see above)
    stuck_after_s = 120.0  # runs take seconds; one `started` longer is re-checked by its detail
    detail_delay_s = 5.0  # model calls land up to seconds after RUN_ENDED: traces wait that long

    def __init__(
        self, name: str, client: HttpClient, *, page_size: int, clock: Callable[[], float]
    ):
        self.name = name
        self._client = client
        self._page_size = page_size
        self._clock = clock
        self._first_seen = fields.FirstSeen(clock)  # the stand-in of runs with no time at all

    async def pages(self, agent_id: str) -> AsyncGenerator[Page, None]:
        """Yield the agent's runs newest first, each older page bounded by `to`."""
        to = int(self._clock() * 1000) + FIRST_PAGE_AHEAD_MS
        seen: set[str] = set()
        first = True
        while True:
            body = await self._client.get_json(
                f"/api/agents/{agent_id}/runs",
                endpoint="list_runs",
                params={"limit": self._page_size, "to": to},
            )
            page = parse_list(body, agent_id, self._first_seen)
            oldest = _oldest_start_ms(page)
            page.runs = [run for run in page.runs if run.id not in seen]
            seen.update(run.id for run in page.runs)
            if not first:
                page.runs = [await self._confirm(run) for run in page.runs]
            page.has_more = page.has_more and oldest is not None and oldest - 1 < to
            yield page
            if not page.has_more or oldest is None:
                return
            to, first = oldest - 1, False

    async def _confirm(self, run: Run) -> Run:
        """Return the true state of a run an older page shows in flight (its end may be newer)."""
        if run.status.terminal:
            return run
        body = await self._client.get_json(
            f"/api/agents/{run.agent_id}/runs/{run.id}", endpoint="get_run", params=_room(run)
        )
        data = unwrap(body)
        summary = data.get("summary") if isinstance(data, dict) else None
        try:
            confirmed = parse_run(summary, run.agent_id)
        except ParseError:
            return run
        return confirmed if confirmed.status.terminal else run

    async def list_agents(self) -> list[AgentEntry]:
        """Return the server's running agents from `GET /api/agents`."""
        body = await self._client.get_json("/api/agents", endpoint="list_agents", params={})
        return parse_agents(body)

    async def agent_name(self, agent_id: str) -> str | None:
        """Return the agent's name from `GET /api/agents/{agentId}`."""
        body = await self._client.get_json(
            f"/api/agents/{agent_id}", endpoint="get_agent", params={}, priority=Priority.DETAIL
        )
        entry = agent_entry(unwrap(body))
        return entry.name if entry else None

    async def fetch_detail(self, run: Run) -> Run:
        """Return `run` with the actions and model calls of its event timeline."""
        body = await self._client.get_json(
            f"/api/agents/{run.agent_id}/runs/{run.id}",
            endpoint="get_run",
            params=_room(run),
            priority=Priority.DETAIL,
        )
        return parse_detail(body, run)

    async def aclose(self) -> None:
        """Close the source's HTTP client."""
        await self._client.aclose()


def _room(run: Run) -> dict[str, str]:
    """Return the detail's query: its room, which narrows the server's newest-5,000-logs scan
    (without it an older run of a busy agent comes back with no events)."""
    return {"roomId": run.conversation_id} if run.conversation_id else {}


def _oldest_start_ms(page: Page) -> int | None:
    starts = [run.created_at for run in page.runs if not run.created_estimated]
    return round(min(starts) * 1000) if starts else None


def build(settings: SourceOptions, client: HttpClient, clock: Callable[[], float]) -> ElizaSource:
    """Return the ElizaOS source for `settings`; `clock` sets the first page's `to`."""
    return ElizaSource(settings.name, client, page_size=settings.page_size, clock=clock)


SPEC = PlatformSpec(
    name="elizaos",
    title="ElizaOS",
    endpoints=("list_agents", "get_agent", "list_runs", "get_run"),
    auth=AuthHeader("X-API-KEY", None),  # the bare key, and only when the server sets one
    discovers_agents=True,
    rate_limit=RateLimit(documented=None, default=UNDOCUMENTED_DEFAULT, per_workspace=False),
    build=build,
)
