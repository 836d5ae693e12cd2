"""Test work kinds, registered by name, and a worker process to run them:

    python -m tests.jobs.workers DB JOB [--lease S] [--concurrency N]

`test-label` works on a run: it notes in $MASCOPE_TEST_LOG that it started,
sleeps `delay` seconds (from the job's configuration) and labels the run with
one attribution, committed with the item's completion.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path
from typing import Any

from mascope.jobs import BuiltWork, Claimed, Limiter, Outcome, register_work
from mascope.traces import TraceStore


def note(line: str) -> None:
    log = os.environ.get("MASCOPE_TEST_LOG")
    if log:
        with Path(log).open("a") as fh:
            fh.write(line + "\n")


@register_work("tests.jobs.workers:label")
def label_work(store: TraceStore, config: dict[str, Any], /, **_: Any) -> BuiltWork:
    delay = float(config.get("delay", 0.0))

    async def work(item: Claimed, limiter: Limiter | None) -> Outcome:
        note(f"start {item.key} {os.getpid()}")
        await asyncio.sleep(delay)
        note(f"end {item.key} {os.getpid()}")
        row = {"method": "test", "agent": f"pid-{os.getpid()}", "annotator": "test"}
        return Outcome(0.0, attributions=[row], result={"pid": os.getpid()})

    return BuiltWork(work)


def main() -> None:
    from mascope.jobs import drain_job

    parser = argparse.ArgumentParser()
    parser.add_argument("db")
    parser.add_argument("job")
    parser.add_argument("--lease", type=float, default=60.0)
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args()
    with TraceStore(args.db, create=False) as store:
        report = asyncio.run(
            drain_job(store, args.job, concurrency=args.concurrency, lease_s=args.lease)
        )
    print(report.judged, report.lost)


if __name__ == "__main__":
    main()
