"""One agent's list poll: read its new pages, hand each run to the tracker, count the gaps.

A poll reads pages newest first until it reaches runs older than everything still to be read
(`Tracker.window`), the last page, or `max_pages_per_poll`. A run seen ending is counted here, once;
its metrics become visible only when the poller commits.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

from exporter.errors import PermanentError, SourceError
from exporter.poll.discovery import SourceRuntime
from exporter.poll.outcome_phase import outcome_in_detail, stuck_after
from exporter.poll.skips import SkipLedger
from exporter.poll.throttle import ThrottleLog
from exporter.poll.tracker import Outcome, Tracker
from exporter.sinks.metrics.runs import RunMetrics
from exporter.sinks.metrics.selfmetrics import SelfMetrics
from exporter.sinks.traces.ids import trace_of
from exporter.sources.base import Page, Skip
from exporter.sources.fields import printable

log = logging.getLogger(__name__)


class AgentPoll:
    """Polls one agent's run list at a time into the tracker and the run metrics."""

    def __init__(
        self,
        *,
        tracker: Tracker,
        run_metrics: RunMetrics,
        self_metrics: SelfMetrics,
        throttle: ThrottleLog,
        clock: Callable[[], float],
        poll_interval_s: float,
    ) -> None:
        self.tracker = tracker
        self.run_metrics = run_metrics
        self.metrics = self_metrics
        self.skips = SkipLedger()
        self.throttle = throttle
        self.clock = clock
        self.poll_interval_s = poll_interval_s

    async def run(self, runtime: SourceRuntime, agent_id: str) -> tuple[bool, int]:
        """Poll one agent; return whether it succeeded and how many runs it counted."""
        name = runtime.info.name
        now = self.clock()
        stuck = stuck_after(runtime.source)
        stop_below = self.tracker.window(name, agent_id, now, stuck_after_s=stuck)
        newest: float | None = None
        completed = 0
        try:
            pages = 0
            async with contextlib.aclosing(runtime.source.pages(agent_id)) as stream:
                async for page in stream:
                    pages += 1
                    before = runtime.ended  # other agents' polls interleave between pages
                    newest = self._ingest(runtime, page, now, newest)
                    completed += runtime.ended - before
                    if not page.has_more or _reaches(page, stop_below):
                        break
                    if pages >= runtime.max_pages:
                        self._page_cap(runtime, agent_id, pages)
                        return False, 0
        except SourceError as exc:
            self.failed(runtime, agent_id, exc)
            return False, 0
        if page.history_cut:
            self._check_gap(runtime, agent_id, page)
        self.tracker.finish_agent(name, agent_id, newest, now)
        return True, completed

    def reject(self, runtime: SourceRuntime, agent_id: str) -> None:
        """Count and log, once, a discovered agent whose id cannot be polled."""
        skip = Skip("invalid_id", printable(agent_id[:200]), "agent id cannot be part of a URL")
        if self.skips.first(runtime.info.name, skip):
            self.metrics.runs_skipped.labels(runtime.info.name, skip.reason).inc()
            log.warning(
                "source %s: not polling discovered agent %s: its id cannot be part of a URL",
                runtime.info.name,
                skip.item_id,
            )

    def _check_gap(self, runtime: SourceRuntime, agent_id: str, page: Page) -> None:
        """Count a possible gap when the only visible page stops short of runs read before."""
        high_water = self.tracker.high_water(runtime.info.name, agent_id)
        if not page.runs or self._scrolled_off(runtime, agent_id, page):
            return
        if high_water is None:
            return
        # Stand-in times (Run.created_estimated) may be later than the real ones: not a gap.
        real = [run.created_at for run in page.runs if not run.created_estimated]
        if not real or min(real) <= high_water:  # it overlaps what was read
            return
        self.metrics.page_gaps.labels(runtime.info.name).inc()
        log.warning(
            "source %s agent %s: all %d visible runs are newer than the last poll, and the "
            "platform shows no older page: runs in between may be missed. Poll faster "
            "(poll_interval is %gs) or raise page_size.",
            runtime.info.name,
            agent_id,
            len(page.runs),
            self.poll_interval_s,
        )

    def _scrolled_off(self, runtime: SourceRuntime, agent_id: str, page: Page) -> bool:
        """Give up (and count) runs in flight that fell off the only visible page: a gap."""
        name = runtime.info.name
        oldest = min(run.created_at for run in page.runs)
        lost = self.tracker.scrolled_off(name, agent_id, oldest, {run.id for run in page.runs})
        if not lost:
            return False
        self.metrics.page_gaps.labels(name).inc()
        self.metrics.runs_skipped.labels(name, "scrolled_off").inc(len(lost))
        log.warning(
            "source %s agent %s: %d runs in flight scrolled off the only visible page before "
            "they ended; given up, not counted. Poll faster (poll_interval is %gs) or raise "
            "page_size.",
            name,
            agent_id,
            len(lost),
            self.poll_interval_s,
        )
        return True

    def _ingest(
        self, runtime: SourceRuntime, page: Page, now: float, newest: float | None
    ) -> float | None:
        info = runtime.info
        runtime.health.last_progress = self.clock()
        for skip in page.skips:
            if self.skips.first(info.name, skip):
                self.metrics.runs_skipped.labels(info.name, skip.reason).inc()
                log.warning(
                    "source %s: skipping a run (%s%s): %s",
                    info.name,
                    skip.reason,
                    f" {skip.item_id}" if skip.item_id else "",
                    skip.message,
                )
        in_detail = outcome_in_detail(runtime.source)
        for run in page.runs:
            # A stand-in time (see Run.created_estimated) is no proof that older runs were read.
            if not run.created_estimated and (newest is None or run.created_at > newest):
                newest = run.created_at
            waited = in_detail and self.tracker.awaits_detail(info.name, run.id)
            seen = self.tracker.observe(info.name, run, now, outcome_in_detail=in_detail)
            if seen is Outcome.AWAITING_DETAIL and not waited:
                runtime.ended += 1  # seen ending now: the schedule learns from it
            if seen is Outcome.NEW_TERMINAL:
                runtime.ended += 1
                runtime.counted += 1
                self.metrics.count_invalid_fields(info.name, run)
                trace_id = trace_of(info.name, run)
                self.run_metrics.record_run(info.name, info.platform, run, trace_id, now)
        return newest

    def failed(self, runtime: SourceRuntime, agent_id: str, exc: SourceError) -> None:
        """Count and log a failed poll, or a deferred one once (nothing was sent)."""
        name = runtime.info.name
        if self.throttle.deferred(name, exc):  # nothing was sent: not an error, said once
            return
        self.metrics.poll_errors.labels(name, exc.reason).inc()
        runtime.health.last_error = exc.reason
        runtime.health.last_error_message = str(exc)
        level = logging.ERROR if isinstance(exc, PermanentError) else logging.WARNING
        log.log(level, "source %s agent %s: poll failed (%s): %s", name, agent_id, exc.reason, exc)

    def _page_cap(self, runtime: SourceRuntime, agent_id: str, pages: int) -> None:
        name = runtime.info.name
        self.metrics.poll_errors.labels(name, "page_cap").inc()
        runtime.health.last_error = "page_cap"
        log.warning(
            "source %s agent %s: stopped after %d pages (max_pages_per_poll); older runs were "
            "not read this poll. Raise max_pages_per_poll or shorten lookback if this repeats.",
            name,
            agent_id,
            pages,
        )


def _reaches(page: Page, stop_below: float) -> bool:
    """Say whether a page reached runs older than everything still to be read."""
    return bool(page.runs) and min(run.created_at for run in page.runs) < stop_below
