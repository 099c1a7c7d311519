"""Property tests for Conduit's parsers: arbitrary JSON raises only the documented errors.

Each row of PARSERS is (name, parse function, error types it may raise). A parser takes one decoded
JSON value (a response body or one item of it) and either returns or raises one of its types;
anything else (KeyError, TypeError, OverflowError, ...) would escape the poll loop's handling.
Add a platform by adding its rows (Runtype, ElizaOS and ACP have theirs in
test_platform_properties.py). Every run that parses must also become spans OTLP can encode.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from exporter.errors import MalformedPageError, ParseError
from exporter.model import SourceInfo
from exporter.sinks.traces.sink import TraceSink
from exporter.sinks.traces.spanfile import encode_line
from exporter.sources import conduit

Parser = Callable[[Any], object]

PARSERS: list[tuple[str, Parser, tuple[type[Exception], ...]]] = [
    ("conduit.parse_run", conduit.parse_run, (ParseError,)),
    ("conduit.parse_tool_trace", conduit.parse_tool_trace, (ParseError,)),
    ("conduit.parse_list_page", conduit.parse_list_page, (MalformedPageError,)),
    ("conduit.parse_detail", conduit.parse_detail, (MalformedPageError, ParseError)),
    ("conduit.parse_agents", conduit.parse_agents, (MalformedPageError,)),
]

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


@pytest.mark.parametrize(("name", "parse", "allowed"), PARSERS, ids=[row[0] for row in PARSERS])
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=ANYTHING)
def test_parsers_raise_only_their_documented_errors(
    name: str, parse: Parser, allowed: tuple[type[Exception], ...], value: Any
) -> None:
    with contextlib.suppress(allowed):
        parse(value)


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


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(item=PLAUSIBLE_RUN)
def test_every_run_that_parses_becomes_encodable_spans(item: dict[str, Any]) -> None:
    try:
        run = conduit.parse_detail({"data": item})
    except (MalformedPageError, ParseError):
        return
    sink = TraceSink(SimpleSpanProcessor(InMemorySpanExporter()), environ={})
    encode_line(sink.build_spans(SourceInfo("s", "conduit"), run))  # OTLP int64/uint64 limits
