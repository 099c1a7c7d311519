"""Property tests: arbitrary JSON given to the Runtype, ElizaOS and ACP parsers never raises
anything but the documented errors (ParseError for one item, MalformedPageError for a body)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.errors import MalformedPageError, NotFoundError, ParseError
from exporter.sources import acp, elizaos, elizaos_events, runtype
from tests.unit.runs import make_run

SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
KEYS = st.sampled_from(
    [
        "id", "runId", "status", "createdAt", "startedAt", "completedAt", "endedAt",
        "durationMs", "totalCost", "totalTokens", "data", "runs", "pagination", "nextCursor",
        "hasMore", "success", "error", "summary", "events", "type", "timestamp", "toolCalls",
        "toolName", "executionTimeMs", "actionId", "executionTime", "inputTokens", "agents",
    ]
) | st.text(max_size=8)  # fmt: skip
STATUSES = st.sampled_from(["completed", "failed", "started", "running", "timeout", "paused"])
JSON = st.recursive(
    SCALARS | STATUSES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=6),
    max_leaves=15,
)
RUN = make_run("r1")


def _events(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


DETAIL_ERRORS = (MalformedPageError, NotFoundError)
PARSERS: list[tuple[str, Callable[[Any], Any], tuple[type[Exception], ...]]] = [
    ("runtype.parse_run", lambda v: runtype.parse_run(v, "a"), (ParseError,)),
    ("runtype.parse_list_page", lambda v: runtype.parse_list_page(v, "a"), (MalformedPageError,)),
    ("runtype.parse_tool_calls", runtype.parse_tool_calls, (MalformedPageError,)),
    ("runtype.parse_agents", runtype.parse_agents, (MalformedPageError,)),
    ("elizaos.parse_run", lambda v: elizaos.parse_run(v, "a"), (ParseError,)),
    ("elizaos.parse_list", lambda v: elizaos.parse_list(v, "a"), (MalformedPageError,)),
    ("elizaos.parse_detail", lambda v: elizaos.parse_detail(v, RUN), DETAIL_ERRORS),
    ("elizaos.parse_agents", elizaos.parse_agents, (MalformedPageError,)),
    ("elizaos_events.steps_of", lambda v: elizaos_events.steps_of(_events(v)), ()),
    ("elizaos_events.usage_of", lambda v: elizaos_events.usage_of(_events(v)), ()),
    ("acp.parse_run", lambda v: acp.parse_run(v, "s"), (ParseError,)),
    ("acp.parse_list", lambda v: acp.parse_list(v, "s", 20), (MalformedPageError,)),
]  # fmt: skip


@pytest.mark.parametrize(("name", "parse", "allowed"), PARSERS, ids=[p[0] for p in PARSERS])
@settings(max_examples=120, deadline=None)
@given(value=JSON)
def test_arbitrary_json_raises_only_documented_errors(
    name: str, parse: Callable[[Any], Any], allowed: tuple[type[Exception], ...], value: Any
) -> None:
    with contextlib.suppress(*allowed):
        parse(value)


@settings(max_examples=100, deadline=None)
@given(items=st.lists(st.dictionaries(KEYS, SCALARS | STATUSES, max_size=8), max_size=6))
def test_list_pages_of_arbitrary_items_skip_or_keep_every_item(items: list[Any]) -> None:
    page, _cursor = runtype.parse_list_page({"data": items}, "a")
    assert len(page.runs) + sum(page.skipped.values()) == len(items)
    eliza = elizaos.parse_list({"success": True, "data": {"runs": items}}, "a")
    assert len(eliza.runs) + sum(eliza.skipped.values()) == len(items)
