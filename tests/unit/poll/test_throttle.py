"""Quiet while throttled: one warning per wait; poll_errors counts requests, not deferred polls."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from pathlib import Path

import pytest

from exporter.errors import RateLimitedError
from exporter.sources.base import Page
from tests.unit.poll.test_discovery import Setup

RETRY_AFTER = 439.0  # what a real ElizaOS 1.7.2 answered


class Throttled:
    """Pages of a source behind a 429: the first poll sends (and gets the 429), then the budget
    refuses every request until `until`."""

    def __init__(self, setup: Setup, until: float, reason_budget: bool = False) -> None:
        self.setup = setup
        self.until = until
        self.answered = reason_budget  # True: no 429 was ever answered, only our own budget

    async def pages(self, agent_id: str) -> AsyncGenerator[Page, None]:
        now = self.setup.clock()
        if now < self.until:
            if not self.answered:
                self.answered = True
                raise RateLimitedError("HTTP 429 RATE_LIMIT_EXCEEDED", retry_after=RETRY_AFTER)
            raise RateLimitedError("budget", retry_after=self.until - now, budget=True)
        yield Page(runs=[], has_more=False)


def throttled(tmp_path: Path, *, budget_only: bool = False) -> Setup:
    setup = Setup(tmp_path, agents=["a1", "a2"])
    fake = Throttled(setup, setup.clock() + 2 + RETRY_AFTER, reason_budget=budget_only)
    setup.source.pages = fake.pages  # type: ignore[method-assign]
    return setup


def test_a_retry_after_wait_is_one_error_one_warning_and_deferred_polls(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    setup = throttled(tmp_path)
    with caplog.at_level("WARNING"):
        polls = [setup.poll(advance=2.0) for _ in range(225)]  # every 2 s through the wait
    errors = "agent_runs_exporter_poll_errors_total"
    deferred = "agent_runs_exporter_polls_deferred_total"
    assert setup.value(errors, source="src", reason="rate_limited") == 1  # the one 429
    # 220 polls of two agents inside the wait; one of those 440 agent polls got the 429
    assert setup.value(deferred, source="src", reason="retry_after") == 2 * 220 - 1
    assert setup.value(deferred, source="src", reason="budget") == 0
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1
    assert polls[-1]  # the wait is over: polling works again


def test_our_own_budget_is_said_once_per_wait(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    setup = throttled(tmp_path, budget_only=True)
    with caplog.at_level("WARNING"):
        for _ in range(30):
            setup.poll(advance=2.0)
    errors = "agent_runs_exporter_poll_errors_total"
    assert setup.value(errors, source="src", reason="rate_limited") == 0
    assert setup.value("agent_runs_exporter_polls_deferred_total", source="src", reason="budget")
    assert len([r for r in caplog.records if r.levelname == "WARNING"]) == 1


def test_a_budget_short_all_day_is_said_every_ten_minutes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    setup = throttled(tmp_path, budget_only=True)
    throttle = setup.poller.throttle
    short = RateLimitedError("budget", retry_after=3.0, budget=True)
    with caplog.at_level("WARNING"):
        for _ in range(400):  # a 3 s wait every 3 s for 20 minutes: 400 waits
            assert throttle.deferred("src", short)
            setup.clock.advance(3.0)
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 2  # at 0 and 600 s
    assert (
        setup.value("agent_runs_exporter_polls_deferred_total", source="src", reason="budget")
        == 400
    )
