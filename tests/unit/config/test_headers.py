"""A source's `headers:`: read from the file or the environment, checked one problem per header,
masked like tokens; and the warning about secrets too short to mask inside words."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from exporter import logs
from exporter.cli import main
from exporter.config.models import load_settings, render_effective
from tests.unit.config.test_config import by_location, problems_of, write

pytestmark = pytest.mark.usefixtures("fresh_secrets")  # short values are registered too
ORG = "org_5d1c7a9e3b2f"
ACP = """\
sources:
  - name: computer
    platform: acp
    base_url: https://api.computer-agents.com
    token: tb_live_0a1b2c3d4e5f
    agents: [srv_7f3a9c]
"""


def with_headers(*lines: str, base: str = ACP) -> str:
    """Return `base` with a `headers:` map of `lines` (each `Name: value`) on its source."""
    return base + "    headers:\n" + "".join(f"      {line}\n" for line in lines)


def test_headers_are_read_with_variables_and_masked_like_tokens(tmp_path: Path) -> None:
    text = with_headers("X-Computer-Agents-Organization: ${ORG}", "X-Trace-Tag: '  blue team  '")
    settings = load_settings(write(tmp_path, text), {"ORG": ORG})
    source = settings.sources[0]
    assert source.resolved_headers() == {
        "X-Computer-Agents-Organization": ORG,
        "X-Trace-Tag": "blue team",  # surrounding spaces dropped, as for tokens
    }
    assert logs.redact(f"HTTP 403: unknown org {ORG}") == f"HTTP 403: unknown org {logs.MASK}"
    rendered = render_effective(settings)
    assert ORG not in rendered
    assert "X-Computer-Agents-Organization: '****'" in rendered
    assert ORG not in repr(settings)


def test_no_headers_is_an_empty_map(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, ACP), {})
    assert settings.sources[0].resolved_headers() == {}
    assert "headers: {}" in render_effective(settings)


BAD_NAMES = {
    "space": ("'X Org': v1", "X Org", "is not a valid header name"),
    "colon": ("'X-Org:': v1", "X-Org:", "is not a valid header name"),
    "non-ascii": ("X-Örg: v1", "X-Örg", "is not a valid header name"),
    "the auth header": ("Authorization: Bearer other", "Authorization", "carries the token"),
    "the auth header, any case": ("authorization: x", "authorization", "carries the token"),
    "Host": ("Host: evil.test", "Host", "set by the HTTP client"),
    "Content-Length": ("Content-Length: '0'", "Content-Length", "set by the HTTP client"),
    "Transfer-Encoding": ("transfer-encoding: chunked", "transfer-encoding", "HTTP client"),
    "Connection": ("Connection: close", "Connection", "set by the HTTP client"),
    "Accept-Encoding": ("Accept-Encoding: br", "Accept-Encoding", "decoder reads only"),
}


@pytest.mark.parametrize(("line", "name", "reason"), BAD_NAMES.values(), ids=BAD_NAMES.keys())
def test_a_refused_header_name_is_one_problem_naming_source_and_header(
    tmp_path: Path, line: str, name: str, reason: str
) -> None:
    path = write(tmp_path, with_headers("X-Computer-Agents-Organization: ok-org-1", line))
    problems = problems_of(path, {})
    assert len(problems) == 1
    assert problems[0].location == f"{path}: sources[0].headers.{name}"
    assert problems[0].message.startswith(f"header {name!r} of source computer ")
    assert reason in problems[0].message


def test_the_auth_header_is_the_platforms_own(tmp_path: Path) -> None:
    eliza = ACP.replace("platform: acp", "platform: elizaos")
    problems = problems_of(write(tmp_path, with_headers("x-api-key: other-key", base=eliza)), {})
    assert [p.message.split(" of ")[0] for p in problems] == ["header 'x-api-key'"]
    # ElizaOS takes its token in X-API-KEY: an Authorization header (a proxy's) is its own business
    proxied = with_headers("Authorization: Basic cHJveHk=", base=eliza)
    settings = load_settings(write(tmp_path, proxied), {})
    assert list(settings.sources[0].resolved_headers()) == ["Authorization"]


BAD_VALUES = {
    "newline": ("hdr-nl-7Qx9PzR4\nline2-vW2mK8", "holds a line break"),
    "carriage return": ("hdr-cr-7Qx9PzR4\rline2-vW2mK8", "holds a line break"),
    "NUL": ("hdr-nul-7Qx9PzR4\x00vW2mK8", "holds a control character"),
    "DEL": ("hdr-del-7Qx9PzR4\x7fvW2mK8", "holds a control character"),
    "Latin-1": ("hdr-caf\u00e9-7Qx9PzR4vW2mK8", "outside ASCII"),
    "euro": ("hdr-euro-7Qx9PzR4\u20acvW2mK8", "outside ASCII"),
    "empty": ("   ", "is empty"),
}


@pytest.mark.parametrize(("value", "reason"), BAD_VALUES.values(), ids=BAD_VALUES.keys())
def test_an_unsendable_value_is_one_problem_that_never_quotes_it(
    tmp_path: Path, value: str, reason: str
) -> None:
    path = write(tmp_path, with_headers("X-Computer-Agents-Organization: ${ORG}"))
    problems = problems_of(path, {"ORG": value})
    assert len(problems) == 1
    assert problems[0].location == f"{path}: sources[0].headers.X-Computer-Agents-Organization"
    assert problems[0].message.startswith("the value of this header of source computer ")
    assert reason in problems[0].message
    for part in ("7Qx9PzR4", "vW2mK8", "line2"):
        assert part not in repr(problems)


def test_a_value_that_is_not_a_string_is_a_problem(tmp_path: Path) -> None:
    path = write(tmp_path, with_headers("X-Org-Number: 12345"))
    assert by_location(problems_of(path, {})) == {
        f"{path}: sources[0].headers.X-Org-Number": "must be a string (quote it in YAML)"
    }


def test_a_name_given_twice_in_other_cases_is_a_problem(tmp_path: Path) -> None:
    path = write(tmp_path, with_headers("X-Org: org-a-1234", "x-org: org-b-5678"))
    assert by_location(problems_of(path, {})) == {
        f"{path}: sources[0].headers": "header 'x-org' of source computer is set twice "
        "(header names ignore case): keep one"
    }


def test_headers_must_be_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, ACP + "    headers: [X-Org]\n")
    assert by_location(problems_of(path, {})) == {
        f"{path}: sources[0].headers": "must be a mapping of keys to values"
    }


def test_the_environment_sets_the_whole_map_as_json(tmp_path: Path) -> None:
    text = with_headers("X-Computer-Agents-Organization: from-file-1", "X-Keep: kept-1")
    path = write(tmp_path, text)
    variable = "AGENT_RUNS_EXPORTER_SOURCES__0__HEADERS"
    settings = load_settings(path, {variable: '{"X-Computer-Agents-Organization": "from-env-2"}'})
    assert settings.sources[0].resolved_headers() == {
        "X-Computer-Agents-Organization": "from-env-2",
        "X-Keep": "kept-1",
    }
    problems = problems_of(path, {variable: '{"Host": "evil.test"}'})
    assert by_location(problems) == {
        f"{variable}: sources[0].headers.Host": "header 'Host' of source computer is set by the "
        "HTTP client and cannot be configured"
    }


def test_a_header_cannot_be_named_by_a_variable(tmp_path: Path) -> None:
    variable = "AGENT_RUNS_EXPORTER_SOURCES__0__HEADERS__X_ORG"
    problems = problems_of(write(tmp_path, ACP), {variable: "org-1"})
    assert by_location(problems) == {
        variable: "sources[0].headers is a mapping: set it whole, as a JSON object"
    }


def test_check_config_lists_each_bad_header_once_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = "hdr-secret-7Qx9PzR4"
    text = with_headers("Host: h.test", f"'X Bad': {secret}", "X-Ok: '\\x01'", base=ACP)
    text = text.replace("X-Ok: '\\x01'", 'X-Ok: "a\\x01b"')
    assert main(["check-config", "--config", str(write(tmp_path, text))]) == 2
    err = capsys.readouterr().err
    problems = [line for line in err.splitlines() if line.startswith("  - ")]
    assert len(problems) == 3
    assert all("source computer" in line for line in problems)
    for name in ("headers.Host:", "headers.X Bad:", "headers.X-Ok:"):
        assert sum(name in line for line in problems) == 1
    assert "Traceback" not in err
    assert secret not in err


# --- short secrets ------------------------------------------------------------------------------


def test_short_token_and_header_value_are_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    text = with_headers("X-Computer-Agents-Organization: org_1").replace(
        "token: tb_live_0a1b2c3d4e5f", "token: t"
    )
    with caplog.at_level(logging.WARNING, logger="exporter.config.models"):
        load_settings(write(tmp_path, text), {})
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "source computer: the token is shorter than 8 characters: log lines mask it only "
        "where it stands alone as a word, never inside other words",
        "source computer: the value of header X-Computer-Agents-Organization is shorter than 8 "
        "characters: log lines mask it only where it stands alone as a word, never inside "
        "other words",
    ]


def test_long_secrets_are_not_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="exporter.config.models"):
        load_settings(write(tmp_path, with_headers(f"X-Computer-Agents-Organization: {ORG}")), {})
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_check_config_warns_about_a_short_token_and_still_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, ACP.replace("token: tb_live_0a1b2c3d4e5f", "token: tk"))
    assert main(["check-config", "--config", str(path)]) == 0
    captured = capsys.readouterr()
    assert "source computer: the token is shorter than 8 characters" in captured.err
    assert "exporter.config.models" in captured.err  # the logger name survives the mask
    assert "token: '****'" in captured.out
    assert "platform: acp" in captured.out


def test_a_short_token_does_not_rewrite_config_problems(tmp_path: Path) -> None:
    text = ACP.replace("token: tb_live_0a1b2c3d4e5f", "token: t").replace(
        "platform: acp", "platform: nope"
    )
    path = write(tmp_path, text)
    assert by_location(problems_of(path, {})) == {
        f"{path}: sources[0].platform": "must be one of: conduit, runtype, elizaos, acp"
    }
