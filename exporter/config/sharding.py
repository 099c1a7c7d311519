"""Shard assignment: which (source, agent) pairs this exporter instance polls.

Several exporters with the same configuration and `--total-shards M` split the agents between
them, each taking `--shard N` (0 <= N < M). Every pair goes to exactly one shard, chosen by
rendezvous (highest random weight) hashing over SHA-256, so the choice is the same in every
process and on every machine, and changing M moves only the pairs that must move (about 1/M).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["ShardingSettings", "owner", "owns", "select"]


def _weight(source: str, agent_id: str, shard: int) -> int:
    key = f"{source}\x00{agent_id}\x00{shard}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big")


def owner(source: str, agent_id: str, total_shards: int) -> int:
    """Return the shard (0 to total_shards - 1) that polls `agent_id` of `source`."""
    if total_shards < 1:
        raise ValueError(f"total_shards must be at least 1, got {total_shards}")
    return max(range(total_shards), key=lambda shard: _weight(source, agent_id, shard))


def owns(source: str, agent_id: str, shard: int, total_shards: int) -> bool:
    """Say whether shard `shard` of `total_shards` polls `agent_id` of `source`."""
    return total_shards == 1 or owner(source, agent_id, total_shards) == shard


class ShardingSettings(BaseModel):
    """This instance's shard: `shard` of `total_shards` (0 of 1 polls every agent)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    shard: int = Field(default=0, ge=0)
    total_shards: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _check_shard(self) -> ShardingSettings:
        if self.shard >= self.total_shards:
            raise ValueError(
                f"shard must be below total_shards ({self.shard} >= {self.total_shards}); "
                f"shards are numbered 0 to {self.total_shards - 1}"
            )
        return self

    def owns(self, source: str, agent_id: str) -> bool:
        """Say whether this shard polls `agent_id` of `source`."""
        return owns(source, agent_id, self.shard, self.total_shards)

    def select(self, source: str, agent_ids: Iterable[str]) -> list[str]:
        """Return the agent ids of `source` that this shard polls, in their order."""
        return select(source, agent_ids, self.shard, self.total_shards)


def select(source: str, agent_ids: Iterable[str], shard: int, total_shards: int) -> list[str]:
    """Return the agent ids of `source` that shard `shard` of `total_shards` polls."""
    return [agent for agent in agent_ids if owns(source, agent, shard, total_shards)]
