"""200 agents, two shards, one Conduit workspace limit: the simulator's own quota (120 requests a
clock minute) is on, both exporters (`--shard 0|1 --total-shards 2`) have
`max_requests_per_minute: 120`, so each spends at most 60. The simulator never answers 429 and,
once every agent has been polled, `agent_runs_total` summed over both shards equals the
simulator's terminal runs, per agent and status: every run counted once.

The world is fixed at the start (arrivals paused: the runs of the last minute, the last of them
finishing within seconds), so the test ends when both shards have seen every agent. That takes
at least 200 polls at under 120 a minute, about two minutes: the wall time is the budget's.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.e2e.processes import CliProcess, free_port, wait_until
from tests.e2e.test_end_to_end import (
    HTTP_TIMEOUT_S,
    SOURCE,
    TOKEN,
    AgentStatus,
    Simulator,
    all_finished,
    exported_counts,
    scrape,
    truth_counts,
    wait_ready,
)

pytestmark = pytest.mark.e2e

AGENTS = 200
SIMULATOR_ARGS = [
    "--seed", "43", "--agents", str(AGENTS), "--rate", "0.005", "--duration-scale", "0.1",
    "--history", "60", "--rate-limit", "120", "--token", TOKEN,
]  # fmt: skip
BUDGET = 120  # the whole deployment's: 60 a minute for each of the two shards
POLL_INTERVAL_S = 2.0
COUNTED_TIMEOUT_S = 240.0  # 200 polls at 2 x 54 a minute is about 111 s


def write_config(path: Path, listen: str, simulator_url: str, agents: list[str]) -> Path:
    """Write one shard's config: the agents listed, the workspace budget, no traces."""
    config = {
        "listen": listen,
        "poll_interval": f"{POLL_INTERVAL_S:g}s",
        "lookback": "1h",
        "state": {"path": str(path.parent / "state.db")},
        "traces": {"exporter": "none"},
        "sources": [
            {
                "name": SOURCE,
                "platform": "conduit",
                "base_url": simulator_url,
                "token": "${E2E_TOKEN}",
                "agents": agents,
                "max_requests_per_minute": BUDGET,
            }
        ],
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def summed(clients: list[httpx.Client]) -> Counter[AgentStatus]:
    """Return `agent_runs_total` per (agent, status), summed over the shards."""
    total: Counter[AgentStatus] = Counter()
    for client in clients:
        total += exported_counts(scrape(client))
    return total


def throttled(exposition: str) -> bool:
    """Say whether an exporter saw any 429 from upstream."""
    return any(
        line.startswith("agent_runs_exporter_api_requests_total{") and 'code="429"' in line
        for line in exposition.splitlines()
    )


def test_two_shards_share_one_workspace_limit_and_count_every_run_once(tmp_path: Path) -> None:
    with contextlib.ExitStack() as stop:
        simulator = stop.enter_context(Simulator.running(SIMULATOR_ARGS, tmp_path))
        simulator.pause()  # the world is fixed: the history's runs, all finishing soon
        agents = sorted(agent["id"] for agent in simulator.truth()["agents"])  # no quota
        assert len(agents) == AGENTS
        clients = []
        for shard in (0, 1):
            workdir = tmp_path / f"shard{shard}"
            workdir.mkdir()
            listen = f"127.0.0.1:{free_port()}"
            config = write_config(workdir / "config.yaml", listen, simulator.url, agents)
            args = ["run", "--config", str(config), "--shard", str(shard), "--total-shards", "2"]
            exporter = CliProcess.start(f"exporter{shard}", args, workdir, env={"E2E_TOKEN": TOKEN})
            stop.enter_context(exporter)
            client = stop.enter_context(
                httpx.Client(base_url=f"http://{listen}", timeout=HTTP_TIMEOUT_S)
            )
            wait_ready(client, exporter)
            clients.append(client)
        truth: dict[str, Any] = wait_until(
            lambda: all_finished(simulator), timeout=30.0, what="every run finished"
        )
        expected = truth_counts(truth)
        assert sum(expected.values()) > 20  # enough runs to mean something

        wait_until(
            lambda: summed(clients) == expected,
            timeout=COUNTED_TIMEOUT_S,
            interval=2.0,
            what="every run counted by one shard",
        )
        assert summed(clients) == expected  # and nothing more
        assert 429 not in simulator.answered_statuses()
        assert not any(throttled(scrape(client)) for client in clients)
        per_minute = simulator.http.get("/_simulator/requests").json()["per_minute"]
        assert 0 < max(per_minute.values()) <= BUDGET
