"""A token an HTTP header cannot carry is a configuration problem that never quotes it."""

from __future__ import annotations

from pathlib import Path

import pytest

from exporter import logs
from exporter.config.models import load_settings
from tests.unit.config.test_config import MINIMAL, by_location, problems_of, write

BAD_TOKENS = {
    "newline": "tok-nl-7Qx9PzR4\nline2-vW2mK8",
    "carriage return": "tok-cr-7Qx9PzR4\rline2-vW2mK8",
    "NUL": "tok-nul-7Qx9PzR4\x00vW2mK8",
    "escape": "tok-esc-7Qx9PzR4\x1bvW2mK8",
    "non-latin-1": "tok-euro-7Qx9PzR4\u20acvW2mK8",
}


@pytest.mark.parametrize("token", BAD_TOKENS.values(), ids=BAD_TOKENS.keys())
def test_a_token_from_an_environment_variable_that_no_header_can_carry(
    tmp_path: Path, token: str
) -> None:
    text = MINIMAL.replace("agents: [a1]", "agents: [a1]\n    token: ${TOK}")
    path = write(tmp_path, text)
    problems = problems_of(path, {"TOK": token})
    message = by_location(problems)[f"{path}: sources[0].token"]
    assert "source support" in message
    assert "header cannot carry it" in message
    for part in token.split(token[15]):
        assert part not in repr(problems)
    assert logs.MASK in logs.redact(token)  # masked in the log too, should it be logged


def test_a_two_line_token_file_is_a_problem_that_names_it(tmp_path: Path) -> None:
    token = BAD_TOKENS["newline"]
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n", encoding="utf-8")
    text = MINIMAL.replace("agents: [a1]", f"agents: [a1]\n    token_file: {token_file}")
    path = write(tmp_path, text)
    problems = problems_of(path, {})
    message = by_location(problems)[f"{path}: sources[0].token_file"]
    assert f"token file {token_file} of source support holds a line break" in message
    assert "tok-nl" not in repr(problems)
    assert "line2" not in repr(problems)


def test_a_token_with_inner_spaces_and_latin_1_is_accepted(tmp_path: Path) -> None:
    text = MINIMAL.replace("agents: [a1]", "agents: [a1]\n    token: ${TOK}")
    settings = load_settings(write(tmp_path, text), {"TOK": "tok caf\u00e9\tabc\n"})
    assert settings.sources[0].resolved_token() == "tok caf\u00e9\tabc"
