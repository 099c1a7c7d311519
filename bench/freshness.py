"""Freshness bench: seconds from a run's completion upstream to its count on the exporter /metrics.

Real processes: `agent-runs-exporter simulate --platform all` (Conduit, Runtype, ElizaOS and ACP,
each with its own agents, no rate limit) and `agent-runs-exporter run` on a generated config
(`poll_interval: 5s`, configured agents, traces to a file). From the moment /readyz answers 200
this process GETs /metrics every 100 ms for a window, noting when each `agent_runs_total` value
per (source, agent, status) was first seen; at the end of the window it reads the simulator's
ground truth (every run's completion time) and keeps scraping until every run completed in the
window is counted, or a deadline passes.

How a counter increase is given to runs: the exporter counts a run once, in the poll that first
lists it terminal, and each poll reads an agent's list at one instant, so the runs it adds for
one (agent, status) are exactly those that completed since the previous read: a prefix in
completion order. So, ordering the truth's terminal runs of each (agent, status) by completion
time (ties by id), the k-th run is on /metrics at the first scrape whose value reached k (the
state starts empty, and every run lies within the lookback). Its delay is that scrape's response
time minus the run's completion time (both processes read the same host clock): an upper bound,
late by at most one scrape interval and one scrape's latency. Only runs that completed while the
exporter was ready are measured (its first poll reads the history). Were the exporter ever to
count a run after a later one, the attribution would swap their delays: the sum of the delays
stays the same, and a run never counted shows as missing.

Scraping is not free: each /metrics costs the exporter's event loop tens of milliseconds, so the
beat is 100 ms, and the table shows the scrape latency and each process's CPU share in the window.

    python -m bench.freshness [--tiny]
"""

from __future__ import annotations

import bisect
import contextlib
import datetime as dt
import itertools
import os
import re
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from bench.common import Report, free_port, median, parser, percentile
from exporter.model import Status
from exporter.simulator.platforms import PLATFORMS
from exporter.sources import acp, conduit, elizaos, runtype
from tests.e2e.processes import CliProcess, start_simulator, wait_until

POLL_INTERVAL_S = 5.0
TARGET_S = POLL_INTERVAL_S + 1.0
SCRAPE_EVERY_S = 0.1
DRAIN_S = 2 * POLL_INTERVAL_S + 2.0  # after the window: the last runs' longest honest wait
READY_TIMEOUT_S = 30.0
HTTP_TIMEOUT_S = 5.0
STATUS_MAPS: dict[str, Mapping[str, Status]] = {
    "conduit": conduit.STATUS_MAP,
    "runtype": runtype.STATUS_MAP,
    "elizaos": elizaos.STATUS_MAP,
    "acp": acp.STATUS_MAP,
}
_RUNS_LINE = re.compile(r"^agent_runs_total\{(?P<labels>[^}]*)\} (?P<value>\S+)$", re.MULTILINE)
_LABEL = re.compile(r'(\w+)="([^"]*)"')
_POLL_SECONDS = re.compile(
    r'^agent_runs_exporter_poll_duration_seconds_(?P<kind>sum|count)\{source="(?P<source>[^"]+)"\} '
    r"(?P<value>\S+)$",
    re.MULTILINE,
)

Key = tuple[str, str, str]  # (source, agent_id, status); each source is named after its platform


@dataclass(frozen=True, slots=True)
class Size:
    """How much load, for how long."""

    agents: int  # per platform
    rate: float  # new runs per second per agent
    window_s: float
    history_s: float  # runs before the start: the exporter's first poll reads them all


FULL = Size(agents=3, rate=0.6, window_s=90.0, history_s=30.0)
TINY = Size(agents=2, rate=0.6, window_s=4.0, history_s=5.0)


def simulator_args(size: Size) -> list[str]:
    """Return the `simulate` arguments: all four platforms, short runs, no rate limit."""
    return [
        "--platform", "all",
        "--seed", "7",
        "--agents", str(size.agents),
        "--rate", str(size.rate),
        "--duration-scale", "0.5",  # median run ~2 s
        "--history", str(size.history_s),
        "--rate-limit", "0",
    ]  # fmt: skip


@dataclass(frozen=True, slots=True)
class Completion:
    """One terminal run of the truth: which counter it adds to, and when it completed."""

    key: Key
    at: float  # epoch seconds
    run_id: str


@dataclass(slots=True)
class CounterLog:
    """Every value each `agent_runs_total` (summed over dispositions) took, and when first seen."""

    seen: dict[Key, list[tuple[float, float]]] = field(default_factory=dict)
    scrapes: list[tuple[float, float]] = field(default_factory=list)  # (sent, answered)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, sent: float, answered: float, counts: Mapping[Key, float]) -> None:
        """Record one scrape's values, keeping only changes."""
        with self.lock:
            self.scrapes.append((sent, answered))
            for key, value in counts.items():
                history = self.seen.setdefault(key, [])
                if not history or history[-1][1] != value:
                    history.append((answered, value))

    def reached(self, key: Key, k: int) -> float | None:
        """Return when the counter was first seen at `k` or more, or None if never."""
        with self.lock:
            history = list(self.seen.get(key, ()))
        index = bisect.bisect_left([value for _at, value in history], k)
        return history[index][0] if index < len(history) else None

    def value(self, key: Key) -> float:
        """Return the counter's latest seen value."""
        with self.lock:
            history = self.seen.get(key)
            return history[-1][1] if history else 0.0


def run_counts(exposition: str) -> dict[Key, float]:
    """Sum `agent_runs_total` per (source, agent_id, status) from the text exposition."""
    counts: dict[Key, float] = defaultdict(float)
    for match in _RUNS_LINE.finditer(exposition):
        labels = dict(_LABEL.findall(match["labels"]))
        counts[(labels["source"], labels["agent_id"], labels["status"])] += float(match["value"])
    return counts


class Scraper:
    """GET /metrics on a fixed beat from a thread of its own, into a `CounterLog`."""

    def __init__(self, url: str) -> None:
        self.log = CounterLog()
        self.last_text = ""
        self.failures = 0
        self._http = httpx.Client(base_url=url, timeout=HTTP_TIMEOUT_S)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="scraper", daemon=True)

    def __enter__(self) -> Scraper:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(HTTP_TIMEOUT_S + 1)
        self._http.close()

    def _loop(self) -> None:
        beat = time.monotonic()
        while not self._stop.is_set():
            sent = time.time()
            try:
                response = self._http.get("/metrics")
                response.raise_for_status()
            except httpx.HTTPError:
                self.failures += 1  # a gap in the record, shown in the table
            else:
                self.last_text = response.text
                self.log.note(sent, time.time(), run_counts(response.text))
            beat += SCRAPE_EVERY_S
            self._stop.wait(max(0.0, beat - time.monotonic()))


def _epoch(value: Any) -> float:
    if isinstance(value, int | float):
        return float(value) / 1000  # ElizaOS: epoch ms
    return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def completions(platform: str, truth: Mapping[str, Any]) -> list[Completion]:
    """Return the truth's terminal runs as completions, keyed like the exporter counts them."""
    statuses = STATUS_MAPS[platform]
    out = []
    for run in truth["runs"]:
        if not run["terminal"]:
            continue
        status = statuses[run["status"]].value
        ended = run["ended_at"] if platform == "elizaos" else run["completed_at"]
        out.append(Completion((platform, run["agent_id"], status), _epoch(ended), run["id"]))
    return out


def truths(url: str) -> dict[str, dict[str, Any]]:
    """Read every platform's ground truth from the simulator."""
    with httpx.Client(base_url=url, timeout=HTTP_TIMEOUT_S) as http:
        found = {}
        for platform in PLATFORMS:
            response = http.get(f"/{platform}/_simulator/truth")
            response.raise_for_status()
            found[platform] = dict(response.json())
        return found


def ranked(runs: list[Completion]) -> dict[Key, list[Completion]]:
    """Group completions per counter, in completion order: the k-th is counted at value k."""
    groups: dict[Key, list[Completion]] = defaultdict(list)
    for run in sorted(runs, key=lambda run: (run.at, run.run_id)):
        groups[run.key].append(run)
    return groups


def write_config(workdir: Path, listen: str, url: str) -> Path:
    """Write the exporter's config: one source per platform, its agents as the truth lists them."""
    sources = [
        {
            "name": platform,
            "platform": platform,
            "base_url": f"{url}/{platform}",
            "agents": [agent["id"] for agent in truth["agents"]],  # ACP: server ids
            "max_requests_per_minute": 0,
        }
        for platform, truth in truths(url).items()
    ]
    config = {
        "listen": listen,
        "poll_interval": f"{POLL_INTERVAL_S:g}s",
        "lookback": "1h",
        "state": {"path": str(workdir / "state.db")},
        "traces": {"exporter": "file", "file": str(workdir / "spans.jsonl")},
        "sources": sources,
    }
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def wait_ready(url: str, exporter: CliProcess) -> None:
    """Wait until the exporter's /readyz answers 200: every source finished its first poll."""

    def ready() -> bool:
        if exporter.returncode is not None:
            raise RuntimeError(exporter.describe())
        with contextlib.suppress(httpx.TransportError):
            return httpx.get(f"{url}/readyz", timeout=HTTP_TIMEOUT_S).status_code == 200
        return False

    wait_until(ready, timeout=READY_TIMEOUT_S, interval=0.05, what="exporter /readyz")


@dataclass(slots=True)
class Outcome:
    """What one measurement saw."""

    window: tuple[float, float]
    runs: list[Completion]
    log: CounterLog
    final_text: str
    failed_scrapes: int
    cpu: dict[str, float]  # share of one CPU per process during the window
    load: float  # the machine's 1-minute load average at the end of the window


def measure(size: Size, workdir: Path) -> Outcome:
    """Run the simulator and the exporter, scrape through the window and the drain."""
    process, sim_url = start_simulator(simulator_args(size), workdir)
    with process:
        port = free_port()
        config = write_config(workdir, f"127.0.0.1:{port}", sim_url)
        url = f"http://127.0.0.1:{port}"
        with CliProcess.start("exporter", ["run", "--config", str(config)], workdir) as exporter:
            wait_ready(url, exporter)
            pids = {"exporter": exporter.popen.pid, "simulator": process.popen.pid}
            with Scraper(url) as scraper:
                ready, before = time.time(), {name: cpu_seconds(pid) for name, pid in pids.items()}
                time.sleep(size.window_s)
                end = time.time()
                spent = {name: cpu_seconds(pid) - before[name] for name, pid in pids.items()}
                load = os.getloadavg()[0]
                runs = _drain(sim_url, scraper.log, ready, end)
    cpu = {name: seconds / (end - ready) for name, seconds in spent.items()}
    return Outcome((ready, end), runs, scraper.log, scraper.last_text, scraper.failures, cpu, load)


def cpu_seconds(pid: int) -> float:
    """Return the CPU time (user + system) a process has used so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat", encoding="utf-8") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _drain(sim_url: str, log: CounterLog, ready: float, end: float) -> list[Completion]:
    """Read the truth (the scraper goes on) and wait until the window's runs are counted."""
    runs = [
        run for platform, truth in truths(sim_url).items() for run in completions(platform, truth)
    ]
    needed = _needed(ranked(runs), ready, end)
    deadline = end + DRAIN_S
    while time.time() < deadline and any(log.value(k) < n for k, n in needed.items()):
        time.sleep(0.1)
    return runs


def _needed(groups: Mapping[Key, list[Completion]], ready: float, end: float) -> dict[Key, int]:
    """Return, per counter, the value that shows its last run completed in the window."""
    needed = {}
    for key, runs in groups.items():
        inside = [k for k, run in enumerate(runs, start=1) if ready < run.at <= end]
        if inside:
            needed[key] = inside[-1]
    return needed


@dataclass(slots=True)
class Delays:
    """Each measured run's delay per platform, and how many were never seen."""

    by_platform: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    missing: Counter[str] = field(default_factory=Counter)

    def all(self) -> list[float]:
        """Return every measured delay."""
        return [d for delays in self.by_platform.values() for d in delays]


def delays(outcome: Outcome) -> Delays:
    """Attribute each counter increase to runs in completion order and return the delays."""
    ready, end = outcome.window
    found = Delays()
    for key, runs in ranked(outcome.runs).items():
        for k, run in enumerate(runs, start=1):
            if not ready < run.at <= end:
                continue
            seen = outcome.log.reached(key, k)
            if seen is None:
                found.missing[key[0]] += 1
            else:
                found.by_platform[key[0]].append(seen - run.at)
    return found


def poll_means(exposition: str) -> dict[str, float]:
    """Return the mean poll cycle duration per source from the exporter's own histogram."""
    parts: dict[str, dict[str, float]] = defaultdict(dict)
    for match in _POLL_SECONDS.finditer(exposition):
        parts[match["source"]][match["kind"]] = float(match["value"])
    return {s: p["sum"] / p["count"] for s, p in parts.items() if p.get("count")}


def report(size: Size, outcome: Outcome, found: Delays) -> Report:
    """Build the table of figures."""
    every = found.all()
    rep = Report(f"Freshness: run completion to /metrics at poll_interval {POLL_INTERVAL_S:g}s")
    per = ", ".join(f"{p} {len(found.by_platform[p])}" for p in PLATFORMS)
    rep.add(
        f"runs measured (completed in a {size.window_s:g} s window)",
        f"{len(every)} ({per})",
        "several hundred" if size is FULL else "",
    )
    if every:
        rep.add("delay p50", _s(median(every)))
        rep.add("delay p99", _s(percentile(every, 99)), f"<= {TARGET_S:g} s (poll + 1 s)")
        rep.add("delay max", _s(max(every)))
        rep.add("delay min", _s(min(every)))
    for platform in PLATFORMS:
        mine = found.by_platform[platform]
        if mine:
            rep.add(
                f"delay p50 / p99 {platform}", f"{_s(median(mine))} / {_s(percentile(mine, 99))}"
            )
    missing = sum(found.missing.values())
    rep.add(f"runs not on /metrics within {DRAIN_S:g} s of the window", str(missing), "0")
    for source, mean in sorted(poll_means(outcome.final_text).items()):
        rep.add(f"poll cycle mean {source}", _s(mean))
    _scrape_rows(rep, outcome)
    for name, share in outcome.cpu.items():
        rep.add(f"{name} CPU in the window", f"{share:.0%} of one CPU")
    rep.add("machine load average (1 min)", f"{outcome.load:.1f} on {os.cpu_count()} CPUs")
    return rep


def _scrape_rows(rep: Report, outcome: Outcome) -> None:
    scrapes = outcome.log.scrapes
    rep.add("scrapes (failed)", f"{len(scrapes)} ({outcome.failed_scrapes})")
    gaps = [b[1] - a[1] for a, b in itertools.pairwise(scrapes)]
    took = [answered - sent for sent, answered in scrapes]
    if gaps:
        rep.add(
            "scrape interval p50 / max",
            f"{_ms(median(gaps))} / {_ms(max(gaps))}",
            f"{SCRAPE_EVERY_S * 1000:g} ms beat",
        )
        rep.add("scrape latency p50 / max", f"{_ms(median(took))} / {_ms(max(took))}")


def _s(seconds: float) -> str:
    return f"{seconds:.2f} s"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def main(argv: list[str]) -> int:
    """Measure run freshness end to end and print the table."""
    args = parser(__doc__.splitlines()[0] if __doc__ else "freshness").parse_args(argv)
    size = TINY if args.tiny else FULL
    with tempfile.TemporaryDirectory(prefix="bench-freshness-") as tmp:
        outcome = measure(size, Path(tmp))
    report(size, outcome, delays(outcome)).print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
