"""Fixtures shared by the unit tests."""

from __future__ import annotations

import pytest

from exporter import logs


@pytest.fixture
def fresh_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let a test register secrets (short ones too) without masking later tests' log lines.

    The registry is process-wide by design (every formatter reads it); the test gets a copy that
    is dropped afterwards.
    """
    monkeypatch.setattr(logs, "_SECRETS", set(logs._SECRETS))
    monkeypatch.setattr(logs, "_FORMS", list(logs._FORMS))
    monkeypatch.setattr(logs, "_SHORT", list(logs._SHORT))
