"""A function agent for the kill-and-resume trials: sleeps, logs each call, says what it saw."""

from __future__ import annotations

import os
import time

from mascope.agents import TurnContext


def slow_counter(ctx: TurnContext) -> str:
    n = sum(1 for e in ctx.transcript if e.kind == "message")
    with open(os.environ["MASCOPE_BENCH_LOG"], "a") as fh:
        fh.write(f"{ctx.agent} {n}\n")
    time.sleep(float(os.environ.get("MASCOPE_BENCH_SLEEP", "0.1")))
    return f"{ctx.agent} saw {n}"
