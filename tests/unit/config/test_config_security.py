"""Settings for the security features: web section, upstream TLS, size caps, content capture."""

from __future__ import annotations

from pathlib import Path

import pytest

from exporter.config.models import load_settings, render_effective
from exporter.config.source import MAX_RESPONSE_BYTES
from exporter.sinks.traces.redaction import DEFAULT_KEYS
from tests.unit.certs import make_pki
from tests.unit.config.test_config import MINIMAL, by_location, problems_of, write


def test_defaults_are_locked_down(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, MINIMAL), {})
    source = settings.sources[0]
    assert settings.web.config_file is None
    assert settings.web.health_without_auth is False
    assert settings.traces.capture_content is False
    assert settings.traces.redact_keys == list(DEFAULT_KEYS)
    assert (source.ca_file, source.insecure_skip_verify, source.capture_content) == (
        None,
        False,
        None,
    )
    assert source.max_response_bytes == MAX_RESPONSE_BYTES == 16 * 1024 * 1024


def test_security_settings_are_read_and_rendered(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    text = MINIMAL.replace(
        "    agents: [a1]\n",
        f"    agents: [a1]\n    ca_file: {pki.ca}\n    max_response_bytes: 2048\n"
        "    capture_content: true\n",
    )
    text += "web:\n  config_file: web.yml\n  health_without_auth: true\n"
    text += "traces:\n  redact_keys: [booking ref]\n  max_tool_steps: 50\n"
    settings = load_settings(write(tmp_path, text), {})
    source = settings.sources[0]
    assert (source.ca_file, source.max_response_bytes) == (str(pki.ca), 2048)
    assert source.capture_content is True
    assert settings.web.config_file == "web.yml"
    assert settings.traces.redact_keys == ["booking ref"]
    rendered = render_effective(settings)
    assert "health_without_auth: true" in rendered
    assert "max_tool_steps: 50" in rendered


def test_web_settings_from_the_environment(tmp_path: Path) -> None:
    environ = {
        "AGENT_RUNS_EXPORTER_WEB__CONFIG_FILE": "/etc/are/web.yml",
        "AGENT_RUNS_EXPORTER_WEB__HEALTH_WITHOUT_AUTH": "true",
    }
    settings = load_settings(write(tmp_path, MINIMAL), environ)
    assert settings.web.config_file == "/etc/are/web.yml"
    assert settings.web.health_without_auth is True


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("    ca_file: /nonexistent/ca.pem\n", "cannot read CA file /nonexistent/ca.pem"),
        ("    ca_file: {not_pem}\n", "holds no PEM certificate"),
        (
            "    ca_file: {ca}\n    insecure_skip_verify: true\n",
            "set either ca_file or insecure_skip_verify, not both",
        ),
        ("    max_response_bytes: 100\n", "greater than or equal to 1024"),
        ("    base_url: file:///etc/passwd\n", "must be an http:// or https:// URL"),
    ],
)
def test_bad_upstream_settings_are_config_errors(tmp_path: Path, extra: str, message: str) -> None:
    pki = make_pki(tmp_path)
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello\n", encoding="utf-8")
    text = MINIMAL.replace("    base_url: http://localhost:8080\n", "")
    text += "    base_url: http://localhost:8080\n" if "base_url" not in extra else ""
    text += extra.format(ca=pki.ca, not_pem=not_pem)
    found = by_location(problems_of(write(tmp_path, text)))
    assert len(found) == 1, found
    assert message in next(iter(found.values()))


def test_redact_keys_must_be_a_list_of_strings(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "traces: {redact_keys: password}\n")
    assert by_location(problems_of(path)) == {f"{path}: traces.redact_keys": "must be a list"}
