"""Tests for exporter.logs: plain and JSON lines, damping of repeats, secret redaction."""

from __future__ import annotations

import io
import json
import logging
import re
import urllib.parse
from collections.abc import Iterator

import pytest

from exporter import logs
from exporter.logs import DampingFilter, register_secret, setup_logging
from tests.unit.fakeclock import FakeClock

PLAIN_LINE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (?P<rest>.*)")


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    """Put the root logger back the way the test found it."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.NOTSET)


def configured(fmt: str = "plain", level: str = "info") -> io.StringIO:
    """Set up logging into a fresh buffer and return it."""
    stream = io.StringIO()
    setup_logging(level, fmt, stream)  # type: ignore[arg-type]
    return stream


def lines(stream: io.StringIO) -> list[str]:
    """Return the lines written so far."""
    return stream.getvalue().splitlines()


def record(
    msg: str = "upstream down: %s", *args: object, level: int = logging.WARNING
) -> logging.LogRecord:
    """Build a log record."""
    return logging.LogRecord("exporter.poll.poller", level, __file__, 1, msg, args, None)


# --- formats -----------------------------------------------------------------------------------


def test_plain_line_shape() -> None:
    stream = configured("plain")
    logging.getLogger("exporter.poll.poller").info("polled %s runs", 3, extra={"source": "support"})
    (line,) = lines(stream)
    match = PLAIN_LINE.fullmatch(line)
    assert match is not None, line
    assert match["rest"] == "INFO exporter.poll.poller polled 3 runs source=support"


def test_plain_quotes_extra_values_that_are_not_one_token() -> None:
    stream = configured("plain")
    logging.getLogger("t").warning("x", extra={"reason": "two words", "empty": "", "n": 2})
    assert lines(stream)[0].endswith(' x reason="two words" empty="" n=2')


def test_plain_includes_the_traceback() -> None:
    stream = configured("plain")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("t").exception("poll failed")
    text = stream.getvalue()
    assert "ERROR t poll failed\nTraceback (most recent call last):" in text
    assert "RuntimeError: boom" in text


def test_json_line_shape() -> None:
    stream = configured("json")
    logging.getLogger("exporter.poll.poller").warning(
        "source %s failed", "support", extra={"source": "support", "reason": "timeout", "n": 2}
    )
    (line,) = lines(stream)
    payload = json.loads(line)
    assert PLAIN_LINE.fullmatch(payload.pop("ts") + " x")
    assert payload == {
        "level": "WARNING",
        "logger": "exporter.poll.poller",
        "msg": "source support failed",
        "source": "support",
        "reason": "timeout",
        "n": 2,
    }


def test_json_exception_goes_to_exc() -> None:
    stream = configured("json")
    try:
        raise ValueError("bad payload")
    except ValueError:
        logging.getLogger("t").exception("parse failed")
    payload = json.loads(lines(stream)[0])
    assert payload["msg"] == "parse failed"
    assert payload["exc"].startswith("Traceback")
    assert "ValueError: bad payload" in payload["exc"]


def test_json_extras_cannot_overwrite_base_fields() -> None:
    stream = configured("json")
    logging.getLogger("t").warning("real", extra={"ts": "fake", "level": "fake"})
    payload = json.loads(lines(stream)[0])
    assert payload["level"] == "WARNING"
    assert payload["ts"] != "fake"


def test_json_renders_unserializable_extras_as_text() -> None:
    stream = configured("json")
    logging.getLogger("t").warning("x", extra={"when": object})
    assert json.loads(lines(stream)[0])["when"] == "<class 'object'>"


# --- setup -------------------------------------------------------------------------------------


def test_levels_filter_and_accept_any_case() -> None:
    stream = configured(level="WARNING")
    logging.getLogger("t").info("hidden")
    logging.getLogger("t").warning("shown")
    assert [line.split(" ", 3)[3] for line in lines(stream)] == ["shown"]


def test_debug_level_shows_debug() -> None:
    stream = configured(level="Debug")
    logging.getLogger("t").debug("detail")
    assert lines(stream)[0].endswith("DEBUG t detail")


@pytest.mark.parametrize("level", ["verbose", "", "warn", "critical"])
def test_invalid_level_is_a_clear_error(level: str) -> None:
    with pytest.raises(
        ValueError, match=r"invalid log level .*use one of debug, info, warning, error"
    ):
        setup_logging(level)


def test_invalid_format_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="invalid log format 'xml': use plain or json"):
        setup_logging("info", "xml")  # type: ignore[arg-type]


def test_setup_is_idempotent_and_replaces_its_handler() -> None:
    first = configured("plain")
    second = configured("json")
    logging.getLogger("t").warning("once")
    assert first.getvalue() == ""
    assert len(lines(second)) == 1
    ours = [h for h in logging.getLogger().handlers if isinstance(h.formatter, logs.JsonFormatter)]
    assert len(ours) == 1


def test_http_client_request_lines_are_quiet_unless_debug() -> None:
    configured(level="info")
    assert logging.getLogger("httpx").getEffectiveLevel() == logging.WARNING
    configured(level="debug")
    assert logging.getLogger("httpx").getEffectiveLevel() == logging.DEBUG


# --- damping -----------------------------------------------------------------------------------


def test_damping_suppresses_repeats_within_the_window() -> None:
    clock = FakeClock(1000.0)
    damping = DampingFilter(window=60.0, clock=clock)
    assert damping.filter(record("upstream down: %s", "support"))
    passed = []
    for _ in range(12):
        clock.now += 1
        passed.append(damping.filter(record("upstream down: %s", "support")))
    assert passed == [False] * 12
    clock.now += 60
    later = record("upstream down: %s", "support")
    assert damping.filter(later)
    assert later.repeated == 12  # type: ignore[attr-defined]
    clock.now += 1
    assert not damping.filter(record("upstream down: %s", "support"))


def test_damping_keys_on_logger_level_and_formatted_message() -> None:
    damping = DampingFilter(clock=FakeClock(1000.0))
    assert damping.filter(record("upstream down: %s", "a"))
    assert damping.filter(record("upstream down: %s", "b"))
    assert damping.filter(record("upstream down: %s", "a", level=logging.ERROR))
    other = logging.LogRecord("other", logging.WARNING, __file__, 1, "upstream down: a", (), None)
    assert damping.filter(other)
    assert not damping.filter(record("upstream down: %s", "a"))


def test_damping_leaves_info_alone() -> None:
    damping = DampingFilter(clock=FakeClock(1000.0))
    assert all(damping.filter(record("tick", level=logging.INFO)) for _ in range(5))


def test_damping_memory_is_bounded() -> None:
    clock = FakeClock(1000.0)
    damping = DampingFilter(window=10.0, clock=clock, max_keys=3)
    for index in range(3):
        damping.filter(record(f"m{index}"))
    clock.now += 11
    damping.filter(record("m3"))
    assert len(damping._seen) == 1


@pytest.mark.parametrize("fmt", ["plain", "json"])
def test_damped_count_reaches_the_output(fmt: str) -> None:
    stream = io.StringIO()
    clock = FakeClock(1000.0)
    setup_logging("info", fmt, stream, clock=clock)  # type: ignore[arg-type]
    log = logging.getLogger("exporter.poll.poller")
    for _ in range(13):
        log.warning("upstream down")
        clock.now += 1
    clock.now += 60
    log.warning("upstream down")
    out = lines(stream)
    assert len(out) == 2
    if fmt == "plain":
        assert out[1].endswith("WARNING exporter.poll.poller upstream down (repeated 12 times)")
    else:
        payload = json.loads(out[1])
        assert (payload["msg"], payload["repeated"]) == ("upstream down (repeated 12 times)", 12)


def test_setup_damps_warnings_by_default() -> None:
    stream = configured()
    for _ in range(5):
        logging.getLogger("t").warning("same")
        logging.getLogger("t").info("info is never damped")
    assert len(lines(stream)) == 6


# --- secrets -----------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["plain", "json"])
def test_registered_secrets_never_reach_a_line(fmt: str) -> None:
    secret = f"sk-test-{fmt}-9f8e7d6c5b4a"
    register_secret(secret)
    stream = configured(fmt)
    log = logging.getLogger("exporter.sources")
    leaked = "token is " + secret  # a message that embeds the secret itself
    log.warning(leaked)
    log.warning("header Authorization: Bearer %s", secret)
    log.warning("extra", extra={"token": secret, "nested": {"t": secret}})
    try:
        raise RuntimeError(f"request failed with {secret}")
    except RuntimeError:
        log.exception("failed")
    text = stream.getvalue()
    assert secret not in text
    assert text.count("****") >= 4


def test_redact_masks_longest_secret_first() -> None:
    register_secret("abcd-short-secret")
    register_secret("abcd-short-secret-and-longer")
    assert logs.redact("x abcd-short-secret-and-longer y") == "x **** y"


def test_empty_secret_is_ignored() -> None:
    register_secret("")
    assert logs.redact("nothing to hide") == "nothing to hide"


MULTILINE = "tok-twoline-7Qx9PzR4vW\nsecond-line-2mK8sT"  # a token file of two lines


def secret_forms_in_messages(secret: str) -> list[str]:
    """Return messages that carry `secret` in every form an exception or a cut can give it."""
    header = ("Bearer " + secret).encode()
    return [
        "raw: " + secret,
        f"Illegal header value {header!r}",  # what h11 raises, logged at the default level
        f"repr: {secret!r}",
        "json: " + json.dumps({"token": secret}),
        "quoted: '" + secret + "'",
        "url: https://u.test/?token=" + urllib.parse.quote(secret, safe=""),
        "HTTP 401 from /v1/runs: echo " + secret[:12],  # cut at N characters
    ]


@pytest.mark.parametrize("fmt", ["plain", "json"])
def test_a_secret_is_masked_in_every_form(fmt: str) -> None:
    register_secret(MULTILINE)
    stream = configured(fmt)
    log = logging.getLogger("exporter.sources")
    for index, message in enumerate(secret_forms_in_messages(MULTILINE)):
        log.warning("poll failed: %s", message)
        log.warning("extra %d", index, extra={"detail": message})
        try:
            raise ValueError(message)
        except ValueError:
            log.exception("failed %d", index)
    text = stream.getvalue()
    for piece in ("tok-twoline", "7Qx9PzR4vW", "second-line", "2mK8sT"):
        assert piece not in text
    assert text.count(logs.MASK) >= 21


def test_a_cut_secret_is_masked_only_at_the_end_of_a_text() -> None:
    register_secret("tok-cut-a1b2c3d4e5f6")
    assert logs.redact("body: tok-cut-a1b2") == "body: ****"
    assert logs.redact("body: tok-cut") == "body: tok-cut"  # shorter than CUT_MIN
    assert logs.redact("tok-cut-a1b2 and more") == "tok-cut-a1b2 and more"  # not a cut


# --- short secrets -----------------------------------------------------------------------------


@pytest.mark.usefixtures("fresh_secrets")
@pytest.mark.parametrize("fmt", ["plain", "json"])
def test_a_one_character_token_never_rewrites_other_words(fmt: str) -> None:
    register_secret("t")
    register_secret(MULTILINE)  # a real token still masked in every form, beside the short one
    stream = configured(fmt)
    log = logging.getLogger("exporter.app")
    log.warning("exporter.app started on %s", "http://0.0.0.0:9464/metrics")
    log.warning("rejected token t for source support")
    for message in secret_forms_in_messages(MULTILINE):
        log.warning("poll failed: %s", message)
    text = stream.getvalue()
    first = text.splitlines()[0]
    assert "exporter.app started on http://0.0.0.0:9464/metrics" in first
    assert first.count("exporter.app") == 2  # the logger name survives too
    assert f"rejected token {logs.MASK} for source support" in text
    for piece in ("tok-twoline", "7Qx9PzR4vW", "second-line", "2mK8sT"):
        assert piece not in text
    assert text.count(logs.MASK) >= 8


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("exporter.app", "exporter.app"),
        ("Authorization: Bearer q7", f"Authorization: Bearer {logs.MASK}"),
        ('{"token": "q7"}', f'{{"token": "{logs.MASK}"}}'),
        ("https://u.test/?token=q7&x=1", f"https://u.test/?token={logs.MASK}&x=1"),
        ("q7", logs.MASK),
        ("q7q7 aq7 q7a q7_1 _q7", "q7q7 aq7 q7a q7_1 _q7"),  # inside words: left alone
        ("é q7é", "é q7é"),  # letters beyond ASCII are word characters too
    ],
)
@pytest.mark.usefixtures("fresh_secrets")
def test_a_short_secret_is_masked_only_where_it_stands_alone(text: str, masked: str) -> None:
    register_secret("q7")
    assert logs.redact(text) == masked


@pytest.mark.usefixtures("fresh_secrets")
def test_a_short_secret_is_masked_in_its_escaped_forms_as_whole_words() -> None:
    register_secret("a\nb")
    assert logs.redact("token 'a\\nb' refused") == f"token '{logs.MASK}' refused"
    assert logs.redact("url ?t=a%0Ab&x") == f"url ?t={logs.MASK}&x"
    assert logs.redact("banana\\nboat") == "banana\\nboat"


@pytest.mark.usefixtures("fresh_secrets")
def test_a_short_secret_leaves_masks_of_longer_ones_alone() -> None:
    register_secret("*")
    register_secret("tok-long-3e8a1f5c")
    assert logs.redact("a tok-long-3e8a1f5c b") == f"a {logs.MASK} b"


def test_mask_values_masks_short_values_as_whole_words_only() -> None:
    assert logs.mask_values("port t must be text", ["t"]) == f"port {logs.MASK} must be text"
    assert logs.mask_values("key tok-long-9a8b7c6d5e", ["tok-long-9a8b7c6d5e", ""]) == (
        f"key {logs.MASK}"
    )
