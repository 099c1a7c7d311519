"""Run every benchmark in turn: `python -m bench [--tiny]`."""

from __future__ import annotations

import importlib
import sys
import time

BENCHES = ("ingest", "spans", "memory", "scrape", "freshness", "economy", "fleet")


def main(argv: list[str]) -> int:
    """Run each bench's `main(argv)`; return non-zero if any failed to run."""
    failed = []
    for name in BENCHES:
        started = time.monotonic()
        module = importlib.import_module(f"bench.{name}")
        if module.main(argv) != 0:
            failed.append(name)
        print(f"\n(bench {name} took {time.monotonic() - started:.1f}s)", flush=True)
    if failed:
        print(f"benches that failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
