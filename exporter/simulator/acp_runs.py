"""Draw ACP (Computer Agents) servers and runtime runs, and a run's log-line events.

A server (`srv_...`, a "resource" with one connected agent runtime `art_...`) plays the agent; its
runs go `queued -> running -> completed|failed|cancelled` and carry no tokens, cost or duration.
Events are log lines drawn from the run's `detail_seed`, shown once their time has come. A share
of runs carry one malformed optional field (`DRIFTS`, see `quirks.py`; `createdAt` null among
them: every field is optional in the API, and the list still shows the newest runs first, by their
real creation); the documented statuses are a closed set, so no run ends outside it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Any

from exporter.simulator import quirks, timeline
from exporter.simulator.records import alnum_id, iso_ms
from exporter.simulator.settings import SimulatorSettings
from exporter.simulator.timeline import TimedRun, Timeline

STATUSES = ("queued", "running", "completed", "failed", "cancelled")
FAILURES = (("failed", 0.7), ("cancelled", 0.3))
PROFILES = ("docs-assistant", "invoice-processor", "nightly-report", "site-builder", "qa-bot")
_TASKS = (
    ("Refresh the pricing page", "Update the pricing table from pricing.csv and redeploy."),
    ("Summarise yesterday's logs", "Read the error logs from yesterday and list the top issues."),
    ("Fix failing test", "Run the test suite, find the failing test and fix it."),
    ("Draft release notes", "Write release notes for the commits since the last tag."),
)
_ERRORS = ("Sandbox exceeded its memory limit", "Model request failed: 529 overloaded")
DRIFTS: quirks.Drifts = {
    "createdAt": lambda created: None,  # every field is optional: listed without its creation
    "threadId": lambda thread: {"id": thread},
    "sessionProtocol": lambda protocol: {"name": protocol, "version": 1},
}


@dataclass(frozen=True, slots=True)
class AcpServer:
    """One simulated ACP resource with its connected agent runtime."""

    id: str
    name: str
    runtime_id: str


@dataclass(frozen=True, slots=True)
class AcpRun(TimedRun):
    """One generated runtime run: fixed facts; status derived at read time."""

    id: str
    agent_id: str  # the server id
    thread_id: str
    times: Timeline
    mode: str
    detail_seed: int
    drift: str | None = None  # the optional field its payloads spoil (`DRIFTS`)

    def task(self) -> tuple[str, str]:
        """Return the run's (title, input)."""
        return random.Random(self.detail_seed).choice(_TASKS)


class AcpFlavor:
    """ACP's vocabulary: `srv_` servers, `run_` runs and `thr_` threads."""

    platform = "acp"

    def __init__(self, settings: SimulatorSettings) -> None:
        self.settings = settings

    def begin(self, master: random.Random) -> None:
        """Draw nothing world-wide."""

    def new_agent(self, master: random.Random, index: int, start: float) -> AcpServer:
        """Draw server number `index`."""
        name = PROFILES[index % len(PROFILES)]
        if index >= len(PROFILES):
            name = f"{name}-{index // len(PROFILES) + 1}"
        return AcpServer(alnum_id(master, "srv_"), name, alnum_id(master, "art_"))

    def new_run(
        self, rng: random.Random, agent: AcpServer, at: float, previous: AcpRun | None
    ) -> AcpRun:
        """Draw the server's run arriving at `at`."""
        times = timeline.draw_timeline(rng, at, self.settings, FAILURES)
        thread = alnum_id(rng, "thr_")
        mode = "sync" if rng.random() < 0.3 else "async"
        run = AcpRun(alnum_id(rng, "run_"), agent.id, thread, times, mode, rng.getrandbits(64))
        ratio = self.settings.drift_ratio
        drift = quirks.drift_of(run.detail_seed, ratio, DRIFTS, lambda name: True)
        return replace(run, drift=drift) if drift else run

    def truth(self, run: AcpRun, now_ms: int) -> dict[str, Any]:
        """Return the run's ground truth as a JSON-ready dict."""
        done = run.terminal(now_ms)
        return {
            "id": run.id,
            "agent_id": run.agent_id,
            "status": run.status(now_ms),
            "terminal": done,
            "created_at": iso_ms(run.times.created_ms),
            "completed_at": iso_ms(run.times.completed_ms) if done else None,
            "duration_ms": run.times.completed_ms - run.times.created_ms if done else None,
            "documented": True,
            "invalid_fields": [run.drift] if done and run.drift else [],
        }


def run_payload(run: AcpRun, now_ms: int) -> dict[str, Any]:
    """Render a run like one item of the runtime runs list."""
    status, done = run.status(now_ms), run.terminal(now_ms)
    title, prompt = run.task()
    rng = random.Random(run.detail_seed ^ 0xACB)
    payload = {
        "id": run.id,
        "serverId": run.agent_id,
        "threadId": run.thread_id,
        "title": title,
        "input": prompt,
        "output": "Done: changes applied and verified." if status == "completed" else None,
        "error": rng.choice(_ERRORS) if status == "failed" else None,
        "mode": run.mode,
        "status": status,
        "metadata": {"source": "api"},
        "createdAt": iso_ms(run.times.created_ms),
        "completedAt": iso_ms(run.times.completed_ms) if done else None,
        "sessionProtocol": "acp",
        "threadBacked": True,
        "threadStatus": "idle" if done else "active",
        "threadTitle": title,
    }
    return quirks.spoil(payload, run.drift, DRIFTS)


def thread_payload(run: AcpRun, now_ms: int) -> dict[str, Any]:
    """Render the run's thread."""
    title, _ = run.task()
    status = "idle" if run.terminal(now_ms) else "active"
    return {
        "id": run.thread_id,
        "title": title,
        "status": status,
        "createdAt": iso_ms(run.times.created_ms),
    }


def events_payload(run: AcpRun, now_ms: int) -> list[dict[str, Any]]:
    """Render the run's log lines written by `now_ms`, oldest first."""
    times, (_, prompt) = run.times, run.task()
    rng = random.Random(run.detail_seed ^ 0xE7)
    lines = [
        (times.created_ms, "user", prompt, "message", "info"),
        (times.started_ms, "system", "Run started", "status", "info"),
    ]
    steps = rng.randint(1, 4)
    for step in range(steps):
        at = times.started_ms + (step + 1) * times.duration_ms // (steps + 2)
        lines.append((at, "assistant", f"Running tool step {step + 1}", "tool", "info"))
    outcome = times.outcome
    last = {
        "completed": ("assistant", "Done: changes applied and verified.", "message", "info"),
        "failed": ("system", "Run failed", "status", "error"),
        "cancelled": ("system", "Run cancelled", "status", "warn"),
    }[outcome]
    lines.append((times.completed_ms, *last))
    return [
        {
            "id": f"evt_{run.id[4:14]}{index:03d}",
            "role": role,
            "content": content,
            "logType": kind,
            "logLevel": level,
            "createdAt": iso_ms(at),
        }
        for index, (at, role, content, kind, level) in enumerate(lines)
        if at <= now_ms
    ]
