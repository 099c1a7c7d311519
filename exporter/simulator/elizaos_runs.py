"""Draw ElizaOS agents and runs, and a run's event timeline: the simulated ElizaOS world.

Ids are UUIDs and times epoch ms. A run is `started` from its first instant (there is no queue)
and ends `completed`, `timeout` or, failed, as ElizaOS 1.7.2 records it: `completed` with the
error in its `RUN_ENDED` event's `data.error` (the truth says `error`). Its persisted `run_event`
logs are the `started` log and, once it ended, the end log; the list endpoint folds exactly those
(see `elizaos.py`). The
detail timeline (actions, model calls, evaluators) is drawn from `detail_seed`, so it is the same
on every read; `MODEL_USED` events rarely carry tokens or cost, as in the real server. Model calls
made by an action name it in `actionContext`; most runs also make one first, outside any action
(the reply decision), which has none.

Quirks of the real 1.7.2 server (`quirks.py` decides which runs have them):
- a share of runs end with a status nobody listed (`UNLISTED`: `muted`, `self`...): the list folds
  only `completed`, `timeout` and `error` ends, so it shows them `started` with no end, while the
  detail has the status and the end time;
- a share never end (`endless`: the reply was superseded by a newer message in the same room):
  `started` in the list and the detail for ever, the detail holding only the first half's events;
- a share file model calls late (`late_calls`): `MODEL_USED` events written up to 4 s after
  `RUN_ENDED`, so a detail read right at the end misses them;
- a share carry one malformed optional field in their summaries (`DRIFTS`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Any

from exporter.simulator import quirks, timeline
from exporter.simulator.records import uuid_from
from exporter.simulator.settings import SimulatorSettings
from exporter.simulator.timeline import TimedRun, Timeline

STATUSES = ("started", "completed", "timeout", "error")
FAILURES = (("error", 0.7), ("timeout", 0.3))
RECORDED = {"error": "completed"}  # the status 1.7.2 writes for an outcome, when not its own
LISTED_ENDS = ("completed", "timeout", "error")  # the end statuses the list folds; others: started
UNLISTED = ("muted", "self", "off", "replaced", "noMessageId")
DRIFTS: quirks.Drifts = {
    "durationMs": lambda ms: f"{ms}ms",
    "entityId": lambda entity: {"id": entity},
}
PROFILES: tuple[tuple[str, str], ...] = (
    ("Eliza", "A friendly community helper on Discord."),
    ("Spartan", "A DeFi trading assistant that explains its moves."),
    ("Ruby", "Answers product questions on the support Telegram."),
    ("Atlas", "Posts release notes and answers follow-ups on X."),
    ("Sage", "Summarises long threads for busy moderators."),
    ("Milo", "Greets new members and points them to the docs."),
)
_ACTIONS = ("REPLY", "REPLY", "SEND_MESSAGE", "FOLLOW_ROOM", "GENERATE_IMAGE", "NONE")
_MODELS = (("TEXT_LARGE", "openai"), ("TEXT_SMALL", "openai"), ("TEXT_LARGE", "anthropic"))
Event = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ElizaAgent:
    """One simulated ElizaOS agent (a character running in the server)."""

    id: str
    name: str
    bio: str
    created_ms: int


@dataclass(frozen=True, slots=True)
class ElizaRun(TimedRun):
    """One generated run: fixed facts; status and events are derived at read time."""

    id: str
    agent_id: str
    times: Timeline
    room_id: str
    entity_id: str
    message_id: str
    source: str
    detail_seed: int
    endless: bool = False  # superseded by a newer message in its room: never ends
    late_calls: int = 0  # model calls filed after RUN_ENDED
    drift: str | None = None  # the optional field its summaries spoil (`DRIFTS`)

    def terminal(self, now_ms: int) -> bool:
        """Say whether the run has ended at `now_ms` (an endless run never does)."""
        return not self.endless and self.times.terminal(now_ms)

    def status(self, now_ms: int) -> str:
        """Return the ElizaOS status at `now_ms`, as the server records it."""
        outcome = self.times.outcome
        return RECORDED.get(outcome, outcome) if self.terminal(now_ms) else "started"

    def true_status(self, now_ms: int) -> str:
        """Return the run's real status at `now_ms` (`error` for a failure)."""
        return self.times.outcome if self.terminal(now_ms) else "started"

    def logs(self, now_ms: int) -> list[tuple[int, str]]:
        """Return the run's `run_event` logs as (createdAt ms, status) written by `now_ms`."""
        written = [(self.times.started_ms, "started")]
        if self.terminal(now_ms):
            written.append((self.times.completed_ms, self.status(now_ms)))
        return written


class ElizaFlavor:
    """ElizaOS's vocabulary: UUID agents and runs, rooms and entities."""

    platform = "elizaos"

    def __init__(self, settings: SimulatorSettings) -> None:
        self.settings = settings

    def begin(self, master: random.Random) -> None:
        """Draw nothing world-wide."""

    def new_agent(self, master: random.Random, index: int, start: float) -> ElizaAgent:
        """Draw agent number `index`."""
        name, bio = timeline.profile(PROFILES, index)
        created = timeline.created_long_ago(master, start)
        return ElizaAgent(uuid_from(master), name, bio, created)

    def new_run(
        self, rng: random.Random, agent: ElizaAgent, at: float, previous: ElizaRun | None
    ) -> ElizaRun:
        """Draw the agent's run starting at `at`."""
        times = timeline.draw_timeline(rng, at, self.settings, FAILURES, queue_s=(0.0, 0.0))
        run = ElizaRun(
            id=uuid_from(rng),
            agent_id=agent.id,
            times=times,
            room_id=uuid_from(random.Random(f"{agent.id}/{rng.randrange(4)}")),
            entity_id=uuid_from(rng),
            message_id=uuid_from(rng),
            source=rng.choice(("discord", "telegram", "twitter", "client_chat")),
            detail_seed=rng.getrandbits(64),
        )
        return self._quirks(run)

    def _quirks(self, run: ElizaRun) -> ElizaRun:
        """Return `run` with the quirks the settings give it (see the module docstring)."""
        seed, settings = run.detail_seed, self.settings
        endless = quirks.roll(seed, quirks.NEVER_SALT, settings.never_ending_ratio) is not None
        unlisted = quirks.unlisted_status(seed, settings.unknown_status_ratio, UNLISTED)
        late = quirks.roll(seed, quirks.LATE_SALT, settings.late_event_ratio)
        drift = quirks.drift_of(seed, settings.drift_ratio, DRIFTS, lambda name: True)
        if not endless and unlisted is None and late is None and drift is None:
            return run
        times = replace(run.times, outcome=unlisted) if unlisted and not endless else run.times
        late_calls = late.randint(1, 2) if late is not None and not endless else 0
        return replace(run, times=times, endless=endless, late_calls=late_calls, drift=drift)

    def truth(self, run: ElizaRun, now_ms: int) -> dict[str, Any]:
        """Return the run's ground truth as a JSON-ready dict."""
        done = run.terminal(now_ms)
        events = events_of(run, now_ms)
        priced = [e["data"] for e in events if e["type"] == "MODEL_USED" and "cost" in e["data"]]
        return {
            "id": run.id,
            "agent_id": run.agent_id,
            "status": run.true_status(now_ms),
            "terminal": done,
            "started_at": run.times.started_ms,
            "ended_at": run.times.completed_ms if done else None,
            "duration_ms": run.times.duration_ms if done else None,
            "room_id": run.room_id,
            "counts": counts_of(events),
            "input_tokens": sum(d["inputTokens"] for d in priced) if priced else None,
            "output_tokens": sum(d["outputTokens"] for d in priced) if priced else None,
            "cost": round(sum(d["cost"] for d in priced), 6) if priced else None,
            "documented": run.true_status(now_ms) in STATUSES,
            "invalid_fields": [run.drift] if done and run.drift else [],
            "never_ends": run.endless,
            "late_model_calls": run.late_calls,
        }


def events_of(run: ElizaRun, now_ms: int) -> list[Event]:
    """Return the run's detail events written by `now_ms`, oldest first."""
    return [event for event in _timeline(run) if event["timestamp"] <= now_ms]


def counts_of(events: list[Event]) -> dict[str, int]:
    """Count actions, model calls, errors and evaluators as the server does."""
    completed = [e for e in events if e["type"] == "ACTION_COMPLETED"]
    return {
        "actions": len(completed),
        "modelCalls": sum(1 for e in events if e["type"] == "MODEL_USED"),
        "errors": sum(1 for e in completed if not e["data"]["success"]),
        "evaluators": sum(1 for e in events if e["type"] == "EVALUATOR_COMPLETED"),
    }


def _timeline(run: ElizaRun) -> list[Event]:
    rng = random.Random(run.detail_seed)
    start, end = run.times.started_ms, run.times.completed_ms
    events = [_event("RUN_STARTED", start, source=run.source, messageId=run.message_id)]
    events += _deciding(run)
    actions = rng.randint(0, 3)
    slot = max(1, (end - start) // (actions + 1))
    for index in range(actions):
        begins = start + index * slot + rng.randint(1, max(1, slot // 4))
        fails = (run.times.outcome == "error" and index == actions - 1) or rng.random() < 0.05
        events += _action(rng, run, begins, max(2, slot // 2), fails)
    if run.times.outcome == "completed" and rng.random() < 0.7:
        events.append(
            _event("EVALUATOR_COMPLETED", end - 1, evaluatorName="reflection", success=True)
        )
    error = {"timeout": "Run timed out", "error": "Action handler failed"}
    outcome = run.times.outcome
    ended = {"status": RECORDED.get(outcome, outcome), "error": error.get(outcome)}
    events.append(_event("RUN_ENDED", end, **ended, durationMs=end - start))
    events = sorted(events + _late(run), key=lambda event: event["timestamp"])
    return _superseded(run, events) if run.endless else events


def _late(run: ElizaRun) -> list[Event]:
    """Return the model calls the server files after `RUN_ENDED`, 0.3 to 4 s after it."""
    rng = random.Random(run.detail_seed ^ quirks.LATE_SALT ^ 0x2)  # not the roll's own stream
    calls, at = [], run.times.completed_ms
    for index in range(run.late_calls):
        at += rng.randint(300, 2000)
        embedding = index == 0  # the message's memory is embedded once the reply is out
        model, provider = ("TEXT_EMBEDDING", "openai") if embedding else rng.choice(_MODELS)
        took = rng.randint(1, 40) if embedding else rng.randint(150, 900)
        data = {"modelType": model, "provider": provider, "executionTime": took}
        calls.append(_event("MODEL_USED", at, **data, prompt="…", response="…"))
    return calls


def _superseded(run: ElizaRun, events: list[Event]) -> list[Event]:
    """Return what an endless run files: its first half's events, and no end."""
    cut = run.times.started_ms + run.times.duration_ms // 2
    return [e for e in events if e["timestamp"] <= cut and e["type"] != "RUN_ENDED"]


def _action(rng: random.Random, run: ElizaRun, begins: int, took: int, fails: bool) -> list[Event]:
    action_id, name = uuid_from(rng), rng.choice(_ACTIONS)
    context = {"actionName": name, "actionId": action_id}
    calls = rng.randint(1, 2)
    events = [
        _event(
            "ACTION_STARTED",
            begins,
            actionId=action_id,
            actionName=name,
            messageId=run.message_id,
            planStep=f"step {name.lower()}",
        )
    ]
    for call in range(calls):
        at = begins + (call + 1) * took // (calls + 1)
        events.append(_model_used(rng, at, context))
    result = {"success": not fails} | ({"error": "Handler raised an exception"} if fails else {})
    events.append(
        _event(
            "ACTION_COMPLETED",
            begins + took,
            actionId=action_id,
            actionName=name,
            success=not fails,
            result=result,
            promptCount=calls,
            prompts=[],
            params={},
            response="" if fails else "Sure, here you go.",
        )
    )
    return events


def _deciding(run: ElizaRun) -> list[Event]:
    """Return the model call most runs make before any action: no `actionContext`."""
    rng = random.Random(run.detail_seed ^ 0x5EED)  # its own stream: the rest stays as drawn
    if rng.random() < 0.3:
        return []
    took = max(1, run.times.duration_ms // 20)
    at = run.times.started_ms + took
    model_type, provider = rng.choice(_MODELS)
    data = {"modelType": model_type, "provider": provider, "executionTime": took}
    return [_event("MODEL_USED", at, **data, prompt="…", response="…")]


def _model_used(rng: random.Random, at: int, context: dict[str, str]) -> Event:
    model_type, provider = rng.choice(_MODELS)
    data: dict[str, Any] = {
        "modelType": model_type,
        "provider": provider,
        "executionTime": rng.randint(150, 1500),
        "actionContext": context,
        "prompt": "…",
        "response": "…",
    }
    if rng.random() < 0.1:  # a few plugins persist usage; most runtimes do not
        tokens_in, tokens_out = rng.randint(300, 4000), rng.randint(20, 600)
        cost = round(tokens_in * 2.5e-6 + tokens_out * 10e-6, 6)
        data |= {"inputTokens": tokens_in, "outputTokens": tokens_out, "cost": cost}
    return _event("MODEL_USED", at, **data)


def _event(kind: str, at: int, **data: Any) -> Event:
    return {"type": kind, "timestamp": at, "data": data}
