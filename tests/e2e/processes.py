"""Start, watch and stop the command-line processes of the end-to-end tests; every wait bounded.

    with CliProcess.start("simulator", ["simulate", "--port", "0"], workdir) as sim:
        url = sim.wait_for_output(r"listening on (\\S+)", timeout=15)[1]
        ...
        code = sim.stop()  # SIGTERM, then SIGKILL after the timeout; returns the exit code

Output goes to `<workdir>/<name>.stdout.log` and `.stderr.log`, so a failing test can show it.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar

T = TypeVar("T")

STOP_TIMEOUT_S = 10.0
KILL_TIMEOUT_S = 5.0
_HERMETIC_PREFIXES = ("AGENT_RUNS_EXPORTER_", "OTEL_")


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port on `host` that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def cli_command(*args: str) -> list[str]:
    """Return argv running `agent-runs-exporter ARGS`, preferring the installed console script."""
    script = Path(sys.executable).with_name("agent-runs-exporter")
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-m", "exporter", *args]


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return this environment without exporter or OTel overrides, plus `extra`."""
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(_HERMETIC_PREFIXES)
    }
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def wait_until(
    probe: Callable[[], T | None], *, timeout: float, interval: float = 0.2, what: str
) -> T:
    """Call `probe` until it returns something other than None or False; raise after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None and value is not False:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def terminate(popen: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT_S) -> int | None:
    """Send SIGTERM and return the exit code; kill it (returning None) after `timeout`."""
    if popen.poll() is not None:
        return popen.returncode
    popen.send_signal(signal.SIGTERM)
    try:
        return popen.wait(timeout)
    except subprocess.TimeoutExpired:
        kill(popen)
        return None


def kill(popen: subprocess.Popen[bytes]) -> None:
    """Kill a process (idempotent) and reap it, waiting a bounded time."""
    if popen.poll() is None:
        popen.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):  # SIGKILL does not fail in practice
        popen.wait(KILL_TIMEOUT_S)


class StopsOnExit:
    """A context manager whose exit calls `stop()`: every process or server the tests start."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> object:
        """Stop what was started (idempotent)."""
        raise NotImplementedError


class CliProcess(StopsOnExit):
    """One `agent-runs-exporter` child process with its output captured in files."""

    def __init__(self, name: str, popen: subprocess.Popen[bytes], stdout: Path, stderr: Path):
        self.name = name
        self.popen = popen
        self.stdout_path = stdout
        self.stderr_path = stderr

    @classmethod
    def start(
        cls,
        name: str,
        args: Sequence[str],
        workdir: Path,
        env: Mapping[str, str] | None = None,
    ) -> CliProcess:
        """Start `agent-runs-exporter ARGS` in `workdir`, output to `<workdir>/<name>.*.log`."""
        return cls.spawn(name, cli_command(*args), workdir, env)

    @classmethod
    def spawn(
        cls,
        name: str,
        argv: Sequence[str],
        workdir: Path,
        env: Mapping[str, str] | None = None,
    ) -> CliProcess:
        """Start any program `argv` in `workdir`, output to `<workdir>/<name>.*.log`."""
        stdout, stderr = workdir / f"{name}.stdout.log", workdir / f"{name}.stderr.log"
        with stdout.open("wb") as out, stderr.open("wb") as err:
            popen = subprocess.Popen(
                list(argv),
                cwd=workdir,
                env=child_env(env),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
            )
        return cls(name, popen, stdout, stderr)

    @property
    def returncode(self) -> int | None:
        """Return the exit code, or None while the process runs."""
        return self.popen.poll()

    def stdout(self) -> str:
        """Return everything the process wrote to stdout so far."""
        return self.stdout_path.read_text(encoding="utf-8", errors="replace")

    def stderr(self) -> str:
        """Return everything the process wrote to stderr so far."""
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def describe(self) -> str:
        """Return the exit state and the tail of both outputs, for assertion messages."""
        return (
            f"--- {self.name} (exit code {self.returncode}) stdout:\n{self.stdout()[-4000:]}\n"
            f"--- {self.name} stderr:\n{self.stderr()[-8000:]}"
        )

    def wait_for_output(self, pattern: str, timeout: float) -> re.Match[str]:
        """Wait until stdout matches `pattern` and return the match; fail if the process exits."""

        def probe() -> re.Match[str] | None:
            match = re.search(pattern, self.stdout())
            if match is None and self.returncode is not None:
                raise RuntimeError(
                    f"{self.name} exited before printing {pattern!r}\n" + self.describe()
                )
            return match

        return wait_until(probe, timeout=timeout, interval=0.05, what=f"{self.name}: {pattern}")

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int | None:
        """Send SIGTERM and return the exit code; kill it (returning None) after `timeout`."""
        return terminate(self.popen, timeout)

    def kill(self) -> None:
        """Kill the process (idempotent) and reap it, waiting a bounded time."""
        kill(self.popen)


def run_cli(
    args: Sequence[str],
    workdir: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 30.0,
) -> subprocess.CompletedProcess[str]:
    """Run `agent-runs-exporter ARGS` to completion (bounded) and return its result."""
    return subprocess.run(
        cli_command(*args),
        cwd=workdir,
        env=child_env(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_simulator(
    args: Sequence[str], workdir: Path, timeout: float = 20.0
) -> tuple[CliProcess, str]:
    """Start `agent-runs-exporter simulate ARGS --port 0`; return it and the URL it printed."""
    process = CliProcess.start("simulator", ["simulate", *args, "--port", "0"], workdir)
    try:
        match = process.wait_for_output(r"listening on (http://127\.0\.0\.1:\d+)", timeout)
    except BaseException:
        process.stop()
        raise
    return process, match[1]
