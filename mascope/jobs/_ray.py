"""Ray as the distributed engine: N Ray workers each pull leased items from the job queue.

The driver queues the job in the store; each Ray task opens the store itself,
rebuilds the work from the job's stored kind and configuration (nothing but
the store's address and the job id is shipped) and drains the job with the
in-process executor. A worker that dies loses nothing: its items' leases lapse
(at once when it died on the driver's host) and the other workers, or Ray's
retry of the task, take them over; completion is fenced, so nothing is done twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any

from mascope.errors import ConfigError

from ._executor import WorkerReport
from ._queue import LEASE_S

if TYPE_CHECKING:
    from mascope.traces import TraceStore


def check_ray() -> None:
    """Refuse in one line, naming the extra to install, when Ray is missing."""
    _import_ray()


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "--workers runs on Ray, which is not installed; pip install 'mascope[ray]'"
        ) from None
    return ray


def store_address(store: TraceStore, *, cluster: bool) -> str:
    """Where Ray workers open the store: its URL, or its file for a local runtime."""
    if store.path is not None:
        if cluster:
            raise ConfigError(
                f"--ray-address: workers on other machines cannot share the SQLite file {store.path}; "
                "use a PostgreSQL store (--db postgresql://...)"
            )
        return str(store.path.resolve())
    if store.is_sqlite:
        raise ConfigError("--workers needs a store on disk or a server, not an in-memory one")
    return store.url


def drain_on(
    address: str,
    job_id: str,
    concurrency: int,
    lease_s: float,
    rpm: float | None = None,
    max_cost: float | None = None,
) -> WorkerReport:
    """One worker's share of a job, in a Ray worker process (or any process)."""
    from mascope.traces import TraceStore

    from ._run import drain_job

    with TraceStore(address, create=False) as store:
        report = asyncio.run(
            drain_job(
                store, job_id, concurrency=concurrency, lease_s=lease_s, rpm=rpm, max_cost=max_cost
            )
        )
    return WorkerReport(
        report.judged, report.not_judged, report.lost, report.elapsed_s, dict(report.failures),
        dict(report.modes), dict(report.uncertain), report.cost_usd, report.cost_known,
    )  # fmt: skip


def run_on_ray(
    store: TraceStore,
    job_id: str,
    *,
    workers: int,
    ray_address: str | None = None,
    concurrency: int = 4,
    lease_s: float = LEASE_S,
    rpm: float | None = None,
    max_cost: float | None = None,
) -> list[WorkerReport]:
    """Drain a queued job with `workers` Ray workers: a local Ray runtime, or the
    cluster at `ray_address`. Blocks until the job has no pending item. A request
    rate and a cost cap are shared out evenly among the workers.

    Ctrl-C stops the workers; what they committed stays, and, as the in-process
    executor does when cancelled, one report marked `interrupted` comes back.
    """
    ray = _import_ray()
    address = store_address(store, cluster=ray_address is not None)
    started_here = not ray.is_initialized()
    if started_here:
        try:
            if ray_address:
                ray.init(address=ray_address, logging_level="ERROR", log_to_driver=False)
            else:
                ray.init(
                    num_cpus=workers,
                    include_dashboard=False,
                    logging_level="ERROR",
                    log_to_driver=False,
                )
        except ConnectionError as exc:
            raise ConfigError(f"cannot join the Ray cluster at {ray_address}: {exc}") from None
    started, before = time.monotonic(), _counts(store, job_id)
    try:
        remote = ray.remote(num_cpus=1, max_retries=3)(drain_on)
        share = (
            None if rpm is None else rpm / workers,
            None if max_cost is None else max_cost / workers,
        )
        refs = [
            remote.remote(address, job_id, concurrency, lease_s, *share) for _ in range(workers)
        ]
        try:
            return list(ray.get(refs))
        except KeyboardInterrupt:
            # Stop the workers too (on a cluster they would work on); what they
            # committed stays, and their claims lapse or are taken over at once.
            for ref in refs:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
    finally:
        if started_here:
            ray.shutdown()
    # Ctrl-C: the stopped workers' own reports are lost with them; the job's counts,
    # which every completion moves, say what they finished.
    after = _counts(store, job_id)
    done, failed, cost = after[0] - before[0], after[1] - before[1], after[2] - before[2]
    elapsed = time.monotonic() - started
    return [WorkerReport(done, failed, 0, elapsed, {}, {}, {}, cost, True, interrupted=True)]


def _counts(store: TraceStore, job_id: str) -> tuple[int, int, float]:
    """The job's done and failed items and what they cost, so far."""
    job = store.get_job(job_id)
    return (0, 0, 0.0) if job is None else (job.done, job.failed, job.cost_usd)
