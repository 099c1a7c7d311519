"""The command line: help, check-config reports, exit codes, no tracebacks."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from exporter.cli import build_parser, main, simulator_settings
from exporter.config.models import load_settings
from exporter.demo import demo_config
from exporter.simulator.platforms import simulate_all
from exporter.simulator.settings import SimulatorSettings

SECRET = "tok-4f1b9c-very-secret"


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return str(path)


GOOD = """
poll_interval: 30s
state: {path: ":memory:"}
traces: {exporter: none}
sources:
  - name: support
    platform: conduit
    base_url: https://api.conduit.ai
    token: ${TEST_CONDUIT_TOKEN}
    agents: [ag77c0dy0mgdpzmqz6tesry8w184002s]
"""


@pytest.mark.parametrize("command", ["run", "check-config", "simulate", "demo"])
def test_every_subcommand_has_help(command: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "exporter", command, "--help"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0
    assert "--log-format" in result.stdout
    assert "--log-level" in result.stdout


def test_check_config_prints_effective_config_with_the_token_masked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_CONDUIT_TOKEN", SECRET)
    assert main(["check-config", "--config", write(tmp_path, GOOD)]) == 0
    out = capsys.readouterr()
    assert "poll_interval: 30s" in out.out
    assert "****" in out.out
    assert SECRET not in out.out + out.err


FLEET = """
poll_interval: 15s
state: {path: ":memory:"}
traces: {exporter: none}
sharding: {total_shards: 2}
sources:
  - name: fleet
    platform: conduit
    base_url: https://api.conduit.ai
    max_requests_per_minute: 200
    max_poll_interval: 10m
    agents: [%s]
"""


def test_check_config_says_what_the_budget_allows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    agents = ", ".join(f"ag{i}" for i in range(2000))
    assert main(["check-config", "--config", write(tmp_path, FLEET % agents)]) == 0
    report = [line for line in capsys.readouterr().out.splitlines() if "source fleet" in line]
    # This shard: about 1,000 agents, 100 of the 200 a minute (100 every 61 s, 95% planned).
    assert len(report) == 1
    assert "need 4" in report[0]  # ~1,000 agents x 4 a minute (the count varies by hashing)
    assert "leaves 93 for list polls" in report[0]
    assert "longest interval" in report[0]
    longest = int(report[0].split("longest interval ")[1].split("s")[0])
    assert 600 < longest < 720  # ~1,000 / 93.4 a minute: max_poll_interval does not fit


def test_bad_config_gets_one_report_of_every_problem_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TEST_CONDUIT_TOKEN", raising=False)
    text = GOOD.replace("poll_interval: 30s", "pol_interval: 30s\nlookback: forever").replace(
        "platform: conduit", "platform: condiut"
    )
    assert main(["check-config", "--config", write(tmp_path, text)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    needles = ("pol_interval", "did you mean 'poll_interval'", "lookback", "sources[0].platform")
    for needle in (*needles, "TEST_CONDUIT_TOKEN is not set"):
        assert needle in err, needle
    assert "config.yaml" in err


def test_missing_config_file_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "--config", str(tmp_path / "nope.yaml")]) == 2
    err = capsys.readouterr().err
    assert "nope.yaml" in err
    assert "Traceback" not in err


def test_run_on_a_port_in_use_exits_1_with_a_clear_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TEST_CONDUIT_TOKEN", SECRET)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config = write(tmp_path, f'listen: "127.0.0.1:{port}"\n' + GOOD)
        assert main(["run", "--config", config]) == 1
    err = capsys.readouterr().err
    assert f"127.0.0.1:{port}" in err
    assert "Traceback" not in err


def test_bad_simulator_options_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--agents", "0"]) == 2
    assert "agents" in capsys.readouterr().err


def test_simulator_quirks_are_flags_of_simulate_and_demo(
    capsys: pytest.CaptureFixture[str],
) -> None:
    flags = ["--unknown-status-ratio", "0.1", "--drift-ratio", "0.2"]
    flags += ["--never-ending-ratio", "0.3", "--late-event-ratio", "0.4"]
    for command in ("simulate", "demo"):
        settings = simulator_settings(build_parser().parse_args([command, *flags]))
        assert (
            settings.unknown_status_ratio,
            settings.drift_ratio,
            settings.never_ending_ratio,
            settings.late_event_ratio,
        ) == (0.1, 0.2, 0.3, 0.4)
    plain = simulator_settings(build_parser().parse_args(["demo"]))
    assert (plain.unknown_status_ratio, plain.drift_ratio) == (0.0, 0.0)  # the demo stays clean
    assert main(["simulate", "--drift-ratio", "2"]) == 2
    assert "drift_ratio must be in [0, 1]" in capsys.readouterr().err


def test_check_config_also_checks_the_otel_variables(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_CONDUIT_TOKEN", SECRET)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
    text = GOOD.replace("traces: {exporter: none}", "traces: {exporter: otlp}")
    assert main(["check-config", "--config", write(tmp_path, text)]) == 2
    assert "OTEL_EXPORTER_OTLP_PROTOCOL: unsupported OTLP protocol" in capsys.readouterr().err


def test_simulator_on_a_port_in_use_exits_1_without_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["simulate", "--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert "cannot start" in err
    assert "Traceback" not in err


def test_an_unknown_simulator_platform_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["simulate", "--platform", "bogus"])
    assert exited.value.code == 2
    assert "--platform" in capsys.readouterr().err


def test_simulate_all_prints_each_platform_base_url() -> None:
    command = [sys.executable, "-m", "exporter", "simulate", "--platform", "all", "--port", "0"]
    urls = []
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    ) as process:
        assert process.stdout is not None
        try:
            while len(urls) < 4:
                line = process.stdout.readline()
                assert line, "the simulator stopped before printing four base URLs"
                if " listening on " in line:
                    urls.append(line.split(" listening on ")[1].strip())
        finally:
            process.terminate()
            process.wait(timeout=30)
    assert [url.rsplit("/", 1)[1] for url in urls] == ["conduit", "runtype", "elizaos", "acp"]


def test_demo_config_polls_all_four_platforms(tmp_path: Path) -> None:
    app, parts = simulate_all(SimulatorSettings(token="demo-token"))
    running = SimpleNamespace(url="http://127.0.0.1:8080")
    config = demo_config(running, parts, tmp_path, "127.0.0.1:9464")  # type: ignore[arg-type]
    sources = {source["name"]: source for source in config["sources"]}  # type: ignore[attr-defined]
    assert set(sources) == {"conduit", "runtype", "elizaos", "acp"}
    for name, source in sources.items():
        assert source["platform"] == name
        assert source["base_url"] == f"http://127.0.0.1:8080/{name}"
        assert ("agents" in source) == (name in ("conduit", "acp"))
    assert sources["acp"]["agents"] == [
        server.id for server in app.state.platforms["acp"].world.agents
    ]
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    settings = load_settings(path)
    assert [source.platform for source in settings.sources] == [
        "conduit",
        "runtype",
        "elizaos",
        "acp",
    ]


def test_importing_the_cli_loads_neither_the_simulator_nor_protobuf() -> None:
    # `run` pays only for what it uses: the simulator (simulate, demo) and protobuf's JSON mapping
    # (traces.exporter: file) are imported when chosen. A fresh interpreter sees what is loaded.
    code = (
        "import sys, exporter.cli; print(sorted(m for m in sys.modules if m.startswith("
        "('exporter.simulator', 'exporter.demo', 'exporter.sinks.traces.spanfile',"
        " 'google.protobuf'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
