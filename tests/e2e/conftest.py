"""Fixtures of the end-to-end tests: a real OTLP/HTTP receiver and the simulator as a process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.otlp_receiver import OtlpReceiver
from tests.e2e.processes import CliProcess

SIMULATOR_START_TIMEOUT_S = 20.0


def pytest_configure(config: pytest.Config) -> None:
    """Register the `e2e` marker (deselect with `-m "not e2e"`)."""
    config.addinivalue_line(
        "markers", "e2e: end-to-end test with real processes on 127.0.0.1 (slow)"
    )


@pytest.fixture
def otlp_receiver() -> Iterator[OtlpReceiver]:
    """Yield a real OTLP/HTTP trace receiver on 127.0.0.1."""
    with OtlpReceiver() as receiver:
        yield receiver


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """Return the directory for the processes' config, state and output files."""
    return tmp_path


def start_simulator(workdir: Path, args: list[str]) -> tuple[CliProcess, str]:
    """Start `agent-runs-exporter simulate ARGS --port 0` and return it with its base URL."""
    process = CliProcess.start("simulator", ["simulate", *args, "--port", "0"], workdir)
    try:
        match = process.wait_for_output(
            r"listening on (http://127\.0\.0\.1:\d+)", SIMULATOR_START_TIMEOUT_S
        )
    except BaseException:
        process.stop()
        raise
    return process, match[1]
