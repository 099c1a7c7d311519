"""Settings for every test: property tests are judged by their examples, never by their time.

Hypothesis's per-example deadline (200 ms by default) is a timed assertion, and timed assertions
flake on a shared machine; speed is measured by `bench/` instead.
"""

from __future__ import annotations

from hypothesis import settings

settings.register_profile("no-deadline", deadline=None)
settings.load_profile("no-deadline")
