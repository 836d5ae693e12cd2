"""The in-process executor: asyncio workers in one process pulling leased items from the queue.

Bounded concurrency, a request rate, a cost cap, progress, and a heartbeat
that keeps this process's leases alive. Finished items are committed together
(a group commit), each with its results and only while its claim holds; a
worker queues its item's completion and takes the next item while the group
is written, so writes never hold the workers up.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mascope.errors import (
    AuthenticationError,
    EndpointError,
    ModelNotFoundError,
    StructuredOutputError,
    UserError,
)

from ._queue import LEASE_S, Claimed, Completion, JobQueue

if TYPE_CHECKING:
    from mascope.traces import TraceStore


@dataclass(frozen=True)
class WorkerReport:
    """What one Ray worker did."""

    done: int
    failed: int
    lost: int
    elapsed_s: float
    failures: dict[str, str]
    labels: dict[str, int]
    """Tags the work counted (failure modes, blamed agents, run statuses)."""
    uncertain: dict[str, int]
    cost_usd: float
    cost_known: bool
    interrupted: bool = False
    """Stopped by Ctrl-C: the counts and cost are the job's own, read from the store."""


@dataclass
class BatchProgress:
    total: int
    done: int
    skipped: int
    failed: int
    cost_usd: float
    in_flight: int


@dataclass
class BatchReport:
    job_id: str
    total: int
    judged: int = 0
    """Items done in this invocation."""
    skipped: int = 0
    not_judged: int = 0
    """Items whose work failed in this invocation (kept, with the error, as `failed`)."""
    cost_usd: float = 0.0
    stopped: str | None = None
    """Why the job stopped early (cost cap, endpoint down), if it did."""
    modes: Counter[str] = field(default_factory=Counter)
    uncertain: Counter[str] = field(default_factory=Counter)
    """Modes the judge called present without evidence that checks out (or agreement), per run."""
    failures: dict[str, str] = field(default_factory=dict)
    elapsed_s: float = 0.0
    cost_known: bool = True
    running: int = 0
    """Runs still running: left for a later batch."""
    elsewhere: int = 0
    """Items another worker was doing (or had just done) when this one came to them."""
    interrupted: bool = False
    """Stopped by Ctrl-C or SIGTERM; the committed results are kept."""
    lost: int = 0
    """Items whose lease lapsed while this worker did them (another worker took them over)."""

    def add_workers(self, workers: Iterable[WorkerReport]) -> None:
        """Count in what other workers (Ray's) did for this job."""
        for w in workers:
            self.judged += w.done
            self.not_judged += w.failed
            self.lost += w.lost
            self.failures.update(w.failures)
            self.modes.update(w.labels)
            self.uncertain.update(w.uncertain)
            self.cost_usd += w.cost_usd
            self.cost_known = self.cost_known and w.cost_known
            if w.interrupted:
                self.interrupted = True
                self.stopped = self.stopped or "interrupted"

    @property
    def nothing_done(self) -> bool:
        """There was work this batch tried, and none of it succeeded."""
        return self.judged == 0 and self.not_judged > 0


@dataclass
class Outcome:
    """What one item's work produced, to be committed with its completion."""

    cost_usd: float | None
    replace: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    attributions: list[dict[str, Any]] = field(default_factory=list)
    metadata: dict[str, Any] | None = None
    labels: list[str] = field(default_factory=list)
    """Short tags counted in the job summary (failure modes, blamed agents)."""
    uncertain: list[str] = field(default_factory=list)
    """Failure modes left uncertain, counted apart from `labels`."""
    result: dict[str, Any] | None = None
    """Kept on the item (an eval task's run and score)."""
    run_steps: int | None = None
    """The run's step count the work saw (a run that grows later is done again)."""


Limiter = Callable[[], Awaitable[None]]
Work = Callable[[Claimed, Limiter | None], Awaitable[Outcome]]
"""What a job does to one item: given the claimed item and the rate limiter."""
Prefetch = Callable[[Sequence[str]], None]
"""Reads what a batch of claimed items' work will need at once (in a worker thread)."""


class RateLimiter:
    """At most `rpm` acquisitions per minute, evenly spaced (no bursts)."""

    def __init__(self, rpm: float):
        self.interval = 60.0 / rpm
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def __call__(self) -> None:
        async with self._lock:
            now = time.monotonic()
            wait = self._next - now
            self._next = max(now, self._next) + self.interval
        if wait > 0:
            await asyncio.sleep(wait)


async def run_job(
    store: TraceStore,
    *,
    job_id: str,
    work: Work,
    report: BatchReport,
    among: Sequence[str] | None = None,
    concurrency: int = 4,
    rpm: float | None = None,
    max_cost: float | None = None,
    on_progress: Callable[[BatchProgress], None] | None = None,
    lease_s: float = LEASE_S,
    queue: JobQueue | None = None,
    failed_status: str = "failed",
    prefetch: Prefetch | None = None,
) -> BatchReport:
    """Do `work` for the job's pending items until none is left to claim.

    With `among`, only those items are claimed, a window at a time, and items
    another worker holds are left to it (`report.elsewhere`). Without it, every
    pending item of the job is done: items held by other workers are waited
    for, and taken over if their lease lapses. Cancelling the task (Ctrl-C)
    keeps what was committed, gives back the claims still held and returns
    the report with `interrupted` set. `prefetch` hears the keys of each batch
    of claimed items, in the claiming thread, before their work starts.
    """
    queue = queue or JobQueue(store)
    limiter = RateLimiter(rpm) if rpm else None
    stop = asyncio.Event()
    workers = max(1, concurrency)
    in_flight = 0
    started = time.monotonic()
    pending: list[Completion] = []
    outcomes: dict[str, Outcome] = {}
    """Work done and queued for the next group commit, by item."""
    claiming = asyncio.Lock()
    claimed: list[Claimed] = []
    held: set[str] = set()
    claimed_at: dict[str, float] = {}
    window = list(dict.fromkeys(among)) if among is not None else None
    cursor = 0

    def progress() -> None:
        if on_progress is not None:
            on_progress(
                BatchProgress(
                    report.total,
                    report.judged,
                    report.skipped + report.running + report.elsewhere,
                    report.not_judged,
                    report.cost_usd,
                    in_flight,
                )
            )

    def capped() -> bool:
        # Work done but not yet written has been paid for too.
        spent = report.cost_usd + sum(o.cost_usd or 0.0 for o in outcomes.values())
        if max_cost is not None and spent >= max_cost:
            report.stopped = report.stopped or f"cost cap reached (${spent:.4f} of ${max_cost:.4f})"
            stop.set()
            return True
        return False

    flusher: asyncio.Task[None] | None = None
    failed: list[Exception] = []

    async def flush() -> None:
        """Commit what finished while the last group was being written, until none is left."""
        while pending and not failed:
            batch = pending[:]
            pending.clear()
            try:
                recorded = set(await asyncio.to_thread(queue.complete, job_id, batch))
            except Exception as exc:  # rolled back: the items stay claimed, are given back below
                failed.append(exc)
                stop.set()
                return
            for c, outcome in ((c, outcomes.pop(c.key, None)) for c in batch):
                held.discard(c.key)
                if c.key not in recorded:
                    # Another worker took it over when this one's lease lapsed; its result counts.
                    report.lost += 1
                elif outcome is not None:
                    report.cost_usd += c.cost_usd
                    report.judged += 1
                    report.modes.update(outcome.labels)
                    report.uncertain.update(outcome.uncertain)
            progress()
            capped()

    def commit(item: Completion, outcome: Outcome | None = None) -> None:
        """Queue an item's completion for the next group commit and go on: the worker
        does not wait for the disk, and the report counts the item once it is written."""
        nonlocal flusher
        pending.append(item)
        if outcome is not None:
            outcomes[item.key] = outcome
        if flusher is None or flusher.done():
            flusher = asyncio.create_task(flush())

    def writing() -> bool:
        return bool(pending) or (flusher is not None and not flusher.done())

    async def drain() -> None:
        """Wait until every queued completion is written; raise what stopped a write."""
        while writing() and not failed:
            if flusher is None or flusher.done():
                await flush()
            else:
                await asyncio.shield(flusher)
        if failed:
            raise failed[0]

    def claim(count: int, among: list[str] | None = None) -> list[Claimed]:
        # Timed from before the query: a process stopped between the claim's commit
        # and its return must find these claims old, and check them before starting.
        at = time.monotonic()
        got = queue.claim(job_id, count, lease_s=lease_s, among=among)
        claimed_at.update((c.key, at) for c in got)
        if got and prefetch is not None:
            prefetch([c.key for c in got])
        return got

    def took(got: list[Claimed]) -> None:
        held.update(c.key for c in got)

    async def claim_more() -> None:
        nonlocal cursor
        if window is not None:
            while not claimed and cursor < len(window) and not stop.is_set():
                chunk = window[cursor : cursor + workers]
                cursor += len(chunk)
                got = await asyncio.to_thread(claim, len(chunk), chunk)
                took(got)
                claimed.extend(got)
                report.elsewhere += len(chunk) - len(got)
                if len(got) < len(chunk):
                    progress()
            return
        while not claimed and not stop.is_set():
            got = await asyncio.to_thread(claim, workers)
            if got:
                took(got)
                claimed.extend(got)
                return
            if writing():  # some of what is pending is ours, being written
                await drain()
                continue
            if await asyncio.to_thread(queue.pending, job_id) == 0:
                return
            # The rest is in flight, here or in other workers: wait for it to be
            # done, or for a dead worker's lease to lapse and take its items over.
            await asyncio.sleep(min(0.2, lease_s / 4))

    ahead: asyncio.Task[None] | None = None
    dry = False  # a claim ahead found nothing: leave the rest to the workers that run out

    async def claim_ahead() -> None:
        """Claim the next small batch while the last one is still being worked on, so
        the workers that finish together do not all wait for one claim (which, on
        SQLite, waits for the group commit's write lock). Claims nothing it does
        not find at once: a worker that runs out claims, and waits, itself."""
        nonlocal cursor, dry
        if window is not None:
            if cursor < len(window):
                chunk = window[cursor : cursor + workers]
                cursor += len(chunk)
                got = await asyncio.to_thread(claim, len(chunk), chunk)
                report.elsewhere += len(chunk) - len(got)
                if len(got) < len(chunk):
                    progress()
            else:
                got = []
        else:
            got = await asyncio.to_thread(claim, workers)
            dry = not got
        took(got)
        claimed.extend(got)

    async def next_item() -> Claimed | None:
        """The next item this worker holds a claim on, claiming a small batch when out."""
        nonlocal ahead
        async with claiming:
            if not claimed and ahead is not None:
                await asyncio.shield(ahead)  # one worker cancelled must not cancel the claim
            if not claimed:
                await claim_more()
            if stop.is_set() or not claimed:
                return None
            item = claimed.pop(0)
            if (
                workers > 1
                and len(claimed) < workers // 2
                and (ahead is None or ahead.done())
                and (cursor < len(window) if window is not None else not dry)
            ):
                ahead = asyncio.create_task(claim_ahead())
            return item

    async def one(item: Claimed) -> None:
        nonlocal in_flight
        if capped():
            return
        # Claimed a while ago (this process may have been stopped)? Start only if the
        # claim still holds, so no item another worker took over is done again here.
        stale = time.monotonic() - claimed_at.pop(item.key, 0.0) > lease_s / 3
        if stale and not await asyncio.to_thread(
            queue.heartbeat, job_id, [item.key], lease_s=lease_s
        ):
            held.discard(item.key)
            report.elsewhere += 1
            progress()
            return
        in_flight += 1
        progress()
        try:
            outcome = await work(item, limiter)
        except (StructuredOutputError, UserError) as exc:
            report.not_judged += 1
            report.failures[item.key] = str(exc)
            commit(Completion(item.key, status=failed_status, error=str(exc)))
            return
        except (EndpointError, AuthenticationError, ModelNotFoundError) as exc:
            report.failures[item.key] = str(exc)
            commit(Completion(item.key, status="error", error=str(exc)))
            report.stopped = report.stopped or f"the endpoint failed: {exc}"
            stop.set()
            return
        finally:
            in_flight -= 1
        cost = outcome.cost_usd
        if cost is None:
            report.cost_known = False
            cost = 0.0
        done = Completion(
            item.key, cost_usd=cost, replace=outcome.replace, attributions=outcome.attributions,
            metadata=outcome.metadata, result=outcome.result, run_steps=outcome.run_steps,
        )  # fmt: skip
        commit(done, outcome)
        capped()

    async def worker() -> None:
        while (item := await next_item()) is not None:
            await one(item)

    async def heartbeat() -> None:
        while True:
            await asyncio.sleep(max(0.05, lease_s / 3))
            mine = sorted(held)
            still = await asyncio.to_thread(queue.heartbeat, job_id, mine, lease_s=lease_s)
            held.difference_update(set(mine) - still)

    progress()
    beat = asyncio.create_task(heartbeat())
    try:
        await asyncio.gather(*(worker() for _ in range(workers)))
    except asyncio.CancelledError:
        # Interrupted: what was committed stays; the claims still held are given back below.
        report.interrupted = True
        report.stopped = report.stopped or "interrupted"
    finally:
        beat.cancel()
        try:
            if ahead is not None:  # a claim still running in its thread ends before the release
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await asyncio.shield(ahead)
            await drain()  # what finished is written, even when interrupted
        finally:
            await asyncio.to_thread(queue.release, job_id)
    report.elapsed_s = time.monotonic() - started
    queue.finish_job(job_id, status="stopped" if report.stopped else "done", error=report.stopped)
    return report
