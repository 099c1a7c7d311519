"""The normalized agent run that every platform source translates into.

This module imports nothing from the package: sources produce these values, the tracker and the
sinks consume them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    """Lifecycle status of a run, normalized across platforms."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMEOUT = "timeout"
    UNKNOWN = "unknown"  # ended with a raw status nobody listed (`agent_run.raw_status` says it)

    @property
    def terminal(self) -> bool:
        """Say whether a run in this status will never change again."""
        return self not in _IN_FLIGHT

    @property
    def is_error(self) -> bool:
        """Say whether this status marks a run that ended in an error."""
        return self in _ERRORS


IN_FLIGHT_STATUSES = (Status.QUEUED, Status.RUNNING)
TERMINAL_STATUSES = (
    Status.COMPLETED,
    Status.FAILED,
    Status.CANCELLED,
    Status.TIMEOUT,
    Status.UNKNOWN,
)
# Sets read by the properties above: naming an enum member (Status.QUEUED) costs a Python-level
# descriptor call, and these are asked once per run on every page.
_IN_FLIGHT = frozenset(IN_FLIGHT_STATUSES)
_ERRORS = frozenset((Status.FAILED, Status.TIMEOUT))


@dataclass(frozen=True, slots=True)
class ToolStep:
    """One tool call of a run, in the order the platform reports it.

    `started_at`/`ended_at` are epoch seconds when the platform reports real times, else None.
    `input`/`output` are JSON-compatible values as the platform sent them. `kind` is "tool" for a
    tool call and "model" for a model call (`name` is then the model; tokens when reported).
    `call_id` is the model's own id for the call, never a platform's row id (`record_id` holds
    that). `parent_call_id` names the step of the same run this one ran inside (an ElizaOS model
    call made by an action); None: it ran directly under the run.
    """

    name: str
    input: Any = None
    output: Any = None
    started_at: float | None = None
    ended_at: float | None = None
    call_id: str | None = None
    error: str | None = None
    kind: str = "tool"
    provider: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    parent_call_id: str | None = None
    record_id: str | None = None

    @property
    def failed(self) -> bool:
        """Say whether the step is known to have failed."""
        return self.error is not None


@dataclass(slots=True)
class Run:
    """One agent run as the exporter understands it, whatever platform it came from.

    Treat it as a value: derive a changed copy with `dataclasses.replace`, never assign. It is
    not declared frozen because one is built for every run on every page, and a frozen
    dataclass costs three times the instructions to build (bench/ingest).

    Times are epoch seconds (float, UTC). Fields a platform does not give are None, never zero.
    `created_at` orders runs and bounds paging; `started_at`, when the platform gives it apart,
    is when work began. `total_tokens` is for platforms that report no input/output split.
    `parent_run_id` names the run that started this one (a sub-agent execution), `parent_call_id`
    the parent's tool call that started it, when known, and `root_run_id` the top of that lineage.
    `tool_steps` is None until the run's detail has been fetched (or when the platform has none).
    `invalid_fields` names the optional fields that were malformed and dropped alone.
    `created_estimated` says the platform gave no time to order the run by: `created_at` is then
    a stand-in never earlier than the real creation (the run's end, or when the exporter first
    saw it), which keeps the run in the window but never moves a high-water mark.
    """

    id: str
    agent_id: str
    status: Status
    raw_status: str
    created_at: float
    completed_at: float | None = None
    duration_s: float | None = None
    disposition: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    cost_usd: float | None = None
    trace_id: str | None = None
    conversation_id: str | None = None
    error: str | None = None
    agent_name: str | None = None
    started_at: float | None = None
    parent_run_id: str | None = None
    parent_call_id: str | None = None
    root_run_id: str | None = None
    tool_steps: tuple[ToolStep, ...] | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    invalid_fields: tuple[str, ...] = ()
    created_estimated: bool = False

    @property
    def start_time(self) -> float:
        """Return when the run began: its reported start, else its creation."""
        return self.created_at if self.started_at is None else self.started_at

    @property
    def end_time(self) -> float | None:
        """Return when the run ended: its completion time, else start plus duration."""
        if self.completed_at is not None:
            return self.completed_at
        if self.duration_s is not None:
            return self.start_time + self.duration_s
        return None

    @property
    def effective_duration_s(self) -> float | None:
        """Return the run's duration: the reported one, else derived from its timestamps."""
        if self.duration_s is not None:
            return self.duration_s
        if self.completed_at is not None:
            return max(0.0, self.completed_at - self.start_time)
        return None


@dataclass(frozen=True)
class SourceInfo:
    """Who a run came from: the source's label name, platform and configured service name.

    `capture_content` overrides the sink's setting for this source's runs when not None.
    """

    name: str
    platform: str
    service_name: str | None = None
    capture_content: bool | None = None
