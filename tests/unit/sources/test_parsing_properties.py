"""Property tests for every platform's parsers: arbitrary JSON raises only the documented errors.

Each row of PARSERS is (platform, name, parse function, error types it may raise, the JSON it is
fed). A parser takes one decoded JSON value (a response body or one item of it) and either returns
or raises one of its types (ParseError for one item, MalformedPageError for a body); anything else
(KeyError, TypeError, OverflowError, ...) would escape the poll loop's handling. Every registered
platform needs rows: `test_every_registered_platform_has_parser_rows` fails until it has them.
A list page keeps or skips every item it is given, and every run that parses must also become
spans OTLP can encode.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from exporter.errors import MalformedPageError, NotFoundError, ParseError
from exporter.model import SourceInfo
from exporter.sinks.traces.sink import TraceSink
from exporter.sinks.traces.spanfile import encode_line
from exporter.sources import acp, conduit, elizaos, elizaos_events, runtype, runtype_tools
from exporter.sources.base import Page
from exporter.sources.registry import PLATFORMS
from tests.unit.runs import make_run

Parser = Callable[[Any], object]

# Values a platform's payloads use, mixed with junk, so generated items get past the first checks.
STATUSES = st.sampled_from(["accepted", "running", "completed", "failed", "queued", "", "DONE"])
TIMESTAMPS = st.one_of(
    st.sampled_from(
        [
            "2027-01-15T08:00:00Z",
            "2027-01-15T08:00:00.123+02:00",
            "0001-01-01T00:00:00+14:00",
            "9999-12-31T23:59:59-14:00",
            "2027-01-15",
            "yesterday",
        ]
    ),
    st.datetimes().map(lambda d: d.isoformat()),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    STATUSES,
    TIMESTAMPS,
)
JSON = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
RUN_KEYS = st.sampled_from(
    [
        "id",
        "agent_id",
        "status",
        "created_at",
        "completed_at",
        "duration_ms",
        "disposition",
        "token_usage",
        "total_cost",
        "trace_id",
        "conversation_id",
        "error",
        "run_id",
        "workspace_id",
        "tool_trace",
        "input",
        "output",
        "name",
    ]
)
USAGE = st.dictionaries(st.sampled_from(["input", "output"]), SCALARS, max_size=2)
FIELD = st.one_of(SCALARS, USAGE, st.lists(JSON, max_size=3), JSON)
RUN_LIKE = st.dictionaries(RUN_KEYS, FIELD, max_size=18)
STEP_LIKE = st.dictionaries(st.sampled_from(["name", "input", "output"]), JSON, max_size=3)
ITEM = st.one_of(RUN_LIKE, STEP_LIKE, JSON)
BODY = st.one_of(
    st.fixed_dictionaries(
        {"data": st.one_of(st.lists(ITEM, max_size=5), RUN_LIKE, ITEM)},
        optional={"has_more": SCALARS, "next_cursor": SCALARS},
    ),
    JSON,
)
ANYTHING = st.one_of(BODY, ITEM, st.lists(STEP_LIKE, max_size=5))

# The camelCase vocabulary of Runtype, ElizaOS and ACP payloads.
CAMEL_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
CAMEL_KEYS = st.sampled_from(
    [
        "id", "runId", "status", "createdAt", "startedAt", "completedAt", "endedAt",
        "durationMs", "totalCost", "totalTokens", "data", "runs", "pagination", "nextCursor",
        "hasMore", "success", "error", "summary", "events", "type", "timestamp", "toolCalls",
        "toolName", "executionTimeMs", "actionId", "executionTime", "inputTokens", "agents",
    ]
) | st.text(max_size=8)  # fmt: skip
CAMEL_STATUSES = st.sampled_from(["completed", "failed", "started", "running", "timeout", "paused"])
CAMEL_JSON = st.recursive(
    CAMEL_SCALARS | CAMEL_STATUSES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(CAMEL_KEYS, inner, max_size=6),
    max_leaves=15,
)
RUN = make_run("r1")
DETAIL_ERRORS = (MalformedPageError, NotFoundError)
PAGE_ERROR = MalformedPageError


def _events(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@dataclass(frozen=True)
class Row:
    """One parser: its platform, its name, how to call it, what it may raise, what it is fed."""

    platform: str
    name: str
    parse: Parser
    allowed: tuple[type[Exception], ...]
    values: st.SearchStrategy[Any]
    examples: int


def _conduit(name: str, parse: Parser, *allowed: type[Exception]) -> Row:
    return Row("conduit", f"conduit.{name}", parse, allowed, ANYTHING, 300)


def _camel(platform: str, name: str, parse: Parser, *allowed: type[Exception]) -> Row:
    qualified = name if "." in name else f"{platform}.{name}"
    return Row(platform, qualified, parse, allowed, CAMEL_JSON, 120)


PARSERS = [
    _conduit("parse_run", conduit.parse_run, ParseError),
    _conduit("parse_tool_trace", conduit.parse_tool_trace, ParseError),
    _conduit("parse_list_page", conduit.parse_list_page, MalformedPageError),
    _conduit("parse_detail", conduit.parse_detail, MalformedPageError, ParseError),
    _conduit("parse_agents", conduit.parse_agents, MalformedPageError),
    _camel("runtype", "parse_run", lambda v: runtype.parse_run(v, "a"), ParseError),
    _camel("runtype", "parse_list_page", lambda v: runtype.parse_list_page(v, "a"), PAGE_ERROR),
    _camel("runtype", "parse_tool_calls", runtype_tools.parse_tool_calls, MalformedPageError),
    _camel("runtype", "parse_agents", runtype.parse_agents, MalformedPageError),
    _camel("elizaos", "parse_run", lambda v: elizaos.parse_run(v, "a"), ParseError),
    _camel("elizaos", "parse_list", lambda v: elizaos.parse_list(v, "a"), MalformedPageError),
    _camel("elizaos", "parse_detail", lambda v: elizaos.parse_detail(v, RUN), *DETAIL_ERRORS),
    _camel("elizaos", "parse_agents", elizaos.parse_agents, MalformedPageError),
    _camel("elizaos", "elizaos_events.steps_of", lambda v: elizaos_events.steps_of(_events(v))),
    _camel("elizaos", "elizaos_events.usage_of", lambda v: elizaos_events.usage_of(_events(v))),
    _camel("acp", "parse_run", lambda v: acp.parse_run(v, "s"), ParseError),
    _camel("acp", "parse_list", lambda v: acp.parse_list(v, "s", 20), MalformedPageError),
]  # fmt: skip


def test_every_registered_platform_has_parser_rows() -> None:
    assert sorted({row.platform for row in PARSERS}) == sorted(PLATFORMS)


@pytest.mark.parametrize("row", PARSERS, ids=[row.name for row in PARSERS])
def test_parsers_raise_only_their_documented_errors(row: Row) -> None:
    @settings(max_examples=row.examples, suppress_health_check=[HealthCheck.too_slow])
    @given(value=row.values)
    def check(value: Any) -> None:
        with contextlib.suppress(*row.allowed):
            row.parse(value)

    check()


# How each platform's list page holds `items`, and how to read it into a page.
LIST_PAGES: list[tuple[str, Callable[[list[Any]], Page]]] = [
    ("conduit", lambda items: conduit.parse_list_page({"data": items})),
    ("runtype", lambda items: runtype.parse_list_page({"data": items}, "a")[0]),
    ("elizaos", lambda items: elizaos.parse_list({"success": True, "data": {"runs": items}}, "a")),
]
ITEMS = st.lists(
    st.dictionaries(CAMEL_KEYS | RUN_KEYS, CAMEL_SCALARS | CAMEL_STATUSES | STATUSES, max_size=8),
    max_size=6,
)


@pytest.mark.parametrize(("platform", "read"), LIST_PAGES, ids=[page[0] for page in LIST_PAGES])
@settings(max_examples=100)
@given(items=ITEMS)
def test_list_pages_of_arbitrary_items_skip_or_keep_every_item(
    platform: str, read: Callable[[list[Any]], Page], items: list[Any]
) -> None:
    page = read(items)
    assert len(page.runs) + sum(page.skipped.values()) == len(items)


PLAUSIBLE_RUN = st.fixed_dictionaries(
    {
        "id": st.text(min_size=1, max_size=8),
        "agent_id": st.text(min_size=1, max_size=8),
        "status": STATUSES,
        "created_at": TIMESTAMPS,
    },
    optional={
        "completed_at": TIMESTAMPS,
        "duration_ms": SCALARS,
        "token_usage": USAGE,
        "total_cost": SCALARS,
        "trace_id": st.one_of(SCALARS, st.text("0123456789abcdef", min_size=16, max_size=32)),
        "disposition": SCALARS,
        "tool_trace": st.lists(STEP_LIKE, max_size=3),
    },
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(item=PLAUSIBLE_RUN)
def test_every_run_that_parses_becomes_encodable_spans(item: dict[str, Any]) -> None:
    try:
        run = conduit.parse_detail({"data": item})
    except (MalformedPageError, ParseError):
        return
    sink = TraceSink(SimpleSpanProcessor(InMemorySpanExporter()), environ={})
    encode_line(sink.build_spans(SourceInfo("s", "conduit"), run))  # OTLP int64/uint64 limits
