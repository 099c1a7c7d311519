"""Shared pieces of the end-to-end tests: the `e2e` marker and a real OTLP/HTTP receiver."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.otlp_receiver import OtlpReceiver


def pytest_configure(config: pytest.Config) -> None:
    """Register the `e2e` marker (deselect with `-m "not e2e"`)."""
    config.addinivalue_line(
        "markers", "e2e: end-to-end test with real processes on 127.0.0.1 (slow)"
    )


@pytest.fixture
def otlp_receiver() -> Iterator[OtlpReceiver]:
    """Yield a real OTLP/HTTP trace receiver on 127.0.0.1, stopped afterwards."""
    with OtlpReceiver() as receiver:
        yield receiver
