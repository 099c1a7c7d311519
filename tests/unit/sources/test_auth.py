"""Upstream credentials: a rotating token file read cheaply, and the header it goes into."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import httpx
import pytest

from exporter import logs
from exporter.config.source import SourceSettings
from exporter.sources.auth import HeaderAuth, TokenFile, static_token
from exporter.sources.http import HttpClient
from exporter.wiring import source_auth
from tests.unit.fakeclock import FakeClock


def write_token(path: Path, token: str, mtime_ns: int) -> None:
    """Write a token and give the file a distinct mtime (a rotation within one second)."""
    path.write_text(token + "\n", encoding="utf-8")
    os.utime(path, ns=(mtime_ns, mtime_ns))


def test_token_file_is_read_and_registered_as_a_secret(tmp_path: Path) -> None:
    path = tmp_path / "token"
    write_token(path, "tok-file-first-1a2b", 1_000)
    assert TokenFile(path, clock=FakeClock(0)).current() == "tok-file-first-1a2b"
    assert logs.redact("x tok-file-first-1a2b y") == f"x {logs.MASK} y"


def test_a_rotated_token_is_used_after_the_check_interval(tmp_path: Path) -> None:
    path = tmp_path / "token"
    clock = FakeClock(0)
    write_token(path, "tok-rotate-old", 1_000)
    tokens = TokenFile(path, clock=clock, check_interval_s=1.0)
    assert tokens.current() == "tok-rotate-old"
    write_token(path, "tok-rotate-new", 2_000)
    assert tokens.current() == "tok-rotate-old"  # looked less than a second ago: no stat
    clock.now += 1.0
    assert tokens.current() == "tok-rotate-new"
    assert tokens.rotations == 1
    assert logs.redact("tok-rotate-new") == logs.MASK


def test_a_kubernetes_style_symlink_swap_is_noticed(tmp_path: Path) -> None:
    clock = FakeClock(0)
    for name, token in (("v1", "tok-k8s-one"), ("v2", "tok-k8s-two")):
        (tmp_path / name).mkdir()
        write_token(tmp_path / name / "token", token, 1_000)  # same mtime, other inode
    (tmp_path / "..data").symlink_to("v1")
    (tmp_path / "token").symlink_to("..data/token")
    tokens = TokenFile(tmp_path / "token", clock=clock)
    assert tokens.current() == "tok-k8s-one"
    (tmp_path / "..data.tmp").symlink_to("v2")
    (tmp_path / "..data.tmp").replace(tmp_path / "..data")
    clock.now += 5
    assert tokens.current() == "tok-k8s-two"


@pytest.mark.parametrize("change", ["empty", "removed"])
def test_the_last_good_token_is_kept(
    tmp_path: Path, change: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "token"
    clock = FakeClock(0)
    write_token(path, "tok-keep-good", 1_000)
    tokens = TokenFile(path, clock=clock)
    assert tokens.current() == "tok-keep-good"
    if change == "empty":
        write_token(path, "", 2_000)
    else:
        path.unlink()
    clock.now += 2
    with caplog.at_level(logging.WARNING):
        assert tokens.current() == "tok-keep-good"
    assert "keeping the last token" in caplog.text
    assert "tok-keep-good" not in caplog.text


def test_only_a_changed_stat_triggers_a_read(tmp_path: Path) -> None:
    path = tmp_path / "token"
    clock = FakeClock(0)
    write_token(path, "tok-same-aaaa", 1_000)
    tokens = TokenFile(path, clock=clock)
    tokens.current()
    write_token(path, "tok-same-bbbb", 1_000)  # same inode, size and mtime: not read
    clock.now += 10
    assert tokens.current() == "tok-same-aaaa"
    os.utime(path, ns=(3_000, 3_000))
    clock.now += 10
    assert tokens.current() == "tok-same-bbbb"


def sent_headers(auth: HeaderAuth) -> httpx.Headers:
    seen: list[httpx.Headers] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers)
        return httpx.Response(200, json={})

    client = HttpClient(
        base_url="https://u.test",
        headers={},
        timeout_s=1,
        on_response=lambda _e, _c: None,
        auth=auth,
        transport=httpx.MockTransport(handler),
    )
    asyncio.run(client.get_json("/x", endpoint="x", params={}))
    return seen[0]


def test_bearer_by_default_or_any_header_without_scheme() -> None:
    bearer = sent_headers(HeaderAuth(static_token("tok-bearer")))
    assert bearer["Authorization"] == "Bearer tok-bearer"
    api_key = sent_headers(HeaderAuth(static_token("tok-xapi"), "X-API-KEY", None))
    assert api_key["X-API-KEY"] == "tok-xapi"
    assert "Authorization" not in api_key
    assert "Authorization" not in sent_headers(HeaderAuth(static_token(None)))


def test_each_request_carries_the_current_token(tmp_path: Path) -> None:
    path = tmp_path / "token"
    write_token(path, "tok-live-a", 1_000)
    tokens = TokenFile(path, clock=FakeClock(0), check_interval_s=0)
    assert sent_headers(HeaderAuth(tokens.current))["Authorization"] == "Bearer tok-live-a"
    write_token(path, "tok-live-b", 2_000)
    assert sent_headers(HeaderAuth(tokens.current))["Authorization"] == "Bearer tok-live-b"


@pytest.mark.parametrize(
    ("platform", "header", "value"),
    [
        ("conduit", "Authorization", "Bearer tok-factory"),
        ("runtype", "Authorization", "Bearer tok-factory"),
        ("elizaos", "X-API-KEY", "tok-factory"),
    ],
)
def test_each_platform_gets_its_header_from_a_token_file(
    tmp_path: Path, platform: str, header: str, value: str
) -> None:
    path = tmp_path / "token"
    write_token(path, "tok-factory", 1_000)
    settings = SourceSettings(
        name="s", platform=platform, base_url="https://u.test", token_file=str(path), agents=["a"]
    )
    headers = sent_headers(source_auth(settings))
    assert headers[header] == value
    assert ("Authorization" in headers) == (header == "Authorization")


def test_a_token_file_rotated_to_two_lines_keeps_the_last_good_token(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "token"
    clock = FakeClock(0)
    write_token(path, "tok-before-two-lines", 1_000)
    tokens = TokenFile(path, clock=clock)
    assert tokens.current() == "tok-before-two-lines"
    write_token(path, "tok-two-lines-9f8e\nsecond-line-7d6c", 2_000)
    clock.now += 2
    with caplog.at_level(logging.WARNING):
        assert tokens.current() == "tok-before-two-lines"
        clock.now += 2
        assert tokens.current() == "tok-before-two-lines"
    assert caplog.text.count("holds a line break") == 1  # once per change of the file
    assert "keeping the last token" in caplog.text
    assert "tok-two-lines" not in caplog.text
    assert "second-line" not in caplog.text
    assert logs.redact("tok-two-lines-9f8e\\nsecond-line-7d6c") == logs.MASK


def test_a_two_line_token_file_at_start_sends_no_header(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "token"
    write_token(path, "tok-first-two-lines-1a2b\nline2-3c4d", 1_000)
    with caplog.at_level(logging.WARNING):
        headers = sent_headers(HeaderAuth(TokenFile(path, clock=FakeClock(0)).current))
    assert "authorization" not in headers
    assert "requests go without a token" in caplog.text
    assert "tok-first" not in caplog.text
