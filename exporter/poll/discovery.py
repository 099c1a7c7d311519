"""The agents of each source: configured or discovered, their names, and the info metric.

A source without configured `agents` lists them from the platform at its first poll and again
every `discovery_interval`; a failed refresh keeps the last list. Names come from the listing, or
once per agent from the platform's get-agent call, and feed `gen_ai.agent.name` and

    agent_runs_exporter_agent_info{source="support",platform="conduit",agent_id="ag7",agent_name="Concierge"} 1.0
"""  # noqa: E501

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial

from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from exporter.config.sharding import ShardingSettings
from exporter.errors import ExporterError, PermanentError
from exporter.model import SourceInfo
from exporter.poll.health import SourceHealth
from exporter.poll.schedule import Schedule
from exporter.sinks.metrics.exposition import GaugeLines
from exporter.sinks.metrics.series import clean_text
from exporter.sources.base import AgentEntry, Source
from exporter.sources.budget import Budget
from exporter.sources.fields import url_safe_id

log = logging.getLogger(__name__)

INFO_NAME = "agent_runs_exporter_agent_info"
INFO_HELP = "Agents being polled, with their display names (always 1)."
INFO_LABELS = ("source", "platform", "agent_id", "agent_name")
_MAX_NAME_CHARS = 128


@dataclass(slots=True)
class AgentDirectory:
    """The agent ids one source polls and the names learned for them."""

    configured: list[str] | None
    refresh_s: float
    ids: list[str] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)
    refreshed_at: float | None = None
    keep: Callable[[str], bool] = lambda agent_id: (
        True
    )  # this shard's agents (exporter.config.sharding)
    others: int = 0  # agents of this source that other shards poll
    rejected: list[str] = field(default_factory=list)  # listed ids no URL can hold

    def __post_init__(self) -> None:
        if self.configured is not None:
            self.ids = self._mine(self.configured)

    def _mine(self, agent_ids: Iterable[str]) -> list[str]:
        listed = list(dict.fromkeys(agent_ids))
        mine = [agent for agent in listed if self.keep(agent)]
        self.others = len(listed) - len(mine)
        return mine

    @property
    def discovers(self) -> bool:
        """Say whether the agents come from the platform's listing."""
        return self.configured is None

    def due(self, now: float) -> bool:
        """Say whether the listing should be read again."""
        return self.discovers and (
            self.refreshed_at is None or now - self.refreshed_at >= self.refresh_s
        )

    def adopt(self, entries: list[AgentEntry], now: float) -> list[str]:
        """Take a fresh listing; return the ids that are new.

        An id that cannot be part of a URL is left out (in `rejected`), so it costs itself only.
        """
        self.rejected = [entry.id for entry in entries if not url_safe_id(entry.id)]
        if self.rejected:
            entries = [entry for entry in entries if url_safe_id(entry.id)]
        ids = self._mine(entry.id for entry in entries)
        new = [agent for agent in ids if agent not in self.ids]
        gone = [agent for agent in self.ids if agent not in ids]
        if new or gone:
            log.info("agents discovered: %d (%d new, %d gone)", len(ids), len(new), len(gone))
        self.ids, self.refreshed_at = ids, now
        for entry in entries:
            if entry.name:
                self.names[entry.id] = clean_text(entry.name, _MAX_NAME_CHARS)
        return new

    def name(self, agent_id: str) -> str | None:
        """Return the agent's learned name, or None."""
        return self.names.get(agent_id)


async def refresh(directory: AgentDirectory, source: Source, now: float) -> list[str]:
    """List the agents if due; return the new ids. Raises the source's error on failure."""
    if not directory.due(now):
        return []
    entries = await source.list_agents()
    if entries is None:  # the platform cannot list: nothing to discover
        directory.refreshed_at = now
        return []
    return directory.adopt(entries, now)


async def learn_names(
    directory: AgentDirectory, source: Source, label: str, limit: int | None = None
) -> int:
    """Ask the platform for each unnamed agent's name, once, at most `limit` of them this time;
    a failure is retried next poll. Return how many were asked."""
    asked = 0
    for agent_id in directory.ids:
        if agent_id in directory.names:
            continue
        if limit is not None and asked >= limit:
            break
        asked += 1
        try:
            name = await source.agent_name(agent_id)
        except PermanentError as exc:
            log.info("agent %s of %s has no readable name: %s", agent_id, label, exc)
            name = None
        except ExporterError as exc:
            log.debug("no name for agent %s of %s yet: %s", agent_id, label, exc)
            continue
        directory.names[agent_id] = clean_text(name or agent_id, _MAX_NAME_CHARS)
    return asked


class AgentInfoCollector(Collector):
    """`agent_runs_exporter_agent_info`: one series per polled agent, read at scrape time."""

    def __init__(self, agents: Callable[[], Iterable[tuple[str, str, str, str | None]]]) -> None:
        self._agents = agents
        self._lines = GaugeLines(INFO_NAME, INFO_HELP, INFO_LABELS)

    def collect(self) -> Iterator[Metric]:
        """Yield the info gauge; an agent whose name is not known yet shows its id."""
        rows = [
            ((source, platform, agent_id, name or agent_id), 1.0)
            for source, platform, agent_id, name in self._agents()
        ]

        yield self._lines.family(rows)


@dataclass(slots=True)
class SourceRuntime:
    """A configured source with its agents, span identity and health.

    `agents` are the configured agent ids; None means they are discovered from the platform.
    """

    source: Source
    agents: list[str] | None
    info: SourceInfo
    health: SourceHealth
    max_pages: int = 1000
    discovery_interval_s: float = 600.0
    sharding: ShardingSettings = field(default_factory=ShardingSettings)
    schedule: Schedule = field(default_factory=lambda: Schedule(15.0, 600.0))
    budget: Budget = field(default_factory=Budget)
    counted: int = 0
    ended: int = 0  # runs seen ending, counted or waiting for their detail (the schedule's rate)
    directory: AgentDirectory = field(init=False)

    def __post_init__(self) -> None:
        keep = partial(self.sharding.owns, self.info.name)
        self.directory = AgentDirectory(self.agents, self.discovery_interval_s, keep=keep)
