"""The command line: `run`, `check-config`, `simulate` and `demo`.

Exit codes: 0 success, 1 the daemon could not start or failed, 2 bad configuration or usage.
`--shard N --total-shards M` override the `sharding` settings.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, get_args

from exporter import __version__
from exporter.app import serve
from exporter.config.flag_source import add_shard_arguments, apply_shard_arguments
from exporter.config.models import Settings, load_settings, render_effective
from exporter.config.source import Platform
from exporter.errors import ConfigError, ConfigProblem
from exporter.logs import setup_logging
from exporter.poll.capacity import describe
from exporter.sinks.traces.exporters import resolve_protocol
from exporter.sources.budget import build_budgets
from exporter.web.config import WebConfig, load_web_config
from exporter.wiring import budget_spec

if TYPE_CHECKING:  # the simulator is imported by `simulate` and `demo` only: `run` never loads it
    from exporter.simulator.world import SimulatorSettings

log = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--log-level", default="info", choices=("debug", "info", "warning", "error")
    )
    common.add_argument("--log-format", default="plain", choices=("plain", "json"))
    return common


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with every subcommand."""
    common = _common()
    parser = argparse.ArgumentParser(
        prog="agent-runs-exporter",
        description="Export hosted AI agent runs as Prometheus metrics and OTel traces.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser("run", parents=[common], help="run the exporter daemon")
    run.add_argument("--config", required=True, metavar="FILE", help="YAML configuration file")
    add_shard_arguments(run)
    _web_config_argument(run)
    check = sub.add_parser(
        "check-config", parents=[common], help="validate a config and print it, secrets masked"
    )
    check.add_argument("--config", required=True, metavar="FILE", help="YAML configuration file")
    add_shard_arguments(check)
    _web_config_argument(check)
    sim = sub.add_parser(
        "simulate", parents=[common], help="serve fake platform APIs (no exporter)"
    )
    sim.add_argument(
        "--platform",
        default="conduit",
        choices=(*get_args(Platform), "all"),
        help="platform to fake; all: the four under /conduit, /runtype, /elizaos, /acp",
    )
    _simulator_arguments(sim, default_port=8080)
    demo = sub.add_parser(
        "demo",
        parents=[common],
        help="run the simulator and the exporter together (no account needed)",
    )
    demo.add_argument("--listen", default="127.0.0.1:9464", help="where /metrics is served")
    demo.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    demo.add_argument(
        "--dir", default="./agent-runs-exporter-demo", help="demo config, state and spans"
    )
    # No upstream rate limit by default in the demo: request budgets are a feature of their own.
    _simulator_arguments(demo, default_port=0, rate=0.2, rate_limit=0)
    return parser


def _web_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--web.config.file",
        dest="web_config_file",
        default=None,
        metavar="FILE",
        help="exporter-toolkit web config (TLS, basic auth); overrides web.config_file",
    )


def _simulator_arguments(
    parser: argparse.ArgumentParser, *, default_port: int, rate: float = 0.5, rate_limit: int = 120
) -> None:
    group = parser.add_argument_group("simulator")
    group.add_argument("--host", default="127.0.0.1", help="simulator bind address")
    group.add_argument(
        "--port", type=int, default=default_port, help="simulator port (0: any free)"
    )
    group.add_argument("--seed", type=int, default=None, help="RNG seed (default: from the clock)")
    group.add_argument("--agents", type=int, default=3, help="number of simulated agents")
    group.add_argument("--rate", type=float, default=rate, help="new runs per second per agent")
    group.add_argument("--failure-ratio", type=float, default=0.1, help="share of runs that fail")
    group.add_argument("--latency", type=float, default=0.0, help="seconds added to every answer")
    group.add_argument(
        "--error-ratio", type=float, default=0.0, help="share of answers that are 5xx"
    )
    group.add_argument(
        "--throttle-ratio", type=float, default=0.0, help="share of answers that are 429"
    )
    group.add_argument(
        "--retry-after", type=int, default=1, help="Retry-After seconds of an injected 429"
    )
    group.add_argument("--slow-ratio", type=float, default=0.0, help="share of answers sent late")
    group.add_argument(
        "--slow-seconds", type=float, default=5.0, help="delay of a slow answer (beyond a timeout)"
    )
    group.add_argument(
        "--malformed-ratio", type=float, default=0.0, help="share of answers with a truncated body"
    )
    group.add_argument(
        "--token", default=None, help="token the simulator requires (ElizaOS: as X-API-KEY)"
    )
    group.add_argument(
        "--duration-scale", type=float, default=1.0, help="multiply run durations (median ~4 s)"
    )
    group.add_argument(
        "--history", type=float, default=600.0, help="seconds of runs that exist at start"
    )
    group.add_argument(
        "--rate-limit",
        type=int,
        default=rate_limit,
        help="requests per minute per platform before 429, as Conduit does (0: no limit)",
    )
    _quirk_arguments(parser)


def _quirk_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("simulator quirks (how the real platforms depart from docs)")
    quirks = (
        (
            "--unknown-status-ratio",
            "share of ended runs with an undocumented status (Runtype, "
            "ElizaOS: muted, self, off, replaced, noMessageId)",
        ),
        ("--drift-ratio", "share of runs with one malformed optional field"),
        ("--never-ending-ratio", "ElizaOS: share of runs that never end"),
        ("--late-event-ratio", "ElizaOS: share of runs that file model calls after their end"),
    )
    for flag, text in quirks:
        group.add_argument(flag, type=float, default=0.0, help=text + " (default 0)")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return the process exit code."""
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level, args.log_format)
    handlers = {
        "run": _cmd_run,
        "check-config": _cmd_check_config,
        "simulate": _cmd_simulate,
        "demo": _cmd_demo,
    }
    try:
        return handlers[args.command](args)
    except ConfigError as exc:
        _report(exc, getattr(args, "config", None))
        return EXIT_CONFIG
    except OSError as exc:  # a port in use, an unwritable directory: say so, no traceback
        print(f"agent-runs-exporter {args.command}: cannot start: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_OK


def _report(error: ConfigError, path: str | None) -> None:
    # Name the file only if every problem is in it (a web config file's have their own names).
    in_file = path and all(p.location.startswith(path) for p in error.problems)
    where = f" in {path}" if in_file else ""
    count = len(error.problems)
    print(f"agent-runs-exporter: {count} configuration problem(s){where}:", file=sys.stderr)
    for problem in error.problems:
        print(f"  - {problem}", file=sys.stderr)
    print(
        "Fix them, then check with `agent-runs-exporter check-config --config FILE`.",
        file=sys.stderr,
    )


def _load(args: argparse.Namespace) -> tuple[Settings, WebConfig]:
    """Load the settings and the web config file they (or --web.config.file) name."""
    settings = apply_shard_arguments(load_settings(args.config), args)
    if args.web_config_file is not None:
        web = settings.web.model_copy(update={"config_file": args.web_config_file})
        settings = settings.model_copy(update={"web": web})
    return settings, load_web_config(settings.web.config_file)


def _cmd_check_config(args: argparse.Namespace) -> int:
    settings, web = _load(args)
    if settings.traces.exporter == "otlp":
        resolve_protocol(settings.traces.protocol, os.environ)  # OTEL_* variables count too
    print(f"# {args.config}: OK", end="\n")
    if web.path is not None:
        print(f"# {web.path}: OK, {web.describe()}")
    for line in budget_report(settings):
        print(f"# {line}")
    print(render_effective(settings), end="")
    return EXIT_OK


def budget_report(settings: Settings) -> list[str]:
    """Say per source what polling its agents costs against this shard's request budget."""
    sharding = settings.sharding
    budgets = build_budgets(map(budget_spec, settings.sources), shards=sharding.total_shards)
    return [
        describe(
            source.name,
            None if source.agents is None else len(sharding.select(source.name, source.agents)),
            settings.poll_interval,
            source.max_poll_interval,
            budgets[source.name].rate_per_s,
        )
        for source in settings.sources
    ]


def _cmd_run(args: argparse.Namespace) -> int:
    settings, web = _load(args)
    return asyncio.run(serve(settings, web=web))


def simulator_settings(args: argparse.Namespace) -> SimulatorSettings:
    """Build the simulator's knobs from the command line."""
    from exporter.simulator.world import SimulatorSettings  # noqa: PLC0415 - see the imports

    try:
        return SimulatorSettings(
            seed=args.seed if args.seed is not None else int(time.time()),
            agents=args.agents,
            rate=args.rate,
            failure_ratio=args.failure_ratio,
            latency=args.latency,
            error_ratio=args.error_ratio,
            throttle_ratio=args.throttle_ratio,
            retry_after=args.retry_after,
            slow_ratio=args.slow_ratio,
            slow_seconds=args.slow_seconds,
            malformed_ratio=args.malformed_ratio,
            drift_ratio=args.drift_ratio,
            token=args.token,
            duration_scale=args.duration_scale,
            history=args.history,
            rate_limit=args.rate_limit or None,
            unknown_status_ratio=args.unknown_status_ratio,
            never_ending_ratio=args.never_ending_ratio,
            late_event_ratio=args.late_event_ratio,
        )
    except ValueError as exc:
        raise ConfigError([ConfigProblem("simulator options", str(exc))]) from exc


def _cmd_simulate(args: argparse.Namespace) -> int:
    from exporter.simulator.server import run_simulator  # noqa: PLC0415 - see the imports

    run_simulator(simulator_settings(args), args.host, args.port, args.platform)
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace) -> int:
    from exporter.demo import run_demo  # noqa: PLC0415 - see the imports

    return asyncio.run(run_demo(args, simulator_settings(args)))
