"""Memory: the exporter's peak RSS and state-file size after a week of runs, with `lookback: 1h`.

A million Conduit runs (20,000 with `--tiny`) are streamed over a simulated week (a few simulated
hours with `--tiny`) by an upstream served from this process (`bench.conduit_stream`). The real
exporter pipeline runs in a child process (`bench.memory_pipeline`) on an injected clock, one
`poll_once` per simulated poll interval, with its SQLite state file in a temporary directory. The
child's VmHWM is the peak RSS: neither the upstream nor this process counts. Both figures must stay
flat, bounded by the lookback window rather than growing with history; a checkpoint line is printed
each simulated day (half hour with `--tiny`) to show it. Metrics only is the main figure; `--traces
on|both` also measures span export (detail fetches, spans to a discarding exporter).

The bench polls every 60 simulated seconds (the exporter's default is 15 s): each poll then reads
one full page per agent instead of re-reading mostly known runs. `--poll-interval 15` takes about
four times as long; on 20,000 runs it gave the same peak RSS.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from argparse import Namespace
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from bench import common, conduit_stream

TARGET_PEAK_MB = 80
TAIL_S = 1200.0  # after the last run is created: long enough for every run but the stuck to end
KIB_PER_MB = 1024


@dataclass(slots=True)
class Measurement:
    """What one child pipeline reported."""

    traces: bool
    start: dict[str, Any] = field(default_factory=dict)
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    end: dict[str, Any] = field(default_factory=dict)
    tracemalloc: list[str] = field(default_factory=list)


def _mb(kib: float) -> str:
    return f"{kib / KIB_PER_MB:.1f} MiB"


def _size(figures: dict[str, Any]) -> str:
    db, wal, shm = figures["db"], figures["db_wal"], figures["db_shm"]
    return f"{(db + wal + shm) / 2**20:.2f} MiB (db {db / 2**20:.2f} + wal {wal / 2**20:.2f})"


def _print_checkpoint(figures: dict[str, Any], tiny: bool, total: int) -> None:
    sim_s = figures["sim_s"]
    when = f"{sim_s / 3600:5.1f} h" if tiny else f"day {sim_s / 86400:3.1f}"
    runs = min(total, conduit_stream.created_by(conduit_stream.T0_MS + round(sim_s * 1000)))
    print(
        f"  {when} | runs {runs:>9,} | counted {figures['counted']:>9,} | "
        f"tracked {figures['tracked']:>6,} | RSS {_mb(figures['rss_kib'])} | "
        f"peak {_mb(figures['hwm_kib'])} | state {_size(figures)} | {figures['seconds']:6.1f} s",
        flush=True,
    )


def _child_argv(url: str, state_dir: str, end_s: float, args: Namespace, traces: bool) -> list[str]:
    argv = [sys.executable, "-m", "bench.memory_pipeline", url, state_dir, "--end", repr(end_s)]
    argv += ["--poll-interval", repr(args.poll_interval), "--checkpoint", repr(args.checkpoint)]
    if traces:
        argv.append("--traces")
    if args.tracemalloc:
        argv += ["--tracemalloc", str(args.tracemalloc)]
    return argv


def _lines(child: subprocess.Popen[str]) -> Iterator[dict[str, Any]]:
    assert child.stdout is not None
    for line in child.stdout:
        if line.startswith("{"):
            yield json.loads(line)
        else:
            print(f"  (pipeline) {line.rstrip()}", flush=True)


def measure(args: Namespace, total: int, traces: bool) -> Measurement:
    """Stream `total` runs through one child pipeline; return what it reported."""
    upstream = conduit_stream.Upstream(args.agents, total)
    url = upstream.start()
    end_s = conduit_stream.T0_MS / 1000 + conduit_stream.span_s(total) + TAIL_S
    result = Measurement(traces)
    print(f"\n### traces {'on (discarding exporter)' if traces else 'off'}", flush=True)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-memory-") as state_dir:
            argv = _child_argv(url, state_dir, end_s, args, traces)
            with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) as child:
                for report in _lines(child):
                    _collect(result, report, args.tiny, total)
            if child.returncode != 0:
                raise RuntimeError(f"the pipeline exited with {child.returncode}")
    finally:
        upstream.stop()
    result.end["requests"] = upstream.requests
    return result


def _collect(result: Measurement, report: dict[str, Any], tiny: bool, total: int) -> None:
    kind = report.pop("kind")
    if kind == "start":
        result.start = report
        print(
            f"  start | after imports RSS {_mb(report['imported_kib'])} | after start-up "
            f"RSS {_mb(report['started_kib'])}",
            flush=True,
        )
    elif kind == "checkpoint":
        result.checkpoints.append(report)
        _print_checkpoint(report, tiny, total)
    elif kind == "end":
        result.end = report
    elif kind == "tracemalloc":
        result.tracemalloc = report["top"]
        print("\n".join(["  tracemalloc, top sites at the end:", *result.tracemalloc]))


def add_rows(report: common.Report, result: Measurement, total: int, expected: int) -> None:
    """Add one pipeline's figures to the report."""
    mode = "traces on" if result.traces else "metrics only"
    end, first = result.end, result.checkpoints[0]
    peaks = [c["hwm_kib"] for c in result.checkpoints]
    sizes = [c["db"] + c["db_wal"] + c["db_shm"] for c in result.checkpoints]
    report.add(f"{mode}: RSS after imports (baseline)", _mb(result.start["imported_kib"]))
    report.add(f"{mode}: RSS after start-up", _mb(result.start["started_kib"]))
    report.add(
        f"{mode}: peak RSS (VmHWM) after {total:,} runs",
        _mb(end["hwm_kib"]),
        f"<= {TARGET_PEAK_MB} MiB",
    )
    report.add(
        f"{mode}: peak RSS at first checkpoint -> end",
        f"{_mb(first['hwm_kib'])} -> {_mb(end['hwm_kib'])} (+{_mb(end['hwm_kib'] - peaks[0])})",
        "flat",
    )
    report.add(f"{mode}: final state file", _size(end), "flat")
    report.add(
        f"{mode}: largest state file at a checkpoint", f"{max(sizes) / 2**20:.2f} MiB", "flat"
    )
    report.add(f"{mode}: runs/s of the whole stream", common.rate(total, end["seconds"]))
    report.add(f"{mode}: runs counted / finished upstream", f"{end['counted']:,} / {expected:,}")
    report.add(f"{mode}: polls / upstream requests", f"{end['polls']:,} / {end['requests']:,}")


def main(argv: list[str]) -> int:
    """Stream the runs through the pipeline (metrics only, then maybe traces) and report."""
    args = _parse(argv)
    total = args.runs or (20_000 if args.tiny else 1_000_000)
    args.checkpoint = args.checkpoint or (1800.0 if args.tiny else 86400.0)
    expected = total - conduit_stream.stuck(total)
    modes = {"off": (False,), "on": (True,), "both": (False, True)}[args.traces]
    span = conduit_stream.span_s(total)
    print(
        f"streaming {total:,} runs of {args.agents} agents over {span / 86400:.2f} simulated "
        f"days, polling every {args.poll_interval:g} s, lookback 1h",
        flush=True,
    )
    started = time.monotonic()
    results = [measure(args, total, traces) for traces in modes]
    report = common.Report(f"memory: {total:,} runs over {span / 86400:.2f} simulated days")
    for result in results:
        add_rows(report, result, total, expected)
    report.add("wall time of the bench", f"{time.monotonic() - started:.1f} s")
    report.print()
    return 0


def _parse(argv: list[str]) -> Namespace:
    parser = common.parser("Peak RSS and state-file size after a simulated week of runs.")
    parser.add_argument("--runs", type=int, default=0, help="runs to stream (default 1,000,000)")
    parser.add_argument("--agents", type=int, default=4, help="agents the runs are spread over")
    parser.add_argument("--poll-interval", type=float, default=60.0, help="simulated seconds")
    parser.add_argument("--checkpoint", type=float, default=0.0, help="simulated seconds")
    parser.add_argument(
        "--traces", choices=("off", "on", "both"), default="off", help="measure span export too"
    )
    parser.add_argument(
        "--tracemalloc",
        type=int,
        default=0,
        metavar="N",
        help="trace allocations in the pipeline and print the top N sites",
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
