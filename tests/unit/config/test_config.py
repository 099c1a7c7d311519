"""Tests for exporter.config: the typed settings, durations and how they load."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from exporter import logs
from exporter.cli import main
from exporter.config.durations import format_duration, parse_duration
from exporter.config.models import (
    MetricsSettings,
    OtlpMetricsSettings,
    Settings,
    ShardingSettings,
    StateSettings,
    TracesSettings,
    WebSettings,
    load_settings,
    render_effective,
)
from exporter.config.source import SourceSettings
from exporter.errors import ConfigError, ConfigProblem

TOKEN = "cdt-live-7Qx9PzR4vW2mK8sT"  # recognisable: must never show up in output
ENV = {"CONDUIT_API_TOKEN": TOKEN}
EXAMPLE = Path(__file__).resolve().parents[3] / "config.example.yaml"

FULL = """\
listen: "127.0.0.1:9100"
poll_interval: 30s
lookback: 2h
state:
  path: /var/lib/are/state.db
traces:
  exporter: file
  endpoint: https://otel.example.com:4318/
  protocol: grpc
  file: /tmp/spans.jsonl
  capture_content: true
  max_content_chars: 128
  timeout: 5s
  detail_concurrency: 8
metrics:
  duration_buckets: [1, 10, 100]
  token_buckets: [10, 20]
  cost_buckets: [0.5]
sources:
  - name: support
    platform: conduit
    base_url: https://api.conduit.ai/
    token: ${CONDUIT_API_TOKEN}
    agents: [ag77c0dy0mgdpzmqz6tesry8w184002s, ag2]
    workspace_id: ws1
    service_name: support-bot
    page_size: 50
    request_timeout: 1m
    max_pages_per_poll: 7
"""

MINIMAL = """\
sources:
  - name: support
    platform: conduit
    base_url: http://localhost:8080
    agents: [a1]
"""


def write(tmp_path: Path, text: str) -> Path:
    """Write a config file and return its path."""
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path, environ: dict[str, str] | None = None) -> list[ConfigProblem]:
    """Load a config that must fail and return its problems."""
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ if environ is not None else ENV)
    return caught.value.problems


def by_location(problems: list[ConfigProblem]) -> dict[str, str]:
    """Index problem messages by location."""
    return {problem.location: problem.message for problem in problems}


def source(**changes: object) -> dict[str, object]:
    """Return a valid source mapping with some keys changed."""
    base: dict[str, object] = {
        "name": "support",
        "platform": "conduit",
        "base_url": "https://api.conduit.ai",
        "agents": ["a1"],
    }
    return {**base, **changes}


# --- durations ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("15s", 15.0),
        ("5m", 300.0),
        ("1h", 3600.0),
        ("1h30m", 5400.0),
        ("500ms", 0.5),
        ("2d", 172800.0),
        ("1.5s", 1.5),
        ("1s500ms", 1.5),
        (" 1h 30m ", 5400.0),
        ("15", 15.0),
        ("0.25", 0.25),
        (15, 15.0),
        (2.5, 2.5),
        (0, 0.0),
        ("0s", 0.0),
    ],
)
def test_parse_duration_accepts(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("-5s", "must not be negative"),
        ("-1", "must not be negative"),
        (-1, "must not be negative"),
        ("", "must not be empty"),
        ("   ", "must not be empty"),
        ("5x", "unknown unit 'x'"),
        ("5M", "unknown unit 'M'"),
        ("1h30", "missing unit after 30"),
        ("abc", "invalid duration 'abc'"),
        ("h", "invalid duration 'h'"),
        ("inf", "must be finite"),
        ("nan", "must be finite"),
        (float("inf"), "must be finite"),
        (True, "must be a duration"),
        (None, "must be a duration"),
        ([1], "must be a duration"),
    ],
)
def test_parse_duration_rejects(value: object, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_duration(value)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (15, "15s"),
        (3600, "1h"),
        (5400, "1h30m"),
        (0.5, "500ms"),
        (0, "0s"),
        (172800, "2d"),
        (90061.001, "1d1h1m1s1ms"),
        (0.0005, "0.0005s"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize("seconds", [-1.0, float("inf"), float("nan")])
def test_format_duration_rejects(seconds: float) -> None:
    with pytest.raises(ValueError, match="cannot format"):
        format_duration(seconds)


@given(st.integers(min_value=0, max_value=10**12))
def test_format_round_trips_whole_milliseconds(millis: int) -> None:
    assert parse_duration(format_duration(millis / 1000)) == pytest.approx(millis / 1000)


@given(st.floats(min_value=0, max_value=1e7, allow_nan=False))
def test_format_round_trips_any_seconds(seconds: float) -> None:
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds, abs=1e-6)


# --- a valid file ------------------------------------------------------------------------------


def test_full_file_loads_every_key(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, FULL), ENV)
    assert settings.listen_address == ("127.0.0.1", 9100)
    assert (settings.poll_interval, settings.lookback) == (30.0, 7200.0)
    assert settings.state.path == "/var/lib/are/state.db"
    assert settings.state.persistent
    traces = settings.traces
    assert (traces.exporter, traces.protocol, traces.file) == ("file", "grpc", "/tmp/spans.jsonl")
    assert traces.endpoint == "https://otel.example.com:4318"
    assert (traces.capture_content, traces.max_content_chars, traces.timeout) == (True, 128, 5.0)
    assert traces.detail_concurrency == 8
    assert settings.metrics.duration_buckets == [1, 10, 100]
    assert settings.metrics.cost_buckets == [0.5]
    (src,) = settings.sources
    assert (src.name, src.platform, src.base_url) == (
        "support",
        "conduit",
        "https://api.conduit.ai",
    )
    assert src.resolved_token() == TOKEN
    assert src.agents == ["ag77c0dy0mgdpzmqz6tesry8w184002s", "ag2"]
    assert (src.workspace_id, src.service_name) == ("ws1", "support-bot")
    assert (src.page_size, src.request_timeout, src.max_pages_per_poll) == (50, 60.0, 7)


def test_minimal_file_gets_defaults(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, MINIMAL), {})
    assert settings.listen == "0.0.0.0:9464"
    assert (settings.poll_interval, settings.lookback) == (15.0, 3600.0)
    assert settings.state.path == "./agent-runs-exporter.db"
    traces = settings.traces
    assert (traces.exporter, traces.endpoint, traces.protocol) == ("otlp", None, None)
    assert (traces.file, traces.capture_content, traces.max_content_chars) == (
        "./spans.jsonl",
        False,
        4096,
    )
    assert (traces.timeout, traces.detail_concurrency) == (10.0, 4)
    assert settings.metrics.duration_buckets[0] == 0.25
    assert settings.metrics.duration_buckets[-1] == 1800
    assert settings.metrics.token_buckets[-1] == 250000
    assert settings.metrics.cost_buckets[0] == 0.0005
    (src,) = settings.sources
    assert src.resolved_token() is None
    assert (src.page_size, src.request_timeout, src.max_pages_per_poll) == (100, 10.0, 1000)


def test_example_config_loads() -> None:
    environ = {
        "CONDUIT_API_TOKEN": TOKEN,
        "RUNTYPE_API_KEY": "rt_example_key_1",
        "COMPUTER_AGENTS_API_KEY": "tb_example_key_2",
    }
    settings = load_settings(EXAMPLE, environ)
    conduit, runtype, eliza, acp = settings.sources
    assert conduit.resolved_token() == TOKEN
    assert conduit.agents == ["ag77c0dy0mgdpzmqz6tesry8w184002s"]
    assert (runtype.platform, runtype.discovers_agents, runtype.discovery_interval) == (
        "runtype",
        True,
        600.0,
    )
    assert (eliza.platform, eliza.resolved_token(), eliza.discovers_agents) == (
        "elizaos",
        None,
        True,
    )
    assert (acp.platform, acp.agents) == ("acp", ["srv_7f3a9c"])


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"platform": "acp"}, "acp cannot list its agents"),
        ({"platform": "runtype", "agents": ["a"], "workspace_id": "w"}, "conduit only"),
    ],
)
def test_platform_specific_keys_are_checked(
    tmp_path: Path, source: dict[str, object], message: str
) -> None:
    entry = {"name": "s", "base_url": "http://127.0.0.1:1", **source}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"sources": [entry]}))
    with pytest.raises(ConfigError) as caught:
        load_settings(path, {})
    assert message in str(caught.value)


def test_example_config_documents_every_key() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    models = (
        Settings,
        StateSettings,
        TracesSettings,
        MetricsSettings,
        OtlpMetricsSettings,
        ShardingSettings,
        SourceSettings,
        WebSettings,
    )
    keys = [key for model in models for key in model.model_fields]
    missing = [key for key in keys if f"{key}:" not in text and key != "token_file"]
    assert missing == []
    assert "token_file" in text


def test_memory_state_is_not_persistent_and_warned(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(tmp_path, MINIMAL + "state:\n  path: ':memory:'\n")
    with caplog.at_level(logging.WARNING, logger="exporter.config.models"):
        settings = load_settings(path, {})
    assert not settings.state.persistent
    assert ":memory:" in caplog.text


def test_settings_are_immutable(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, MINIMAL), {})
    with pytest.raises(ValidationError):
        settings.poll_interval = 1.0


# --- ${VAR} expansion --------------------------------------------------------------------------


def test_expansion_uses_defaults_and_escapes(tmp_path: Path) -> None:
    text = MINIMAL.replace("http://localhost:8080", "${BASE:-http://fallback:1}") + (
        "poll_interval: ${POLL:-20s}\nlookback: ${EMPTY:-2h}\nstate:\n  path: /tmp/$$HOME/${DIR}\n"
    )
    settings = load_settings(write(tmp_path, text), {"EMPTY": "", "DIR": "d"})
    assert settings.sources[0].base_url == "http://fallback:1"
    assert (settings.poll_interval, settings.lookback) == (20.0, 7200.0)
    assert settings.state.path == "/tmp/$HOME/d"


def test_expansion_prefers_the_set_variable(tmp_path: Path) -> None:
    text = MINIMAL + "poll_interval: ${POLL:-20s}\n"
    assert load_settings(write(tmp_path, text), {"POLL": "7s"}).poll_interval == 7.0


def test_missing_variable_is_a_problem_at_its_key(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    found = by_location(problems_of(path, {}))
    message = found[f"{path}: sources[0].token"]
    assert "environment variable CONDUIT_API_TOKEN is not set" in message
    assert len(found) == 1


@pytest.mark.parametrize(
    ("value", "reason"), [("${UNCLOSED", "unclosed"), ("${1BAD}", "invalid reference")]
)
def test_malformed_reference_is_a_problem(tmp_path: Path, value: str, reason: str) -> None:
    path = write(tmp_path, MINIMAL + f"state:\n  path: '{value}'\n")
    assert reason in by_location(problems_of(path))[f"{path}: state.path"]


# --- environment overrides ---------------------------------------------------------------------


def test_env_overrides_beat_file_and_defaults(tmp_path: Path) -> None:
    environ = {
        **ENV,
        "AGENT_RUNS_EXPORTER_POLL_INTERVAL": "5s",
        "AGENT_RUNS_EXPORTER_TRACES__EXPORTER": "none",
        "AGENT_RUNS_EXPORTER_TRACES__CAPTURE_CONTENT": "false",
        "AGENT_RUNS_EXPORTER_STATE__PATH": "/data/s.db",
        "AGENT_RUNS_EXPORTER_METRICS__TOKEN_BUCKETS": "[5, 50]",
    }
    settings = load_settings(write(tmp_path, FULL), environ)
    assert settings.poll_interval == 5.0  # env beats the file's 30s
    assert settings.lookback == 7200.0  # the file's value stays
    assert (settings.traces.exporter, settings.traces.capture_content) == ("none", False)
    assert settings.traces.protocol == "grpc"  # siblings of an overridden key stay
    assert settings.state.path == "/data/s.db"
    assert settings.metrics.token_buckets == [5, 50]
    assert settings.metrics.duration_buckets == [1, 10, 100]


def test_env_override_beats_default(tmp_path: Path) -> None:
    environ = {"AGENT_RUNS_EXPORTER_LISTEN": "[::]:9000"}
    assert load_settings(write(tmp_path, MINIMAL), environ).listen_address == ("::", 9000)


def test_env_sources_json_replaces_the_list(tmp_path: Path) -> None:
    environ = {
        "AGENT_RUNS_EXPORTER_SOURCES": '[{"name": "a", "platform": "conduit", '
        '"base_url": "https://x.example", "agents": ["g1"], "token": "t-env-1234"}]'
    }
    settings = load_settings(write(tmp_path, MINIMAL), environ)
    assert [s.name for s in settings.sources] == ["a"]
    assert settings.sources[0].resolved_token() == "t-env-1234"


def test_env_section_json_merges_then_nested_keys_win(tmp_path: Path) -> None:
    environ = {
        "AGENT_RUNS_EXPORTER_TRACES": '{"exporter": "file", "timeout": "3s"}',
        "AGENT_RUNS_EXPORTER_TRACES__TIMEOUT": "4s",
    }
    traces = load_settings(write(tmp_path, FULL), {**ENV, **environ}).traces
    assert (traces.exporter, traces.timeout, traces.protocol) == ("file", 4.0, "grpc")


def test_env_values_are_validated_and_located_by_variable(tmp_path: Path) -> None:
    environ = {
        **ENV,
        "AGENT_RUNS_EXPORTER_POLL_INTERVAL": "soon",
        "AGENT_RUNS_EXPORTER_TRACES__EXPORTER": "jaeger",
        "AGENT_RUNS_EXPORTER_SOURCES": '[{"name": "a", "platform": "x"}]',
    }
    found = by_location(problems_of(write(tmp_path, FULL), environ))
    assert "invalid duration 'soon'" in found["AGENT_RUNS_EXPORTER_POLL_INTERVAL: poll_interval"]
    assert found["AGENT_RUNS_EXPORTER_TRACES__EXPORTER: traces.exporter"] == (
        "must be one of: otlp, file, none"
    )
    assert found["AGENT_RUNS_EXPORTER_SOURCES: sources[0].platform"] == (
        "must be one of: conduit, runtype, elizaos, acp"
    )
    assert found["AGENT_RUNS_EXPORTER_SOURCES: sources[0].base_url"] == "is required"


def test_env_problems_for_bad_json_and_unknown_nested_keys(tmp_path: Path) -> None:
    environ = {
        "AGENT_RUNS_EXPORTER_METRICS__COST_BUCKETS": "[0.1,",
        "AGENT_RUNS_EXPORTER_TRACES__EXPORTR": "none",
        "AGENT_RUNS_EXPORTER_POLL_INTERVAL__X": "1",
    }
    found = by_location(problems_of(write(tmp_path, MINIMAL), environ))
    assert found["AGENT_RUNS_EXPORTER_METRICS__COST_BUCKETS"].startswith("must be JSON")
    assert "did you mean 'exporter'?" in found["AGENT_RUNS_EXPORTER_TRACES__EXPORTR"]
    assert "no nested keys" in found["AGENT_RUNS_EXPORTER_POLL_INTERVAL__X"]


def test_unrelated_prefixed_env_vars_are_ignored(tmp_path: Path) -> None:
    environ = {  # what Kubernetes injects for a Service named agent-runs-exporter
        "AGENT_RUNS_EXPORTER_PORT": "tcp://10.0.0.7:9464",
        "AGENT_RUNS_EXPORTER_SERVICE_HOST": "10.0.0.7",
        "AGENT_RUNS_EXPORTER_PORT_9464_TCP_ADDR": "10.0.0.7",
    }
    assert load_settings(write(tmp_path, MINIMAL), environ).listen == "0.0.0.0:9464"


TWO_SOURCES = (
    MINIMAL
    + """\
  - name: sales
    platform: runtype
    base_url: https://api.runtype.example
"""
)


def test_env_overrides_a_nested_key_and_list_items(tmp_path: Path) -> None:
    environ = {
        "AGENT_RUNS_EXPORTER_TRACES__TIMEOUT": "3s",
        "AGENT_RUNS_EXPORTER_SOURCES__0__TOKEN": "t-env-item-0",
        "AGENT_RUNS_EXPORTER_SOURCES__0__AGENTS": '["g1", "g2"]',
        "AGENT_RUNS_EXPORTER_SOURCES__1__PAGE_SIZE": "20",
    }
    settings = load_settings(write(tmp_path, TWO_SOURCES + "traces: {exporter: file}\n"), environ)
    assert (settings.traces.timeout, settings.traces.exporter) == (3.0, "file")
    support, sales = settings.sources
    assert support.resolved_token() == "t-env-item-0"
    assert support.agents == ["g1", "g2"]
    assert support.base_url == "http://localhost:8080"  # the item's other keys stay the file's
    assert (sales.name, sales.page_size, sales.resolved_token()) == ("sales", 20, None)


def test_env_adds_the_next_list_item_and_items_apply_over_a_json_list(tmp_path: Path) -> None:
    environ = {
        "AGENT_RUNS_EXPORTER_SOURCES__1": '{"name": "b", "platform": "elizaos"}',
        "AGENT_RUNS_EXPORTER_SOURCES__1__BASE_URL": "https://eliza.example",
    }
    settings = load_settings(write(tmp_path, MINIMAL), environ)
    assert [(s.name, s.base_url) for s in settings.sources] == [
        ("support", "http://localhost:8080"),
        ("b", "https://eliza.example"),
    ]
    environ = {
        "AGENT_RUNS_EXPORTER_SOURCES": '[{"name": "a", "platform": "conduit", '
        '"base_url": "https://x.example", "agents": ["g1"]}]',
        "AGENT_RUNS_EXPORTER_SOURCES__0__NAME": "renamed",
    }
    assert [s.name for s in load_settings(write(tmp_path, MINIMAL), environ).sources] == ["renamed"]


def test_env_reads_the_given_mapping_not_the_process_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENT_RUNS_EXPORTER_POLL_INTERVAL", "1s")
    assert load_settings(write(tmp_path, MINIMAL), {}).poll_interval == 15.0
    assert load_settings(write(tmp_path, MINIMAL)).poll_interval == 1.0


def test_bad_env_values_are_reported_by_variable_name(tmp_path: Path) -> None:
    environ = {
        "AGENT_RUNS_EXPORTER_SOURCES__0__PAGE_SIZE": "lots",
        "AGENT_RUNS_EXPORTER_SOURCES__0__TOKEN": "",
        "AGENT_RUNS_EXPORTER_SHARDING__SHARD": "-1",
        "AGENT_RUNS_EXPORTER_SOURCES__0__TOKN": "x",
        "AGENT_RUNS_EXPORTER_SOURCES__X": "x",
        "AGENT_RUNS_EXPORTER_SOURCES__2__NAME": "c",
        "AGENT_RUNS_EXPORTER_SOURCES__0__AGENTS__0": "g1",
    }
    found = by_location(problems_of(write(tmp_path, MINIMAL), environ))
    assert found == {
        "AGENT_RUNS_EXPORTER_SOURCES__0__PAGE_SIZE: sources[0].page_size": "must be a whole number",
        "AGENT_RUNS_EXPORTER_SOURCES__0__TOKEN: sources[0].token": (
            "must not be empty (remove the key for an unauthenticated upstream)"
        ),
        "AGENT_RUNS_EXPORTER_SHARDING__SHARD: sharding.shard": "must be greater than or equal to 0",
        "AGENT_RUNS_EXPORTER_SOURCES__0__TOKN": "unknown key 'tokn' (did you mean 'token'?)",
        "AGENT_RUNS_EXPORTER_SOURCES__X": "sources is a list: name an item by its number, from 0",
        "AGENT_RUNS_EXPORTER_SOURCES__2__NAME": (
            "sources has 1 item(s): a new item must be number 1"
        ),
        "AGENT_RUNS_EXPORTER_SOURCES__0__AGENTS__0": (
            "sources[0].agents is a list: set it whole, as JSON"
        ),
    }


def test_file_and_env_problems_come_in_one_report(tmp_path: Path) -> None:
    text = MINIMAL + "pol_interval: 5s\nlookback: soon\ntraces:\n  exporter: jaeger\n"
    environ = {
        "AGENT_RUNS_EXPORTER_TRACES__TIMEOUT": "-1s",
        "AGENT_RUNS_EXPORTER_METRICS__COST_BUCKETS": "[0.1,",
        "AGENT_RUNS_EXPORTER_SOURCES__0__PLATFORM": "acme",
    }
    path = write(tmp_path, text)
    found = by_location(problems_of(path, environ))
    assert set(found) == {
        f"{path}: pol_interval",
        f"{path}: lookback",
        f"{path}: traces.exporter",
        "AGENT_RUNS_EXPORTER_TRACES__TIMEOUT: traces.timeout",
        "AGENT_RUNS_EXPORTER_METRICS__COST_BUCKETS",
        "AGENT_RUNS_EXPORTER_SOURCES__0__PLATFORM: sources[0].platform",
    }
    assert "must not be negative" in found["AGENT_RUNS_EXPORTER_TRACES__TIMEOUT: traces.timeout"]


def test_cli_reports_file_and_env_problems_together_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENT_RUNS_EXPORTER_SOURCES__0__PAGE_SIZE", "0")
    path = write(tmp_path, MINIMAL + "poll_interval: 5x\n")
    assert main(["check-config", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "2 configuration problem(s):" in err  # not "in <file>": one is in the environment
    assert f"  - {path}: poll_interval: invalid duration '5x'" in err
    assert "  - AGENT_RUNS_EXPORTER_SOURCES__0__PAGE_SIZE: sources[0].page_size: must be" in err
    assert "Traceback" not in err


def test_a_repeated_source_name_alone_is_one_problem_at_the_later_source(tmp_path: Path) -> None:
    path = write(tmp_path, TWO_SOURCES.replace("name: sales", "name: support"))
    assert problems_of(path) == [
        ConfigProblem(
            f"{path}: sources[1].name",
            "duplicate source name 'support': every source needs its own",
        )
    ]


# --- problems ----------------------------------------------------------------------------------


def test_unknown_keys_get_a_did_you_mean_hint(tmp_path: Path) -> None:
    text = MINIMAL + "pol_interval: 5s\nzzz: 1\ntraces:\n  exportr: none\n"
    text = text.replace("    agents: [a1]\n", "    agents: [a1]\n    tokn: abc\n")
    path = write(tmp_path, text)
    found = by_location(problems_of(path))
    assert (
        found[f"{path}: pol_interval"]
        == "unknown key 'pol_interval' (did you mean 'poll_interval'?)"
    )
    assert found[f"{path}: traces.exportr"] == "unknown key 'exportr' (did you mean 'exporter'?)"
    assert found[f"{path}: sources[0].tokn"] == "unknown key 'tokn' (did you mean 'token'?)"
    assert found[f"{path}: zzz"].startswith("unknown key 'zzz' (known keys: listen, poll_interval")


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = """\
listen: "0.0.0.0:99999"
poll_interval: 5x
lookback: 1h
traces:
  exporter: jaeger
  detail_concurrency: 33
sources:
  - name: support
    platform: conduitt
    base_url: ftp://api.conduit.ai
    token: abc-secret-token
    token_file: /nonexistent/token
    agents: []
  - name: support
    platform: conduit
    base_url: https://x.example
    token: ${NOT_SET}
    agents: [a, a]
  - name: "bad name"
    platform: conduit
    base_url: https://x.example
    agents: [b]
    page_size: 0
"""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, {})
    found = by_location(caught.value.problems)
    p = f"{path}: "
    assert found == {
        p + "listen": "port 99999 is out of range 0-65535",
        p + "poll_interval": found[p + "poll_interval"],
        p + "traces.exporter": "must be one of: otlp, file, none",
        p + "traces.detail_concurrency": "must be less than or equal to 32",
        p + "sources[0].platform": "must be one of: conduit, runtype, elizaos, acp",
        p + "sources[0].base_url": found[p + "sources[0].base_url"],
        p + "sources[0].token_file": "set either token or token_file, not both",
        p + "sources[0].agents": "must not be empty",
        p + "sources[1].name": "duplicate source name 'support': every source needs its own",
        p + "sources[1].token": found[p + "sources[1].token"],
        p + "sources[1].agents": "duplicate agent ids: a",
        p + "sources[2].name": "must be 1-63 characters of letters, digits, '_', '.' or '-'",
        p + "sources[2].page_size": "must be greater than or equal to 1",
    }
    assert "unknown unit 'x'" in found[p + "poll_interval"]
    assert "http:// or https://" in found[p + "sources[0].base_url"]
    assert "NOT_SET is not set" in found[p + "sources[1].token"]
    assert str(path) in str(caught.value)


def test_lookback_must_exceed_poll_interval(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "poll_interval: 2m\nlookback: 90s\n")
    assert by_location(problems_of(path))[f"{path}: lookback"].startswith(
        "must be longer than poll_interval (2m)"
    )


def test_zero_poll_interval_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "poll_interval: 0s\n")
    assert by_location(problems_of(path))[f"{path}: poll_interval"] == "must be greater than 0"


def test_sources_are_required(tmp_path: Path) -> None:
    path = write(tmp_path, "poll_interval: 15s\n")
    assert problems_of(path) == [ConfigProblem(f"{path}: sources", "is required")]


def test_empty_file_reports_missing_sources(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    assert problems_of(path) == [ConfigProblem(f"{path}: sources", "is required")]


def test_wrong_types_are_explained(tmp_path: Path) -> None:
    text = MINIMAL + "state: nope\ntraces:\n  capture_content: maybe\n  max_content_chars: lots\n"
    text = text.replace("agents: [a1]", "agents: [1]")
    path = write(tmp_path, text)
    found = by_location(problems_of(path))
    assert found[f"{path}: state"] == "must be a mapping of keys to values"
    assert found[f"{path}: traces.capture_content"] == "must be true or false"
    assert found[f"{path}: traces.max_content_chars"] == "must be a whole number"
    assert found[f"{path}: sources[0].agents[0]"] == "must be a string (quote it in YAML)"


def test_missing_file_is_a_problem(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    (problem,) = problems_of(path)
    assert problem.location == str(path)
    assert problem.message.startswith("cannot read the configuration file")


def test_yaml_syntax_error_has_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "listen: ok\nfoo: bar: baz\n")
    (problem,) = problems_of(path)
    assert problem.location == f"{path}:2:9"
    assert problem.message == "invalid YAML: mapping values are not allowed here"


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "- a\n- b\n")
    assert problems_of(path) == [
        ConfigProblem(str(path), "the top level must be a mapping of settings")
    ]


def test_odd_top_level_keys_and_values_are_problems_not_crashes(tmp_path: Path) -> None:
    path = write(tmp_path, "1: a\n~: b\nsources: 5\n")
    found = by_location(problems_of(path))
    assert set(found) == {f"{path}: 1", f"{path}: None", f"{path}: sources"}
    assert found[f"{path}: 1"].startswith("unknown key '1' (known keys: listen,")
    assert found[f"{path}: sources"] == "must be a list"


def test_duplicate_yaml_keys_are_problems(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "poll_interval: 5s\npoll_interval: 6s\n")
    found = by_location(problems_of(path))
    assert found[f"{path}:7"].startswith("duplicate key 'poll_interval'")


# --- listen, URLs, names, buckets ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("listen", "address"),
    [
        ("0.0.0.0:9464", ("0.0.0.0", 9464)),
        ("[::]:9464", ("::", 9464)),
        ("[::1]:80", ("::1", 80)),
        ("localhost:0", ("localhost", 0)),
        ("127.0.0.1:65535", ("127.0.0.1", 65535)),
    ],
)
def test_listen_is_split_into_host_and_port(listen: str, address: tuple[str, int]) -> None:
    assert (
        Settings.model_validate({"listen": listen, "sources": [source()]}).listen_address == address
    )


@pytest.mark.parametrize(
    "listen", ["9464", "0.0.0.0:99999", "::1:9464", ":9464", "host:", "a b:1", "[::]", "h:-1"]
)
def test_bad_listen_is_rejected(tmp_path: Path, listen: str) -> None:
    path = write(tmp_path, MINIMAL + f"listen: '{listen}'\n")
    assert f"{path}: listen" in by_location(problems_of(path))


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://api.example", "http:// or https://"),
        ("https://", "http:// or https://"),
        ("api.conduit.ai", "http:// or https://"),
        ("https://user:pw@api.example", "credentials"),
        ("https://api.example/?a=1", "query"),
        ("https://api.example:99999", "invalid port"),
    ],
)
def test_bad_base_url_is_rejected(url: str, reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        SourceSettings.model_validate(source(base_url=url))


def test_base_url_loses_trailing_slash() -> None:
    assert SourceSettings.model_validate(source(base_url="https://h.example/api/")).base_url == (
        "https://h.example/api"
    )


def test_endpoint_must_be_http_url(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "traces:\n  endpoint: localhost:4317\n")
    assert "http:// or https://" in by_location(problems_of(path))[f"{path}: traces.endpoint"]


@pytest.mark.parametrize("name", ["", "a" * 64, "has space", "ünicode", "a/b"])
def test_bad_source_name_is_rejected(name: str) -> None:
    with pytest.raises(ValidationError, match="1-63 characters"):
        SourceSettings.model_validate(source(name=name))


def test_good_source_name_is_accepted() -> None:
    name = "Support_Bot-2.eu" + "x" * 47
    assert SourceSettings.model_validate(source(name=name)).name == name


@pytest.mark.parametrize(
    ("agents", "reason"),
    [([], "at least 1"), (["a", " "], "blank"), (["a", "b", "a"], "duplicate agent ids: a")],
)
def test_bad_agents_are_rejected(agents: list[str], reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        SourceSettings.model_validate(source(agents=agents))


def test_duplicate_names_are_rejected_when_constructed_directly() -> None:
    with pytest.raises(ValidationError, match="duplicate source names: support"):
        Settings.model_validate({"sources": [source(), source()]})


@pytest.mark.parametrize(
    ("buckets", "reason"),
    [
        ([], "at least one"),
        ([1, 1], "strictly increasing"),
        ([2, 1], "strictly increasing"),
        ([0, 1], "greater than 0"),
        ([-1, 1], "greater than 0"),
        ([1, float("inf")], "finite"),
    ],
)
def test_bad_buckets_are_rejected(buckets: list[float], reason: str) -> None:
    for key in ("duration_buckets", "token_buckets", "cost_buckets"):
        with pytest.raises(ValidationError, match=reason):
            MetricsSettings.model_validate({key: buckets})


def test_bad_buckets_in_file_are_located(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "metrics:\n  cost_buckets: [0.5, .inf]\n")
    assert "finite" in by_location(problems_of(path))[f"{path}: metrics.cost_buckets"]


# --- tokens and secrets ------------------------------------------------------------------------


def test_token_file_is_read_stripped_and_reread(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(f"  {TOKEN}\n", encoding="utf-8")
    text = MINIMAL.replace("agents: [a1]", f"agents: [a1]\n    token_file: {token_file}")
    src = load_settings(write(tmp_path, text), {}).sources[0]
    assert src.resolved_token() == TOKEN
    token_file.write_text("rotated-token-value\n", encoding="utf-8")
    assert src.resolved_token() == "rotated-token-value"


@pytest.mark.parametrize(("content", "reason"), [(None, "cannot read token file"), ("\n", "empty")])
def test_unusable_token_file_is_a_problem(tmp_path: Path, content: str | None, reason: str) -> None:
    token_file = tmp_path / "token"
    if content is not None:
        token_file.write_text(content, encoding="utf-8")
    text = MINIMAL.replace("agents: [a1]", f"agents: [a1]\n    token_file: {token_file}")
    path = write(tmp_path, text)
    assert reason in by_location(problems_of(path))[f"{path}: sources[0].token_file"]


def test_empty_token_is_a_problem(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace("agents: [a1]", "agents: [a1]\n    token: ''"))
    assert "must not be empty" in by_location(problems_of(path))[f"{path}: sources[0].token"]


def test_render_effective_masks_the_token(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, FULL), ENV)
    text = render_effective(settings)
    assert TOKEN not in text
    assert "token: '****'" in text
    assert "poll_interval: 30s" in text
    assert "lookback: 2h" in text
    assert "request_timeout: 1m" in text
    assert "duration_buckets: [1.0, 10.0, 100.0]" in text
    assert TOKEN not in repr(settings)


def test_render_effective_shows_token_file_path_not_content(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN, encoding="utf-8")
    text = MINIMAL.replace("agents: [a1]", f"agents: [a1]\n    token_file: {token_file}")
    rendered = render_effective(load_settings(write(tmp_path, text), {}))
    assert f"token_file: {token_file}" in rendered
    assert TOKEN not in rendered


def test_rendered_config_loads_back_the_same(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, FULL), ENV)
    text = render_effective(settings).replace("'****'", "${CONDUIT_API_TOKEN}")
    assert load_settings(write(tmp_path, text), ENV) == settings


def test_errors_never_contain_the_token(tmp_path: Path) -> None:
    text = FULL.replace("poll_interval: 30s", "poll_interval: ${CONDUIT_API_TOKEN}")
    text = text.replace("agents: [", "token_file: /nonexistent\n    agents: [")
    environ = {
        **ENV,
        "AGENT_RUNS_EXPORTER_LISTEN": TOKEN,
        "AGENT_RUNS_EXPORTER_SOURCES__0": TOKEN,
    }
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text), environ)
    error = caught.value
    assert len(error.problems) >= 3
    assert TOKEN not in str(error)
    assert TOKEN not in repr(error.problems)
    assert error.__cause__ is None
    assert error.__context__ is None


def test_loaded_tokens_are_redacted_from_logs(tmp_path: Path) -> None:
    load_settings(write(tmp_path, FULL), ENV)
    assert logs.redact(f"Bearer {TOKEN}") == "Bearer ****"
