"""ElizaOS source on responses captured from a real `@elizaos/server` 1.7.2 (tests/fixtures).

1.7.2 records a failed run as `completed` with the error in its `RUN_ENDED` event: only the detail
tells it, so the source asks to be counted from the detail (`outcome_in_detail`).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from exporter.model import Status
from exporter.sources.elizaos import ElizaSource, parse_detail, parse_list
from exporter.sources.elizaos_events import run_error

CAPTURED = Path(__file__).parents[2] / "fixtures" / "elizaos-1.7.2"
AGENT = "b850bc30-45f8-0041-a00a-83df46d8555d"


def captured(name: str) -> Any:
    return json.loads((CAPTURED / name).read_text())


def listed_as_completed(name: str) -> Any:
    """Return the run of a captured detail as the list shows it (no events, no error)."""
    summary = dict(captured(name)["data"]["summary"], durationMs=None)
    return parse_list({"success": True, "data": {"runs": [summary]}}, AGENT).runs[0]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("detail-modelerror.json", "fake provider: upstream 503 (simulated)"),
        ("detail-crash.json", "CRASH_ACTION exploded (simulated bug)"),
    ],
)
def test_a_completed_run_whose_run_ended_carries_an_error_is_failed(
    name: str, message: str
) -> None:
    run = listed_as_completed(name)
    assert run.status is Status.COMPLETED  # all the list can say
    detailed = parse_detail(captured(name), run)
    assert (detailed.status, detailed.raw_status, detailed.error) == (
        Status.FAILED,
        "completed",
        message,
    )
    assert detailed.completed_at == run.completed_at  # the end and duration stay the server's


@pytest.mark.parametrize("name", ["detail-action.json", "detail-fail.json"])
def test_a_run_ended_without_an_error_stays_completed(name: str) -> None:
    # detail-fail.json: its failing action reported success=true and nothing carries an error,
    # so nothing tells it apart from a success.
    detailed = parse_detail(captured(name), listed_as_completed(name))
    assert (detailed.status, detailed.error) == (Status.COMPLETED, None)


def test_a_timeout_keeps_its_status_and_gains_the_message() -> None:
    body = captured("detail-modelerror.json")
    run = replace(listed_as_completed("detail-modelerror.json"), status=Status.TIMEOUT)
    assert parse_detail(body, run).status is Status.TIMEOUT
    assert parse_detail(body, run).error == "fake provider: upstream 503 (simulated)"


def test_the_run_ended_error_may_be_an_object_or_absent() -> None:
    ended = {"type": "RUN_ENDED", "timestamp": 1, "data": {"status": "completed"}}
    assert run_error([ended]) is None
    assert run_error([{**ended, "data": {"error": {"message": "boom"}}}]) == "boom"
    assert run_error([{**ended, "data": {"error": "x" * 900}}]) == "x" * 500
    assert run_error([{**ended, "data": None}, "junk"]) is None


def test_the_list_of_the_real_server_reads_every_run() -> None:
    page = parse_list(captured("list-all.json"), AGENT)
    assert page.runs
    assert not page.skips
    assert {run.raw_status for run in page.runs} <= {"completed", "started"}


def test_the_source_asks_to_be_counted_from_the_detail() -> None:
    assert ElizaSource.outcome_in_detail is True
