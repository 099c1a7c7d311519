"""The measured process of `bench.memory`: the real exporter pipeline, polled on a simulated clock.

    python -m bench.memory_pipeline URL STATE_DIR --end T [--poll-interval S] [--checkpoint S]
                                    [--traces] [--tracemalloc N [--tracemalloc-frames F]]

It builds the real `Exporter` (Conduit source, SQLite state file, lookback 1h), then for each poll
interval moves the clock, tells the upstream the time (`POST /_bench/clock`) and runs one
`poll_once`. It prints one JSON object per line: `start` (RSS after imports and after start-up),
`checkpoint` (RSS, peak, state file sizes), `end`. It imports only what the exporter needs, so its
peak RSS is the pipeline's own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import tracemalloc
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from exporter.app import Exporter
from exporter.config.models import Settings, StateSettings, TracesSettings
from exporter.config.source import SourceSettings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.trace.export import SpanExporter

START_S = 1_800_000_000.0  # bench.conduit_stream.T0_MS in seconds
LOOKBACK_S = 3600.0


def status_kib(field: str) -> int:
    """Return a `/proc/self/status` figure (VmRSS, VmHWM) in KiB."""
    with open("/proc/self/status", encoding="utf-8") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"no {field} in /proc/self/status")


def state_bytes(path: Path) -> dict[str, int]:
    """Return the sizes of the state file and its -wal and -shm companions."""
    sizes = {}
    for suffix in ("", "-wal", "-shm"):
        file = Path(f"{path}{suffix}")
        sizes["db" + suffix.replace("-", "_")] = file.stat().st_size if file.exists() else 0
    return sizes


def emit(kind: str, **figures: Any) -> None:
    """Print one JSON line for the parent bench."""
    print(json.dumps({"kind": kind, **figures}), flush=True)


class SimClock:
    """The injected clock: it moves only when the bench moves it."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def build(url: str, state: Path, poll_s: float, traces: bool, clock: SimClock) -> Exporter:
    """Build the real exporter for one Conduit source at `url` (traces to a discarding sink)."""
    source = SourceSettings(
        name="conduit",
        platform="conduit",
        base_url=url,
        token=SecretStr("bench-token"),
        workspace_id="j57bench",
        max_requests_per_minute=0,  # no request budget: the simulated clock outruns it
    )
    settings = Settings(
        listen="127.0.0.1:0",
        poll_interval=poll_s,
        lookback=LOOKBACK_S,
        state=StateSettings(path=str(state)),
        traces=TracesSettings(exporter="otlp" if traces else "none"),
        sources=[source],
    )
    span_exporter = _discarding() if traces else None
    return Exporter(settings, clock=clock, span_exporter=span_exporter, environ={})


def _discarding() -> SpanExporter:
    """Return a span exporter that drops every span at once (the collector is not measured)."""
    from opentelemetry.sdk.trace.export import (  # noqa: PLC0415 - only when traces are measured
        SpanExporter,
        SpanExportResult,
    )

    class Discard(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    return Discard()


async def stream(args: argparse.Namespace) -> None:
    """Poll from the start to `args.end` on the simulated clock, reporting at checkpoints."""
    imported_kib = status_kib("VmRSS")
    if args.tracemalloc:
        tracemalloc.start(args.tracemalloc_frames)
    clock = SimClock(START_S)
    state = Path(args.state_dir) / "state.db"
    exporter = build(args.url, state, args.poll_interval, args.traces, clock)
    runtime = exporter.runtimes[0]
    emit("start", imported_kib=imported_kib, started_kib=status_kib("VmRSS"))
    control = _Control(args.url)
    started = time.monotonic()
    next_checkpoint = START_S + args.checkpoint
    polls = 0
    while clock.now < args.end:
        clock.now = min(clock.now + args.poll_interval, args.end)
        control.set_time(clock.now)
        await exporter.poller.poll_once(runtime)
        polls += 1
        if clock.now >= next_checkpoint or clock.now >= args.end:
            next_checkpoint += args.checkpoint
            _checkpoint(exporter, clock.now, state, started, polls)
    await exporter.close()
    control.close()
    emit("end", seconds=time.monotonic() - started, polls=polls, **_figures(exporter, state))
    if args.tracemalloc:
        emit("tracemalloc", top=_top_allocations(args.tracemalloc))


def _top_allocations(count: int) -> list[str]:
    """Describe the `count` source lines holding the most traced memory now."""
    snapshot = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(False, tracemalloc.__file__)]
    )
    key = "traceback" if tracemalloc.get_traceback_limit() > 1 else "lineno"
    lines = []
    for stat in snapshot.statistics(key)[:count]:
        frames = " <- ".join(f"{f.filename}:{f.lineno}" for f in stat.traceback)
        lines.append(f"{stat.size / 1024:9.1f} KiB {stat.count:8d} blocks  {frames}")
    _, peak = tracemalloc.get_traced_memory()
    lines.append(f"traced peak {peak / 1024 / 1024:.1f} MiB")
    return lines


def _checkpoint(exporter: Exporter, now: float, state: Path, started: float, polls: int) -> None:
    emit(
        "checkpoint",
        sim_s=now - START_S,
        seconds=time.monotonic() - started,
        polls=polls,
        **_figures(exporter, state),
    )


def _figures(exporter: Exporter, state: Path) -> dict[str, Any]:
    return {
        "rss_kib": status_kib("VmRSS"),
        "hwm_kib": status_kib("VmHWM"),
        "counted": sum(runtime.counted for runtime in exporter.runtimes),
        "tracked": len(exporter.tracker),
        "requests": _requests(exporter),
        **state_bytes(state),
    }


def _requests(exporter: Exporter) -> int:
    """Return how many upstream requests the exporter made (its own self-metric)."""
    name = "agent_runs_exporter_api_requests_total"
    samples = (s for m in exporter.registry.collect() for s in m.samples if s.name == name)
    return round(sum(sample.value for sample in samples))


class _Control:
    """The bench-only control call that sets the upstream's simulated time."""

    def __init__(self, url: str) -> None:
        import httpx  # noqa: PLC0415 - already loaded by the exporter; kept out of its namespace

        self._client = httpx.Client(base_url=url, timeout=30.0)

    def set_time(self, now: float) -> None:
        """Tell the upstream it is `now` (epoch seconds)."""
        self._client.post("/_bench/clock", params={"t": repr(now)}).raise_for_status()

    def close(self) -> None:
        """Close the connection."""
        self._client.close()


def parse(argv: Sequence[str]) -> argparse.Namespace:
    """Parse the child's command line."""
    args = argparse.ArgumentParser(description=__doc__)
    args.add_argument("url")
    args.add_argument("state_dir")
    args.add_argument("--end", type=float, required=True, help="last simulated epoch second")
    args.add_argument("--poll-interval", type=float, default=15.0)
    args.add_argument("--checkpoint", type=float, default=86400.0, help="simulated seconds")
    args.add_argument("--traces", action="store_true", help="export spans to a discarding sink")
    args.add_argument("--tracemalloc", type=int, default=0, metavar="N", help="print top N sites")
    args.add_argument("--tracemalloc-frames", type=int, default=1, metavar="F")
    return args.parse_args(argv)


def main(argv: list[str]) -> int:
    """Run the pipeline as the parent bench asked."""
    asyncio.run(stream(parse(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
