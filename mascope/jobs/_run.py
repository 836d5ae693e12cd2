"""Run a stored job to the end in this process: what any worker (a second
`mascope` process, a Ray worker) does with nothing but the store and a job id."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._executor import BatchProgress, BatchReport, run_job
from ._queue import LEASE_S, JobQueue
from ._registry import build_work

if TYPE_CHECKING:
    from mascope.traces import TraceStore


async def drain_job(
    store: TraceStore,
    job_id: str,
    *,
    concurrency: int = 4,
    rpm: float | None = None,
    max_cost: float | None = None,
    lease_s: float = LEASE_S,
    on_progress: Callable[[BatchProgress], None] | None = None,
    **local: Any,
) -> BatchReport:
    """Rebuild the job's work from its stored kind and configuration, and do its
    pending items (with other workers, if any) until none is left."""
    queue = JobQueue(store)
    kind, config = queue.job_config(job_id)
    built = build_work(kind, store, config, **local)
    job = store.get_job(job_id)  # its item count, without reading every item's state
    report = BatchReport(job_id=job_id, total=job.total if job is not None else 0)
    try:
        return await run_job(
            store, job_id=job_id, work=built.work, report=report, concurrency=concurrency,
            rpm=rpm, max_cost=max_cost, on_progress=on_progress, lease_s=lease_s, queue=queue,
            prefetch=built.prefetch,
        )  # fmt: skip
    finally:
        await built.aclose()
