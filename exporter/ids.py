"""Trace and span ids for a run, derived so that a re-export is identical.

The trace id joins the run's spans with whatever the platform's agent backend emitted under its own
trace id; when there is none usable, it is derived from (source, run id).
"""

from __future__ import annotations

import hashlib
import re

_HEX32 = re.compile(r"[0-9a-f]{32}")
_HEX16 = re.compile(r"[0-9a-f]{16}")
_ZERO_TRACE = "0" * 32


def _digest(*parts: str) -> bytes:
    return hashlib.sha256("\x1f".join(parts).encode()).digest()


def run_trace_id(source: str, run_id: str, upstream_trace_id: str | None) -> str:
    """Return the 32-hex trace id for a run's spans (and its exemplar).

    A 32-hex upstream id is used as is, a 16-hex one is left-padded with zeros (the usual rule for
    64-bit ids); anything else is replaced by an id derived from (source, run id).
    """
    if upstream_trace_id:
        candidate = upstream_trace_id.strip().lower()
        if _HEX32.fullmatch(candidate) and candidate != _ZERO_TRACE:
            return candidate
        if _HEX16.fullmatch(candidate) and candidate != "0" * 16:
            return candidate.rjust(32, "0")
    derived = _digest("trace", source, run_id)[:16].hex()
    return derived if derived != _ZERO_TRACE else "1".rjust(32, "0")


def span_id(source: str, run_id: str, step: int | str) -> str:
    """Return the 16-hex span id of step `step` of a run ("root" names the run's own span)."""
    derived = _digest("span", source, run_id, str(step))[:8].hex()
    return derived if derived != "0" * 16 else "1".rjust(16, "0")
