"""Bounded bcrypt work for basic auth: a fair share per client, and a dummy hash of equal cost.

    a check ─► its client already has PER_CLIENT checks waiting or running? refused (`busy`)
            ─► MAX_WAITING checks waiting or running in all?                 refused (`busy`)
            ─► else queued for one of WORKERS threads

So a flood of wrong passwords from one address holds two places and refuses the rest at once,
without bcrypt work: a scraper at another address waits for at most those (and for at most
MAX_WAITING checks whatever the number of flooding addresses), and the cache in `web.auth` makes
its later scrapes free. An unknown user is checked against a dummy hash of the configured users'
highest cost, so an htpasswd-default (cost 5) user is as slow to refuse as a name that does not
exist.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Callable, Iterable

import bcrypt

WORKERS = 2  # bcrypt checks running at once (threads): a flood keeps at most two cores busy
PER_CLIENT = 2  # checks one client address may have waiting or running
MAX_WAITING = 32  # checks waiting or running in all
DEFAULT_COST = 10
_COST = re.compile(rb"^\$2[abxy]?\$(\d\d)\$")


def cost(hashed: bytes) -> int | None:
    """Return the cost factor of a bcrypt hash (`$2b$05$...` is 5), or None if it is not one."""
    match = _COST.match(hashed)
    return int(match[1]) if match else None


def dummy_hash(hashes: Iterable[bytes]) -> bytes:
    """Return the hash of a password nobody has, at the highest cost among `hashes`."""
    rounds = max((c for h in hashes if (c := cost(h)) is not None), default=DEFAULT_COST)
    return bcrypt.hashpw(b"no user has this password", bcrypt.gensalt(min(max(rounds, 4), 31)))


class CheckQueue:
    """Runs bcrypt checks in WORKERS threads, each client address holding at most PER_CLIENT."""

    def __init__(
        self, workers: int = WORKERS, per_client: int = PER_CLIENT, limit: int = MAX_WAITING
    ) -> None:
        self._workers = asyncio.Semaphore(workers)
        self._per_client = per_client
        self._limit = limit
        self._held: Counter[str] = Counter()

    async def run(self, client: str, check: Callable[[], bool]) -> bool | None:
        """Return what `check` says, run in a thread; None (not run) when there is no place."""
        if self._held[client] >= self._per_client or self._held.total() >= self._limit:
            return None
        self._held[client] += 1
        try:
            async with self._workers:
                return await asyncio.to_thread(check)
        finally:
            self._held[client] -= 1
            if not self._held[client]:
                del self._held[client]
