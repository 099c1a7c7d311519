"""Hostile configuration files: each is a config problem (exit 2), never a hang or a crash."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from exporter import textfile
from exporter.cli import main
from exporter.config import file_source
from exporter.config.models import load_settings
from tests.unit.config.test_config import MINIMAL, problems_of, write


def messages(path: Path, environ: dict[str, str] | None = None) -> str:
    return " | ".join(problem.message for problem in problems_of(path, environ or {}))


def alias_bomb(levels: int) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, levels + 1):
        refs = ", ".join([f"*a{level - 1}"] * 9)
        lines.append(f"a{level}: &a{level} [{refs}]")
    return "\n".join(lines) + "\n" + MINIMAL


def test_a_yaml_alias_bomb_is_refused_before_it_expands(tmp_path: Path) -> None:
    path = write(tmp_path, alias_bomb(9))  # 9^10 values: more than a minute to walk, before
    assert "expands to more than 1000000 values" in messages(path)


def test_a_self_referencing_alias_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "loop: &loop [*loop]\n" + MINIMAL)
    assert "nests lists and mappings more than" in messages(path)


def test_a_few_aliases_still_work(tmp_path: Path) -> None:
    text = MINIMAL.replace("agents: [a1]", "agents: &ids [a1, a2]") + (
        "  - name: copy\n    platform: conduit\n    base_url: http://localhost:8081\n"
        "    agents: *ids\n"
    )
    settings = load_settings(write(tmp_path, text), environ={})
    assert [source.agents for source in settings.sources] == [["a1", "a2"], ["a1", "a2"]]


@pytest.mark.parametrize("depth", [40, 1000])
def test_deep_nesting_is_a_problem_not_a_recursion_error(tmp_path: Path, depth: int) -> None:
    path = write(tmp_path, "x: " + "[" * depth + "]" * depth + "\n" + MINIMAL)
    assert "nests lists and mappings more than 32 deep" in messages(path)


def test_a_config_file_past_the_size_cap_is_not_read(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "#" * textfile.MAX_CONFIG_BYTES + "\n")
    assert "larger than 4194304 bytes" in messages(path)


def test_a_fifo_as_the_config_file_does_not_hang(tmp_path: Path) -> None:
    fifo = tmp_path / "config.yaml"
    os.mkfifo(fifo)
    assert "not a regular file" in messages(fifo)


@pytest.mark.parametrize("target", ["/dev/zero", "fifo", "big"])
def test_a_token_file_that_is_endless_special_or_huge_is_a_problem(
    tmp_path: Path, target: str
) -> None:
    token_file = tmp_path / target
    if target == "fifo":
        os.mkfifo(token_file)
    elif target == "big":
        token_file.write_text("t" * (textfile.MAX_TOKEN_BYTES + 1))
    else:
        token_file = Path(target)
    text = MINIMAL.replace("agents: [a1]", f"agents: [a1]\n    token_file: {token_file}")
    text = messages(write(tmp_path, text))
    assert "cannot read token file" in text
    assert ("larger than" if target == "big" else "not a regular file") in text


def test_many_agents_with_a_repeat_are_checked_in_one_pass(tmp_path: Path) -> None:
    agents = [f"ag{i}" for i in range(20_000)] + ["ag7", "ag19999"]
    text = MINIMAL.replace("agents: [a1]", f"agents: [{', '.join(agents)}]")
    assert "duplicate agent ids: ag7, ag19999" in messages(write(tmp_path, text))


def test_hostile_config_files_exit_2(tmp_path: Path) -> None:
    path = write(tmp_path, alias_bomb(9))
    assert main(["check-config", "--config", str(path)]) == 2
    assert file_source.MAX_DEPTH == 32
