"""A leased job queue in the trace store, work registered by name, and its executors.

from mascope.jobs import JobQueue

queue = JobQueue(store)
queue.ensure_job("my-job", kind="judge", config={...})
queue.enqueue("my-job", run_ids)
for item in queue.claim("my-job", 8, lease_s=60):
    ...
    queue.complete("my-job", [Completion(item.key, result={...})])
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mascope._lazy import lazy_exports

if TYPE_CHECKING:
    from ._executor import (
        BatchProgress,
        BatchReport,
        Limiter,
        Outcome,
        RateLimiter,
        Work,
        WorkerReport,
        run_job,
    )
    from ._queue import FAILED_STATUSES, LEASE_S, Claimed, Completion, ItemState, JobQueue
    from ._ray import check_ray, run_on_ray
    from ._registry import BuiltWork, WorkFactory, build_work, register_work, work_factory
    from ._run import drain_job

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "BatchProgress": "._executor",
        "BatchReport": "._executor",
        "Limiter": "._executor",
        "Outcome": "._executor",
        "RateLimiter": "._executor",
        "Work": "._executor",
        "run_job": "._executor",
        "LEASE_S": "._queue",
        "FAILED_STATUSES": "._queue",
        "Claimed": "._queue",
        "Completion": "._queue",
        "ItemState": "._queue",
        "JobQueue": "._queue",
        "BuiltWork": "._registry",
        "WorkFactory": "._registry",
        "build_work": "._registry",
        "register_work": "._registry",
        "work_factory": "._registry",
        "drain_job": "._run",
        "WorkerReport": "._executor",
        "run_on_ray": "._ray",
        "check_ray": "._ray",
    },
)

__all__ = [
    "FAILED_STATUSES",
    "LEASE_S",
    "BatchProgress",
    "BatchReport",
    "BuiltWork",
    "Claimed",
    "Completion",
    "ItemState",
    "JobQueue",
    "Limiter",
    "Outcome",
    "RateLimiter",
    "Work",
    "WorkFactory",
    "WorkerReport",
    "build_work",
    "check_ray",
    "drain_job",
    "register_work",
    "run_job",
    "run_on_ray",
    "work_factory",
]
