"""Captured tool content on spans: opt-in per sink or source, redacted, truncated; step cap."""

from __future__ import annotations

import json
from typing import Any

from exporter import logs
from exporter.model import SourceInfo, Status, ToolStep
from exporter.sinks.traces.redaction import REDACTED, Redactor
from exporter.sinks.traces.spans import TRUNCATION_MARK
from tests.unit.sinks.test_traces import SOURCE, Harness, make_run, split

ARGUMENTS = "gen_ai.tool.call.arguments"
RESULT = "gen_ai.tool.call.result"
BOOKING = {
    "guest": {"name": "Ada", "email": "ada@example.com", "phone": "+1 555 0100"},
    "payment": {"cardNumber": "4111111111111111", "amount": 120},
    "auth": {"api_key": "k-1", "Authorization": "Bearer t"},
}


def steps_attributes(spans: list[Any]) -> list[dict[str, Any]]:
    return [dict(span.attributes) for span in split(spans)[1]]


def test_nothing_is_captured_by_default() -> None:
    _, spans = Harness().export(make_run())
    assert all(ARGUMENTS not in attrs and RESULT not in attrs for attrs in steps_attributes(spans))


def test_a_source_can_switch_capture_on_or_off() -> None:
    on = SourceInfo("support", "conduit", capture_content=True)
    off = SourceInfo("billing", "conduit", capture_content=False)
    _, spans = Harness().export(make_run(), on)
    assert ARGUMENTS in steps_attributes(spans)[0]
    _, spans = Harness(capture_content=True).export(make_run(), off)
    assert ARGUMENTS not in steps_attributes(spans)[0]
    _, spans = Harness(capture_content=True).export(make_run(), SOURCE)
    assert ARGUMENTS in steps_attributes(spans)[0]


def test_captured_content_is_redacted_at_depth() -> None:
    run = make_run(tool_steps=(ToolStep(name="book", input=BOOKING, output={"token": "x"}),))
    _, spans = Harness(capture_content=True).export(run)
    attributes = steps_attributes(spans)[0]
    arguments = json.loads(attributes[ARGUMENTS])
    assert arguments == {
        "guest": {"name": "Ada", "email": REDACTED, "phone": REDACTED},
        "payment": {"cardNumber": REDACTED, "amount": 120},
        "auth": {"api_key": REDACTED, "Authorization": REDACTED},
    }
    assert json.loads(attributes[RESULT]) == {"token": REDACTED}


def test_redaction_happens_before_truncation() -> None:
    step = ToolStep(name="t", input={"password": "p" * 500, "note": "n" * 500})
    _, spans = Harness(capture_content=True, max_content_chars=64).export(
        make_run(tool_steps=(step,))
    )
    text = steps_attributes(spans)[0][ARGUMENTS]
    assert text.startswith('{"password":"[REDACTED]","note":"nnn')
    assert text.endswith(TRUNCATION_MARK)
    assert len(text) == 64 + len(TRUNCATION_MARK)


def test_configured_redaction_keys_are_used() -> None:
    step = ToolStep(name="t", input={"pnr": "XY12Z", "email": "kept@example.com"})
    harness = Harness(capture_content=True, redactor=Redactor(["pnr"]))
    _, spans = harness.export(make_run(tool_steps=(step,)))
    assert json.loads(steps_attributes(spans)[0][ARGUMENTS]) == {
        "pnr": REDACTED,
        "email": "kept@example.com",
    }


def test_the_exporters_own_secrets_never_reach_a_span() -> None:
    secret = "tok-spans-7c1e0b"
    logs.register_secret(secret)
    step = ToolStep(
        name="echo", input={"q": f"said {secret}"}, output={"error": f"bad key {secret}"}
    )
    run = make_run(tool_steps=(step,), status=Status.FAILED, error=f"401 for {secret}")
    _, spans = Harness(capture_content=True).export(run)
    for span in spans:
        text = json.dumps(dict(span.attributes or {})) + str(span.status.description)
        assert secret not in text, span.name


def test_tool_steps_past_the_cap_are_dropped_and_counted() -> None:
    dropped: list[tuple[str, int]] = []
    harness = Harness(max_tool_steps=2, on_steps_dropped=lambda s, n: dropped.append((s, n)))
    steps = tuple(ToolStep(name=f"tool-{index}") for index in range(5))
    _, spans = harness.export(make_run(tool_steps=steps))
    root, children = split(spans)
    assert [span.name for span in children] == ["execute_tool tool-0", "execute_tool tool-1"]
    assert dropped == [(SOURCE.name, 3)]
    assert root.attributes is not None
    assert root.attributes["agent_run.tool_steps_dropped"] == "3"
    _, spans = harness.export(make_run(tool_steps=steps[:2]))
    assert len(spans) == 3
    assert dropped == [(SOURCE.name, 3)]
