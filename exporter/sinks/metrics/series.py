"""The run metrics' contract, as one table (names, types, help, labels, buckets), and the
cumulative values its series hold.

The names and labels are a contract: dashboards, alerts and users' queries depend on them.
Every label value an upstream chooses (disposition, tool) is cleaned by `label_value` and capped
per agent by a `LabelCap`, past which it reads `other`: a hostile or buggy upstream cannot grow
the series count. `agent_id` is the agent polled, never a value from a run item.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

AGENT_LABELS = ("source", "platform", "agent_id")
MAX_TOOLS_PER_AGENT = 200
MAX_DISPOSITIONS_PER_AGENT = 50
_LABEL_VALUE = re.compile(r"[A-Za-z0-9_.:/-]{1,64}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One metric of the contract: name, type, help and labels (and bucket set)."""

    name: str
    kind: Literal["counter", "histogram"]
    help: str
    labels: tuple[str, ...]
    buckets: str | None = None

    @property
    def family(self) -> str:
        """Return the family name prometheus_client gives it (a counter's without `_total`)."""
        return self.name.removesuffix("_total") if self.kind == "counter" else self.name


RUNS = MetricSpec(
    "agent_runs_total",
    "counter",
    "Agent runs that reached a terminal state, counted once each.",
    (*AGENT_LABELS, "status", "disposition"),
)
DURATION = MetricSpec(
    "agent_run_duration_seconds",
    "histogram",
    "End-to-end duration of terminal agent runs.",
    (*AGENT_LABELS, "status"),
    "duration",
)
TOKENS = MetricSpec(
    "agent_run_tokens",
    "histogram",
    "Tokens used per terminal agent run, by type (input, output; total where the platform "
    "reports no split).",
    (*AGENT_LABELS, "type"),
    "tokens",
)
COST = MetricSpec(
    "agent_run_cost_usd",
    "histogram",
    "Provider cost per terminal agent run in USD; the _sum is the spend.",
    AGENT_LABELS,
    "cost",
)
TOOL_CALLS = MetricSpec(
    "agent_tool_calls_total",
    "counter",
    "Tool calls made by terminal agent runs (from the run's detail), by tool and result.",
    (*AGENT_LABELS, "tool", "result"),
)
RUN_METRICS = (RUNS, DURATION, TOKENS, COST, TOOL_CALLS)

Labels = tuple[str, ...]
SeriesKey = tuple[str, Labels]


@dataclass(slots=True)
class Series:
    """The cumulative value of one series: a counter value or a histogram's buckets."""

    value: float = 0.0
    counts: list[float] = field(default_factory=list)
    exemplars: dict[int, tuple[str, float, float]] = field(default_factory=dict)

    def copy(self) -> Series:
        """Return an independent copy."""
        return Series(self.value, list(self.counts), dict(self.exemplars))

    def encode(self) -> str:
        """Serialize for the state store."""
        return json.dumps({"v": self.value, "c": self.counts, "e": self.exemplars})

    @classmethod
    def decode(cls, text: str) -> Series:
        """Rebuild a series serialized by `encode`."""
        data = json.loads(text)
        exemplars = {int(k): (str(t), float(v), float(ts)) for k, (t, v, ts) in data["e"].items()}
        return cls(float(data["v"]), [float(c) for c in data["c"]], exemplars)


def encode_key(name: str, labels: Labels) -> str:
    """Serialize a series key (metric name, label values) for the state store."""
    return json.dumps([name, labels])


def decode_key(text: str) -> tuple[str, Labels]:
    """Return the (metric name, label values) a stored series key holds, or raise ValueError."""
    name, labels = json.loads(text)
    if not isinstance(name, str) or not all(isinstance(value, str) for value in labels):
        raise ValueError("a series key is [name, [label values]]")
    return name, tuple(labels)


@dataclass(slots=True, eq=False)  # kept in a set by identity
class RunKind:
    """The series every run of one (source, agent, status, disposition) updates, found once.

    The histograms (`observed`: duration, input, output, total, cost) are looked up the first
    time a run of the kind reports the value.
    """

    agent: Labels
    status: str
    runs: Series
    keys: list[SeriesKey]
    observed: dict[str, Series] = field(default_factory=dict)


def add_value(series: Series, bounds: Sequence[float], value: float) -> int:
    """Observe `value` in a histogram series; return the index of its bucket."""
    index = bisect.bisect_left(bounds, value)
    series.counts[index] += 1
    series.value += value
    return index


def label_value(value: str | None, *, absent: str = "none") -> str:
    """Return an upstream string as a safe, bounded label value."""
    if value is None or value == "":
        return absent
    return value if _LABEL_VALUE.fullmatch(value) else "other"


def clean_text(value: str, max_chars: int) -> str:
    """Return upstream free text without control characters (NUL included), cut to `max_chars`."""
    return _CONTROL.sub("", value)[:max_chars]


class LabelCap:
    """The distinct values one upstream-chosen label takes per agent: at most `limit`, then `other`.

    A value seen before keeps its series; a new one past the limit is counted as `other`.
    """

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._seen: dict[tuple[str, str], set[str]] = {}

    def value(self, source: str, agent_id: str, text: str | None) -> str:
        """Return the label value for `text` (cleaned by `label_value`, within the cap)."""
        value = label_value(text)
        if value in ("none", "other"):
            return value
        seen = self._seen.setdefault((source, agent_id), set())
        if value in seen or len(seen) < self._limit:
            seen.add(value)
            return value
        return "other"
