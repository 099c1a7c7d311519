"""The web config file: the exporter-toolkit format, validated at once, reported without secrets."""

from __future__ import annotations

import os
import ssl
from pathlib import Path

import bcrypt
import pytest

from exporter.cli import main
from exporter.errors import ConfigError
from exporter.web.config import WebConfig, load_web_config
from tests.unit.certs import Pki, make_pki
from tests.unit.test_cli import GOOD

HASH = bcrypt.hashpw(b"s3cret-pass", bcrypt.gensalt(rounds=4)).decode()


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path)


def write(directory: Path, text: str, name: str = "web.yml") -> str:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def problems(path: str) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        load_web_config(path)
    return [str(problem) for problem in raised.value.problems]


def test_no_file_means_plain_http_without_auth() -> None:
    web = load_web_config(None)
    assert web == WebConfig()
    assert web.ssl_context() is None
    assert web.describe() == "plain HTTP, no basic auth"


def test_an_empty_file_is_valid(tmp_path: Path) -> None:
    assert load_web_config(write(tmp_path, "")).tls is None


def test_a_full_config_with_paths_relative_to_the_file(pki: Pki) -> None:
    text = f"""
tls_server_config:
  cert_file: {pki.server_cert.name}
  key_file: {pki.server_key.name}
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: {pki.client_ca.name}
  min_version: TLS13
basic_auth_users:
  prometheus: {HASH}
  "alice": "{HASH.replace("$2b$", "$2y$")}"
"""
    web = load_web_config(write(pki.ca.parent, text))
    assert web.tls is not None
    assert web.tls.cert_file == pki.server_cert
    assert set(web.users) == {"prometheus", "alice"}
    context = web.ssl_context()
    assert context is not None
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.minimum_version == ssl.TLSVersion.TLSv1_3
    assert web.describe() == (
        "TLS (min TLS13, client certs: RequireAndVerifyClientCert), basic auth for 2 user(s)"
    )


def test_tls_defaults_to_tls12_without_client_certificates(pki: Pki) -> None:
    text = f"tls_server_config: {{cert_file: {pki.server_cert}, key_file: {pki.server_key}}}\n"
    context = load_web_config(write(pki.ca.parent, text)).ssl_context()
    assert context is not None
    assert context.verify_mode == ssl.CERT_NONE
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2


def test_every_problem_is_listed_once_and_no_password_is_shown(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
tls_server_config:
  cert_file: missing.crt
  client_auth_type: RequestClientCert
  min_version: TLS14
  cipher_suites: [TLS_AES_128_GCM_SHA256]
  cert_fiel: typo.crt
basic_auth_users:
  prometheus: plain-text-password
  "bad:name": x
http_server_config: {http2: true}
""",
    )
    found = problems(path)
    expected = [
        f"{path}: http_server_config: is not supported by agent-runs-exporter; remove it",
        f"{path}: tls_server_config.cipher_suites: is not supported",
        f"{path}: tls_server_config.cert_fiel: unknown key (did you mean 'cert_file'?)",
        f"{path}: tls_server_config.key_file: is required to serve TLS",
        f"{path}: tls_server_config.client_auth_type: RequestClientCert is not supported",
        f"{path}: tls_server_config.min_version: must be one of: TLS10, TLS11, TLS12, TLS13",
        f"{path}: basic_auth_users.prometheus: must be a bcrypt hash",
        f"{path}: basic_auth_users: user name 'bad:name' must be a string without ':'",
    ]
    for start in expected:
        assert sum(problem.startswith(start) for problem in found) == 1, (start, found)
    assert len(found) == len(expected), found
    assert "plain-text-password" not in "\n".join(found)


def test_unknown_keys_are_rejected_with_their_key_path(pki: Pki) -> None:
    text = (
        f"tls_server_config:\n  cert_file: {pki.server_cert}\n  key_file: {pki.server_key}\n"
        "  min_verison: TLS13\n"
        "tls_server_confg: {}\n"
        "basic_auth_user: {}\n"
    )
    path = write(pki.ca.parent, text)
    assert problems(path) == [
        f"{path}: tls_server_config.min_verison: unknown key (did you mean 'min_version'?)",
        f"{path}: tls_server_confg: unknown key (did you mean 'tls_server_config'?)",
        f"{path}: basic_auth_user: unknown key (did you mean 'basic_auth_users'?)",
    ]


def test_client_ca_and_client_auth_type_go_together(pki: Pki) -> None:
    base = f"tls_server_config:\n  cert_file: {pki.server_cert}\n  key_file: {pki.server_key}\n"
    ca_only = write(pki.ca.parent, base + f"  client_ca_file: {pki.client_ca}\n", "a.yml")
    assert "client_auth_type does not verify" in problems(ca_only)[0]
    auth_only = base + "  client_auth_type: VerifyClientCertIfGiven\n"
    assert problems(write(pki.ca.parent, auth_only, "b.yml"))[0].endswith(
        "client_ca_file: is required by VerifyClientCertIfGiven"
    )


def test_unreadable_or_mismatched_files_are_reported(pki: Pki) -> None:
    missing = f"tls_server_config: {{cert_file: nope.pem, key_file: {pki.server_key}}}\n"
    found = problems(write(pki.ca.parent, missing, "a.yml"))
    assert found == [
        f"{pki.ca.parent / 'a.yml'}: tls_server_config.cert_file: cannot read "
        f"{pki.ca.parent / 'nope.pem'}: No such file or directory"
    ]
    mismatch = f"tls_server_config: {{cert_file: {pki.server_cert}, key_file: {pki.client_key}}}\n"
    found = problems(write(pki.ca.parent, mismatch, "b.yml"))
    assert len(found) == 1
    assert "cannot use the certificate, key or client CA file" in found[0]


def test_yaml_errors_have_a_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "basic_auth_users:\n  a: [unclosed\n")
    assert problems(path)[0].startswith(f"{path}:3:")


def test_run_with_a_bad_web_config_exits_2_with_one_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_CONDUIT_TOKEN", "tok-cli-web")
    config = write(tmp_path, GOOD, "config.yaml")
    web = write(tmp_path, "basic_auth_users: {prometheus: hunter2}\ntls: {}\n")
    assert main(["run", "--config", config, "--web.config.file", web]) == 2
    err = capsys.readouterr().err
    assert "2 configuration problem(s)" in err
    assert "basic_auth_users.prometheus: must be a bcrypt hash" in err
    assert "tls: unknown key (known keys: tls_server_config, basic_auth_users)" in err
    assert f"problem(s) in {config}" not in err  # the problems are in the web config file
    assert "Traceback" not in err
    assert "hunter2" not in err


def test_check_config_validates_and_summarizes_the_web_config(
    pki: Pki, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_CONDUIT_TOKEN", "tok-cli-web")
    web = write(pki.ca.parent, f"basic_auth_users: {{prometheus: '{HASH}'}}\n")
    config = write(pki.ca.parent, GOOD + f"web: {{config_file: {web}}}\n", "config.yaml")
    assert main(["check-config", "--config", config]) == 0
    out = capsys.readouterr().out
    assert f"# {web}: OK, plain HTTP, basic auth for 1 user(s)" in out
    assert HASH not in out


def test_a_max_version_below_min_version_is_refused(pki: Pki) -> None:
    text = (
        f"tls_server_config:\n  cert_file: {pki.server_cert}\n  key_file: {pki.server_key}\n"
        "  min_version: TLS13\n  max_version: TLS12\n"
    )
    (found,) = problems(write(pki.ca.parent, text))
    assert found.endswith(
        "tls_server_config.max_version: TLS12 is below min_version TLS13: "
        "no TLS version would be left"
    )


def test_a_repeated_user_name_is_refused_not_the_last_one_winning(tmp_path: Path) -> None:
    path = write(tmp_path, f"basic_auth_users:\n  prometheus: {HASH}\n  prometheus: {HASH}\n")
    assert problems(path) == [
        f"{path}:3: duplicate key 'prometheus': only the last one would count"
    ]


def test_hostile_web_config_files_are_problems(tmp_path: Path) -> None:
    bomb = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    bomb += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    assert "expands to more than" in problems(write(tmp_path, "\n".join(bomb), "bomb.yml"))[0]
    fifo = tmp_path / "fifo.yml"
    os.mkfifo(fifo)
    assert problems(str(fifo)) == [f"{fifo}: cannot read the web config file: not a regular file"]
