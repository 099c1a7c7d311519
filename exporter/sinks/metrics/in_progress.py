"""`agent_runs_in_progress`: the runs in flight per agent, read from the tracker at scrape time."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping

from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from exporter.model import IN_FLIGHT_STATUSES, Status
from exporter.sinks.metrics.exposition import GaugeLines
from exporter.sinks.metrics.series import AGENT_LABELS

IN_PROGRESS = "agent_runs_in_progress"
IN_PROGRESS_HELP = "Agent runs currently queued or running, as last seen."
IN_PROGRESS_LABELS = (*AGENT_LABELS, "status")
_IN_FLIGHT = tuple((status, status.value) for status in IN_FLIGHT_STATUSES)


class InProgressCollector(Collector):
    """`agent_runs_in_progress`: runs in flight per agent, read from the tracker at scrape time."""

    def __init__(
        self,
        counts: Callable[[], Mapping[tuple[str, str, Status], int]],
        agents: Callable[[], Iterable[tuple[str, str, str]]],
    ) -> None:
        self._counts = counts
        self._agents = agents
        self._lines = GaugeLines(IN_PROGRESS, IN_PROGRESS_HELP, IN_PROGRESS_LABELS)

    def collect(self) -> Iterator[Metric]:
        """Yield one gauge per (source, agent, in-flight status), zeros included."""
        counts = self._counts()
        rows = [
            ((source, platform, agent_id, value), counts.get((source, agent_id, status), 0))
            for source, platform, agent_id in self._agents()
            for status, value in _IN_FLIGHT
        ]

        yield self._lines.family(rows)
