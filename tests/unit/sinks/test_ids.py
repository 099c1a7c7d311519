"""Trace and span ids: the integer forms agree with the hex ones, which keep their old values."""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.model import Run, Status, ToolStep
from exporter.sinks.traces import ids


def reference_trace_id(source: str, run_id: str, upstream: str | None) -> str:
    """The rule as first written (hex strings throughout)."""
    if upstream:
        candidate = upstream.strip().lower()
        if re.fullmatch(r"[0-9a-f]{32}", candidate) and candidate != "0" * 32:
            return candidate
        if re.fullmatch(r"[0-9a-f]{16}", candidate) and candidate != "0" * 16:
            return candidate.rjust(32, "0")
    derived = hashlib.sha256("\x1f".join(("trace", source, run_id)).encode()).digest()[:16].hex()
    return derived if derived != "0" * 32 else "1".rjust(32, "0")


def reference_span_id(source: str, run_id: str, step: int | str) -> str:
    parts = ("span", source, run_id, str(step))
    derived = hashlib.sha256("\x1f".join(parts).encode()).digest()[:8].hex()
    return derived if derived != "0" * 16 else "1".rjust(16, "0")


UPSTREAM = st.one_of(
    st.none(),
    st.text(max_size=40),
    st.text("0123456789abcdefABCDEF", min_size=16, max_size=16),
    st.text("0123456789abcdefABCDEF", min_size=32, max_size=32).map(lambda s: f" {s} "),
    st.sampled_from(["0" * 16, "0" * 32, "0" * 31 + "1"]),
)


@given(st.text(max_size=20), st.text(max_size=40), UPSTREAM)
@settings(max_examples=300)
def test_trace_ids_keep_their_rule(source: str, run_id: str, upstream: str | None) -> None:
    expected = reference_trace_id(source, run_id, upstream)
    assert ids.run_trace_id(source, run_id, upstream) == expected
    assert ids.trace_id_value(source, run_id, upstream) == int(expected, 16)


@given(st.text(max_size=20), st.text(max_size=40), st.integers(0, 20))
def test_span_ids_agree_in_every_form(source: str, run_id: str, count: int) -> None:
    expected = [reference_span_id(source, run_id, step) for step in range(count)]
    assert [ids.span_id(source, run_id, step) for step in range(count)] == expected
    steps = [ToolStep("t")] * count  # no call ids: by position
    assert ids.step_span_ids(source, run_id, steps) == [int(hex_id, 16) for hex_id in expected]
    root = reference_span_id(source, run_id, "root")
    assert ids.span_id_value(source, run_id, "root") == int(root, 16)


@given(st.text(max_size=20), st.text(max_size=40), st.text(min_size=1, max_size=40))
def test_a_tool_call_span_id_is_derived_from_run_and_call_ids(
    source: str, run_id: str, call_id: str
) -> None:
    derived = hashlib.sha256("\x1f".join(("span", source, run_id, "call", call_id)).encode())
    expected = int.from_bytes(derived.digest()[:8], "big") or 1
    assert ids.call_span_id_value(source, run_id, call_id) == expected


@given(st.lists(st.one_of(st.none(), st.sampled_from(["a", "b", "c"])), max_size=12))
def test_step_span_ids_use_each_call_id_once_and_positions_otherwise(
    call_ids: list[str | None],
) -> None:
    steps = [ToolStep("t", call_id=call_id) for call_id in call_ids]
    values = ids.step_span_ids("s", "r", steps)
    firsts = {call_id: call_ids.index(call_id) for call_id in call_ids if call_id}
    for index, call_id in enumerate(call_ids):
        if call_id and firsts[call_id] == index:
            assert values[index] == ids.call_span_id_value("s", "r", call_id)
        else:
            assert values[index] == ids.span_id_value("s", "r", index)


def test_a_nested_run_lives_in_its_lineage_roots_trace() -> None:
    run = Run("c", "agent", Status.COMPLETED, "completed", 0.0, parent_run_id="p")
    assert ids.trace_of("s", run) == ids.run_trace_id("s", "c", None)  # no call: its own
    nested = replace(run, parent_call_id="toolu_1")
    assert ids.trace_of("s", nested) == ids.run_trace_id("s", "p", None)
    assert ids.trace_of("s", replace(nested, root_run_id="r")) == ids.run_trace_id("s", "r", None)
