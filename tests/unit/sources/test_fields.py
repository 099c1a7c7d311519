"""Field readers: the stand-in time of a run the platform gave none, and fields named as invalid.

A run needs only an id and a status: every other field, the time it is ordered by included, may be
missing or malformed (ACP documents every field as optional) without dropping the run.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.errors import ParseError
from exporter.sources import acp, elizaos, fields
from tests.unit.fakeclock import FakeClock

T0 = 1_800_000_000.0


def test_first_seen_keeps_the_first_time_a_run_was_seen() -> None:
    clock = FakeClock(T0)
    seen = fields.FirstSeen(clock)
    assert seen("a") == T0
    clock.advance(60)
    assert (seen("a"), seen("b")) == (T0, T0 + 60)


def test_first_seen_forgets_the_run_seen_least_recently_past_its_capacity() -> None:
    clock = FakeClock(T0)
    seen = fields.FirstSeen(clock, capacity=2)
    seen("a"), seen("b")
    clock.advance(5)
    seen("a")  # seen again: kept
    seen("c")  # "b" goes
    clock.advance(5)
    assert (seen("a"), seen("c"), seen("b")) == (T0, T0 + 5, T0 + 10)


def test_order_time_prefers_the_creation_then_the_end_then_the_first_sighting() -> None:
    seen = fields.FirstSeen(FakeClock(T0 + 99))
    assert fields.order_time(T0, T0 + 5, "k", seen) == (T0, False)
    assert fields.order_time(None, T0 + 5, "k", seen) == (T0 + 5, True)
    assert fields.order_time(None, None, "k", seen) == (T0 + 99, True)
    with pytest.raises(ParseError):
        fields.order_time(None, None, "k", None)


def test_an_expected_field_is_named_when_absent_or_malformed_not_when_present() -> None:
    drift = fields.Drift()
    assert drift.expected(fields.optional_timestamp, None, "createdAt") is None
    assert drift.expected(fields.optional_timestamp, "yesterday", "startedAt") is None
    assert drift.expected(fields.optional_timestamp, "2027-01-15T08:00:00Z", "ok") is not None
    assert drift.value(fields.optional_timestamp, None, "completedAt") is None  # optional
    assert drift.invalid == ("createdAt", "startedAt")


def readable(value: Any) -> bool:
    """Say whether `value` is a usable ISO 8601 time."""
    try:
        return fields.optional_timestamp(value, "createdAt") is not None
    except ParseError:
        return False


# Anything at all in every other field; the id and status are usable.
OTHER = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=12),
    st.sampled_from(["2027-01-15T08:00:00Z", "yesterday", "", "1796503934206"]),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)
ACP_KEYS = ["createdAt", "completedAt", "threadId", "error", "mode", "sessionProtocol", "title"]
ELIZA_KEYS = ["startedAt", "endedAt", "durationMs", "roomId", "messageId", "entityId", "metadata"]


@settings(max_examples=150, deadline=None)
@given(
    status=st.sampled_from(["queued", "running", "completed", "failed", "cancelled", "odd"]),
    others=st.dictionaries(st.sampled_from(ACP_KEYS), OTHER, max_size=len(ACP_KEYS)),
)
def test_an_acp_run_with_an_id_and_a_status_is_never_dropped(
    status: str, others: dict[str, Any]
) -> None:
    seen = fields.FirstSeen(FakeClock(T0))
    run = acp.parse_run({"id": "run_1", "status": status} | others, "srv", seen)
    assert run.raw_status == status
    assert run.created_estimated == (not readable(others.get("createdAt")))
    if run.created_estimated:
        assert "createdAt" in run.invalid_fields
        assert run.effective_duration_s is None  # absent, never a made-up zero


@settings(max_examples=150, deadline=None)
@given(
    status=st.sampled_from(["started", "completed", "timeout", "error", "muted"]),
    others=st.dictionaries(st.sampled_from(ELIZA_KEYS), OTHER, max_size=len(ELIZA_KEYS)),
)
def test_an_elizaos_run_with_an_id_and_a_status_is_never_dropped(
    status: str, others: dict[str, Any]
) -> None:
    seen = fields.FirstSeen(FakeClock(T0))
    run = elizaos.parse_run({"runId": "r-1", "status": status} | others, "agent", seen)
    assert run.raw_status == status
    if run.created_estimated:
        assert "startedAt" in run.invalid_fields
        assert run.effective_duration_s is None
