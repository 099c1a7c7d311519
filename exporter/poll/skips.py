"""The skip ledger: which dropped items were already reported, so each is counted and logged once.

An item the exporter cannot read (say, a run whose id no URL can hold) comes back on every poll
until it leaves the platform's newest pages; counting it each time would inflate
`agent_runs_exporter_runs_skipped_total` and flood the log. Items without an id cannot be told apart
and are reported each time.
"""

from __future__ import annotations

from collections import OrderedDict

from exporter.sources.base import Skip

MAX_REMEMBERED = 10_000


class SkipLedger:
    """A bounded memory of (source, reason, item id) already reported."""

    def __init__(self, capacity: int = MAX_REMEMBERED) -> None:
        self._capacity = capacity
        self._seen: OrderedDict[tuple[str, str, str], None] = OrderedDict()

    def first(self, source: str, skip: Skip) -> bool:
        """Say whether `skip` is reported for the first time (always True without an id)."""
        if skip.item_id is None:
            return True
        key = (source, skip.reason, skip.item_id)
        if key in self._seen:
            self._seen.move_to_end(key)
            return False
        self._seen[key] = None
        if len(self._seen) > self._capacity:
            self._seen.popitem(last=False)
        return True
