"""Benchmarks of agent-runs-exporter: scripts that print figures and ratios (not tests).

Run one with `python -m bench.<name>` (add `--tiny` for the quick size CI uses), or every one with
`python -m bench`. See docs/benchmarks.md for what each measures and the latest results.
"""
