"""What every benchmark shares: its command line, timing statistics, RSS and the result table.

Each bench prints one table of `figure | value | target` rows. Targets are printed for reading,
never asserted: the figures depend on the machine, and CI runs the benches only so they never rot.
"""

from __future__ import annotations

import abc
import argparse
import asyncio
import contextlib
import math
import os
import platform
import resource
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field


@dataclass(slots=True)
class Report:
    """The figures of one bench, printed as a table."""

    title: str
    rows: list[tuple[str, str, str]] = field(default_factory=list)

    def add(self, figure: str, value: str, target: str = "") -> None:
        """Add one row: what was measured, its value, and the target it is read against."""
        self.rows.append((figure, value, target))

    def print(self) -> None:
        """Print the report as a Markdown table, headed by the machine it ran on."""
        print(f"\n## {self.title}\n\n{machine()}\n")
        width = max((len(r[0]) for r in self.rows), default=6)
        print(f"| {'figure':<{width}} | value | target |")
        print(f"| {'-' * width} | --- | --- |")
        for figure, value, target in self.rows:
            print(f"| {figure:<{width}} | {value} | {target} |")
        sys.stdout.flush()


def parser(description: str) -> argparse.ArgumentParser:
    """Return an argument parser with the `--tiny` switch every bench has."""
    args = argparse.ArgumentParser(description=description)
    args.add_argument(
        "--tiny", action="store_true", help="run at a tiny size (CI: checks it runs, not speed)"
    )
    return args


def machine() -> str:
    """Describe the machine and the date in one line."""
    cpus = os.cpu_count() or 0
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return (
        f"{when} · {platform.machine()} · {cpus} CPUs · {_cpu_model()} · "
        f"Python {platform.python_version()}"
    )


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def median(values: Sequence[float]) -> float:
    """Return the median of `values`."""
    return statistics.median(values)


def percentile(values: Sequence[float], q: float) -> float:
    """Return the `q`-th percentile (0-100) of `values`, nearest-rank."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    rank = min(len(ordered), max(1, math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


def peak_rss_mb() -> float:
    """Return this process's peak resident set size in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb(pid: int | None = None) -> float:
    """Return a process's current resident set size in MiB (Linux /proc)."""
    with open(f"/proc/{pid or os.getpid()}/status", encoding="utf-8") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise OSError("no VmRSS in /proc status")


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def rate(count: float, seconds: float) -> str:
    """Format `count / seconds` as a per-second figure with thousands separators."""
    return f"{count / seconds:,.0f}/s" if seconds > 0 else "n/a"


class Http1Connection(asyncio.Protocol, abc.ABC):
    """A bare keep-alive HTTP/1.1 connection for the benches' local servers.

    Each complete request (head, and a body of `content-length` bytes) is passed to `answer`,
    whose bytes (a whole response) are written back; so a server costs the bench next to nothing.
    """

    def __init__(self) -> None:
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head = self.buffer[:end].lower()
            length = 0
            for line in head.split(b"\r\n")[1:]:
                if line.startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if len(self.buffer) < end + 4 + length:
                return  # the body is still arriving
            body = self.buffer[end + 4 : end + 4 + length]
            self.buffer = self.buffer[end + 4 + length :]
            self.transport.write(self.answer(head, body))

    @abc.abstractmethod
    def answer(self, head: bytes, body: bytes) -> bytes:
        """Return the whole response to one request (`head` is lower-cased)."""


def response(status: int, body: bytes, content_type: str = "application/json") -> bytes:
    """Return a whole HTTP/1.1 response with a `content-length`."""
    reason = {200: "OK", 404: "Not Found"}.get(status, "Error")
    head = f"HTTP/1.1 {status} {reason}\r\ncontent-type: {content_type}\r\n"
    return (head + f"content-length: {len(body)}\r\n\r\n").encode() + body


@contextlib.contextmanager
def child(module: str, *args: str) -> Iterator[str]:
    """Run `python -m module args` until the block ends; yield its `ready ...` line."""
    process = subprocess.Popen(
        [sys.executable, "-m", module, *args], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        if not line.startswith("ready"):
            raise RuntimeError(f"{module} did not start (said {line!r})")
        yield line
    finally:
        process.terminate()
        process.wait(timeout=10)
