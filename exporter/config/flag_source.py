"""The `--shard N --total-shards M` flags: a settings source above the file and the environment.

`add_shard_arguments` puts them on a subcommand; `apply_shard_arguments` lays them over the
loaded settings, checked by the same model as `sharding:` in the file (one problem line each).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from pydantic import ValidationError

from exporter.config.models import Settings
from exporter.config.sharding import ShardingSettings
from exporter.errors import ConfigError, ConfigProblem

LOCATION = "--shard/--total-shards"


def _count(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


def add_shard_arguments(parser: argparse.ArgumentParser) -> None:
    """Add `--shard` and `--total-shards` to a subcommand."""
    group = parser.add_argument_group("sharding (overrides sharding.* in the config)")
    group.add_argument(
        "--shard", type=_count(0), default=None, metavar="N", help="this instance's shard, 0..M-1"
    )
    group.add_argument(
        "--total-shards",
        type=_count(1),
        default=None,
        metavar="M",
        help="how many exporters share the agents (1: this one polls them all)",
    )


def apply_shard_arguments(settings: Settings, args: argparse.Namespace) -> Settings:
    """Return `settings` with the shard flags applied, or raise ConfigError if they conflict."""
    if args.shard is None and args.total_shards is None:
        return settings
    current = settings.sharding
    try:
        sharding = ShardingSettings(
            shard=current.shard if args.shard is None else args.shard,
            total_shards=current.total_shards if args.total_shards is None else args.total_shards,
        )
    except ValidationError as exc:
        messages = [error["msg"].removeprefix("Value error, ") for error in exc.errors()]
        raise ConfigError([ConfigProblem(LOCATION, message) for message in messages]) from None
    return settings.model_copy(update={"sharding": sharding})
