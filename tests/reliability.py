"""Tallies for docs/benchmarks.md "Reliability": the numbers come from the tests themselves.

A test that tries hostile or malformed input calls `tally(metric, tried=..., bad=...)`.
Nothing happens in a normal test session; `benchmarks/bench_reliability.py` sets
MASCOPE_RELIABILITY_OUT and reads the lines back into its table.
"""

from __future__ import annotations

import json
import os


def tally(metric: str, *, tried: int, bad: int) -> None:
    """Record that `tried` cases of `metric` were attempted and `bad` of them misbehaved."""
    out = os.environ.get("MASCOPE_RELIABILITY_OUT")
    if not out:
        return
    with open(out, "a") as fh:
        fh.write(json.dumps({"metric": metric, "tried": tried, "bad": bad}) + "\n")
