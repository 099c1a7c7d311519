"""Two sharded exporters as processes (`--shard 0|1 --total-shards 2`) polling one simulator,
scraped by a real Prometheus: each agent is polled by exactly one shard, and the shard alerts
stay quiet while both shards are up."""

from __future__ import annotations

import contextlib
from pathlib import Path

import httpx
import pytest

from tests.e2e.otlp_receiver import OtlpReceiver
from tests.e2e.processes import CliProcess, free_port, start_simulator, wait_until
from tests.e2e.prometheus import PrometheusServer
from tests.e2e.test_end_to_end import HTTP_TIMEOUT_S, SOURCE, TOKEN, wait_ready, write_config

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yaml"
SIMULATOR_ARGS = [
    "--seed", "31", "--agents", "6", "--rate", "1", "--duration-scale", "0.1",
    "--history", "60", "--rate-limit", "0", "--token", TOKEN,
]  # fmt: skip
TIMEOUT_S = 60.0


def test_two_shards_split_the_agents_and_the_shard_alerts_stay_quiet(
    tmp_path: Path, otlp_receiver: OtlpReceiver
) -> None:
    with contextlib.ExitStack() as stop:
        simulator, url = start_simulator(SIMULATOR_ARGS, tmp_path)
        stop.enter_context(simulator)
        with httpx.Client(base_url=url, timeout=HTTP_TIMEOUT_S) as http:
            listing = http.get("/v1/agents", headers={"Authorization": f"Bearer {TOKEN}"})
        agents = {agent["id"] for agent in listing.json()["data"]}
        targets = []
        for shard in (0, 1):
            workdir = tmp_path / f"shard{shard}"
            workdir.mkdir()
            listen = f"127.0.0.1:{free_port()}"
            config = write_config(
                workdir / "config.yaml",
                listen=listen,
                simulator_url=url,
                otlp_url=otlp_receiver.url,
                agents=sorted(agents),
            )
            args = ["run", "--config", str(config), "--shard", str(shard), "--total-shards", "2"]
            exporter = CliProcess.start(f"exporter{shard}", args, workdir, env={"E2E_TOKEN": TOKEN})
            stop.enter_context(exporter)
            with httpx.Client(base_url=f"http://{listen}", timeout=HTTP_TIMEOUT_S) as metrics:
                wait_ready(metrics, exporter)
            targets.append(listen)
        prometheus = stop.enter_context(PrometheusServer.start(tmp_path, targets, [ALERTS]))

        wait_until(
            lambda: len(prometheus.query("agent_runs_exporter_shard_ordinal")) == 2,
            timeout=TIMEOUT_S,
            what="both shards scraped",
        )
        ordinals = prometheus.query("agent_runs_exporter_shard_ordinal")
        by_instance = {s["metric"]["instance"]: s["value"][1] for s in ordinals}
        assert sorted(by_instance.values()) == ["0", "1"]
        totals = prometheus.query("agent_runs_exporter_total_shards")
        assert {s["value"][1] for s in totals} == {"2"}

        polled = prometheus.query(
            f'count by (instance, agent_id) (agent_runs_total{{source="{SOURCE}"}})'
        )
        per_instance: dict[str, set[str]] = {}
        for sample in polled:
            per_instance.setdefault(sample["metric"]["instance"], set()).add(
                sample["metric"]["agent_id"]
            )
        first, second = (per_instance.get(target, set()) for target in targets)
        assert first.isdisjoint(second)
        assert first | second == agents

        shard_alerts = ("AgentRunsShardMissing", "AgentRunsShardsDisagree")

        def quiet() -> bool:
            states = {r["name"]: r["state"] for r in prometheus.rules() if r["health"] == "ok"}
            return all(states.get(alert) == "inactive" for alert in shard_alerts)

        wait_until(quiet, timeout=TIMEOUT_S, what="the shard alerts evaluated and inactive")
