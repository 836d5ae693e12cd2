"""A job queue in the trace store that several workers (threads, processes, machines) share.

A job is a row in `jobs` (its kind and configuration); its items are rows in
`job_items`, keyed by a string (a run id for judge and attribute, a task id for
an eval). A worker claims a batch of pending items with a lease: on PostgreSQL
one `UPDATE ... WHERE key IN (SELECT ... FOR UPDATE SKIP LOCKED)`, so workers
never wait on each other's rows; on SQLite the same statement inside the
store's immediate (write-locked) transaction. The worker heartbeats to extend
its leases, and completes each item in one transaction with the item's result
(labels, attributions, a result record) only if it still holds the claim: a
worker whose lease lapsed and was taken over writes nothing, so an item's
result is never recorded twice. Items of a dead worker are claimed again once
their lease lapses (at once when the worker ran on this host and its process
is gone).

On PostgreSQL a worker that stops inside one of these transactions (a paused
VM, SIGSTOP, a debugger) would keep its row locks for as long as it is stopped:
the items it holds could not be taken over when its lease lapsed, nor the job's
counts moved. Each transaction therefore tells the server to end the session
once it has sat idle in it for `STALL_S`; the stopped worker's work is rolled
back, and when it wakes the transaction is tried again on a new connection.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple, ParamSpec, TypeVar

from sqlalchemy import Connection, Engine, bindparam, func, insert, select, text, update
from sqlalchemy.exc import DBAPIError

from mascope.traces import Annotation, Attribution, Job, JobItem, Run

from ._worker import new_worker_id, worker_dead

if TYPE_CHECKING:
    from mascope.traces import TraceStore

_JOBS = Job.__table__  # type: ignore[attr-defined]
_ITEMS = JobItem.__table__  # type: ignore[attr-defined]
_RUNS = Run.__table__  # type: ignore[attr-defined]
_ANNOTATIONS = Annotation.__table__  # type: ignore[attr-defined]
_ATTRIBUTIONS = Attribution.__table__  # type: ignore[attr-defined]
# A group commit's per-item writes, each run once for the whole group (executemany).
_MARK_DONE = (
    update(_ITEMS)
    .where(_ITEMS.c.job_id == bindparam("b_job"), _ITEMS.c.run_id == bindparam("b_key"))
    .values(
        status=bindparam("b_status"), error=bindparam("b_error"), cost_usd=bindparam("b_cost"),
        attempts=_ITEMS.c.attempts + 1, updated_at=bindparam("b_now"), run_steps=bindparam("b_steps"),
        result=bindparam("b_result", type_=_ITEMS.c.result.type), claimed_by=None, claimed_at=None,
        lease_until=None,
    )
)  # fmt: skip
_REQUEUE = (
    update(_ITEMS)
    .where(
        _ITEMS.c.job_id == bindparam("b_job"),
        _ITEMS.c.run_id == bindparam("b_key"),
        _ITEMS.c.status != "pending",
        _ITEMS.c.attempts == bindparam("b_attempts"),
    )
    .values(status="pending", claimed_by=None, claimed_at=None, lease_until=None)
)
_SET_METADATA = (
    update(_RUNS)
    .where(_RUNS.c.id == bindparam("b_id"))
    .values(metadata=bindparam("b_metadata", type_=_RUNS.c.metadata.type))
)
_BEGIN_PG = text("SELECT now(), set_config('idle_in_transaction_session_timeout', :ms, true)")
# An item's key lives in `job_items.run_id`, named for the first kinds of work,
# whose items are runs; an eval's items are tasks.

LEASE_S = 300.0
"""How long a claim holds without a heartbeat; then another worker may take the item."""

STALL_S = 10.0
"""How long (PostgreSQL) a worker may sit idle inside one of the queue's transactions
before the server ends its session and frees its locks: far longer than a
healthy worker ever does, short enough that a stopped one does not hold up a job."""

FAILED_STATUSES = ("failed", "error", "not_judged")
"""Item statuses that mean the work was tried and did not succeed (`not_judged`: older stores)."""


@dataclass(frozen=True)
class Claimed:
    """An item a worker holds: its key, what the work needs, and how often it was done before."""

    key: str
    payload: dict[str, Any] | None
    attempts: int


class ItemState(NamedTuple):
    """An item's state as a scheduler sees it."""

    status: str
    attempts: int
    run_steps: int | None
    claimed_by: str | None
    result: dict[str, Any] | None
    error: str | None


@dataclass
class Completion:
    """An item's outcome, committed together with its completion.

    `replace` maps an annotator prefix to labels replacing that annotator's
    earlier labels on the run `key`; `attributions` are added to that run and
    `metadata` merged into it. `result` is kept on the item itself.
    """

    key: str
    status: str = "done"
    error: str | None = None
    cost_usd: float = 0.0
    result: dict[str, Any] | None = None
    run_steps: int | None = None
    replace: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    attributions: list[dict[str, Any]] = field(default_factory=list)
    metadata: dict[str, Any] | None = None


_P = ParamSpec("_P")
_T = TypeVar("_T")


def _reconnecting(method: Callable[_P, _T]) -> Callable[_P, _T]:
    """Run a queue transaction again when its connection was lost (the server ended a
    stalled session, or restarted): the transaction was rolled back, and the pool
    hands out a new connection. (Lost during the COMMIT itself, it may have been
    written: `complete` then finds the items no longer held and reports them as
    taken over, which undercounts this worker's report but never writes twice.)"""

    @functools.wraps(method)
    def again(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        for _ in range(2):
            try:
                return method(*args, **kwargs)
            except DBAPIError as exc:
                if not exc.connection_invalidated:
                    raise
        return method(*args, **kwargs)

    return again


def _engines(store: TraceStore) -> tuple[Engine, Engine]:
    """The store's writing and reading engines (the one place this package reaches into it)."""
    return store.engine.write, store.engine.read


class JobQueue:
    """The store's job queue, as one worker sees it (`worker_id` names its claims)."""

    def __init__(
        self, store: TraceStore, *, worker_id: str | None = None, stall_s: float = STALL_S
    ):
        self.store = store
        self.worker_id = worker_id or new_worker_id()
        self._write, self._read = _engines(store)
        self._stall_ms = str(max(1, round(stall_s * 1000)))

    @contextmanager
    def _begin(self) -> Iterator[tuple[Connection, datetime]]:
        """A write transaction and when it began. On PostgreSQL that is the server's
        clock (workers on several hosts agree on it), read in the same round trip that
        has the server end the session if it stalls inside (`STALL_S`); on SQLite it is
        this machine's (every worker is on this machine)."""
        with self._write.begin() as conn:
            if conn.dialect.name == "postgresql":
                moment = conn.execute(_BEGIN_PG, {"ms": self._stall_ms}).scalar_one()
                yield conn, moment if moment.tzinfo else moment.replace(tzinfo=UTC)
            else:
                yield conn, utcnow()

    # -- jobs and items ------------------------------------------------------------

    @_reconnecting
    def ensure_job(self, job_id: str, *, kind: str, config: Mapping[str, Any]) -> None:
        """Create the job if no worker has yet (a rerun or a second worker reuses it)."""
        now = utcnow()
        row = {"id": job_id, "kind": kind, "config": self.store.redact.value(dict(config)),
               "config_hash": job_id.rsplit("-", 1)[-1], "status": "running", "total": 0, "done": 0,
               "failed": 0, "skipped": 0, "cost_usd": 0.0, "created_at": now, "updated_at": now}  # fmt: skip
        with self._begin() as (conn, _):
            _insert_new(conn, _JOBS, [row])
            conn.execute(
                update(_JOBS)
                .where(_JOBS.c.id == job_id)
                .values(status="running", error=None, updated_at=now)
            )

    def job_config(self, job_id: str) -> tuple[str, dict[str, Any]]:
        """A job's kind and configuration, so any process can rebuild its work."""
        with self._read.connect() as conn:
            row = conn.execute(
                select(_JOBS.c.kind, _JOBS.c.config).where(_JOBS.c.id == job_id)
            ).first()
        if row is None:
            from mascope.errors import NotFoundError

            raise NotFoundError(f"no job {job_id} in {self.store.path or self.store.url}")
        return str(row[0]), dict(row[1] or {})

    @_reconnecting
    def enqueue(
        self, job_id: str, items: Sequence[str] | Mapping[str, dict[str, Any] | None]
    ) -> int:
        """Add items (keys, or keys with payloads) to a job; items already in it keep
        their state. Returns how many were new."""
        payloads = items if isinstance(items, Mapping) else dict.fromkeys(items)
        now = utcnow()
        redact = self.store.redact
        with self._begin() as (conn, _):
            keys = list(payloads)
            known: set[str] = set()
            for start in range(0, len(keys), 500):
                known.update(
                    conn.execute(
                        select(_ITEMS.c.run_id).where(
                            _ITEMS.c.job_id == job_id,
                            _ITEMS.c.run_id.in_(keys[start : start + 500]),
                        )
                    ).scalars()
                )
            rows = [
                {"job_id": job_id, "run_id": key, "status": "pending", "attempts": 0, "cost_usd": 0.0,
                 "updated_at": now, "payload": None if payload is None else redact.value(payload)}
                for key, payload in payloads.items() if key not in known
            ]  # fmt: skip
            count = select(func.count()).where(_ITEMS.c.job_id == job_id)
            before = conn.execute(count).scalar_one()
            for start in range(0, len(rows), 500):
                _insert_new(conn, _ITEMS, rows[start : start + 500])
            total = conn.execute(count).scalar_one()
            added = total - before
            conn.execute(update(_JOBS).where(_JOBS.c.id == job_id).values(total=total))
        return added

    def states(self, job_id: str, keys: Sequence[str] | None = None) -> dict[str, ItemState]:
        """Items' states (all of the job's when `keys` is None)."""
        query = select(
            _ITEMS.c.run_id, _ITEMS.c.status, _ITEMS.c.attempts, _ITEMS.c.run_steps, _ITEMS.c.claimed_by,
            _ITEMS.c.result, _ITEMS.c.error,
        ).where(_ITEMS.c.job_id == job_id)  # fmt: skip
        out: dict[str, ItemState] = {}
        with self._read.connect() as conn:
            if keys is None:
                for row in conn.execute(query):
                    out[row[0]] = ItemState(*row[1:])
                return out
            chunked = query.where(_ITEMS.c.run_id.in_(bindparam("keys", expanding=True)))
            for start in range(0, len(keys), 500):
                for row in conn.execute(chunked, {"keys": list(keys[start : start + 500])}):
                    out[row[0]] = ItemState(*row[1:])
        return out

    @_reconnecting
    def requeue(self, job_id: str, seen: Mapping[str, int]) -> int:
        """Make items pending again to redo them, each only if it has not been
        completed since it was seen (`seen` maps a key to the attempts it had),
        so two schedulers deciding at once never redo an item twice."""
        if not seen:
            return 0
        rows = [{"b_job": job_id, "b_key": k, "b_attempts": a} for k, a in seen.items()]
        with self._begin() as (conn, now):
            # One prebuilt statement for all the items (executemany), not one built per item.
            redone = int(conn.execute(_REQUEUE, rows).rowcount or 0)
            if redone:  # done or failed items are pending again: count afresh
                self._count(conn, job_id, now)
            return redone

    @_reconnecting
    def park(self, job_id: str, keys: Sequence[str]) -> None:
        """Keep pending items nobody holds from being claimed (`waiting`) until they
        are requeued: a run still being recorded is judged when it has finished."""
        if not keys:
            return
        with self._begin() as (conn, now):
            conn.execute(
                update(_ITEMS)
                .where(
                    _ITEMS.c.job_id == job_id,
                    _ITEMS.c.run_id.in_(list(keys)),
                    _ITEMS.c.status == "pending",
                    _ITEMS.c.claimed_by.is_(None)
                    | _ITEMS.c.lease_until.is_(None)
                    | (_ITEMS.c.lease_until < now),
                )
                .values(status="waiting", claimed_by=None, claimed_at=None, lease_until=None)
            )

    # -- claims ---------------------------------------------------------------------

    @_reconnecting
    def claim(
        self,
        job_id: str,
        limit: int,
        *,
        lease_s: float = LEASE_S,
        among: Sequence[str] | None = None,
    ) -> list[Claimed]:
        """Claim up to `limit` pending items nobody holds (or whose holder's lease
        lapsed, or whose holder died on this host), optionally only among `among`."""
        if limit <= 0 or (among is not None and not among):
            return []
        with self._begin() as (conn, now):
            # The candidates come from an alias of the table being updated.
            free_items = _ITEMS.alias("free_items")
            c = free_items.c
            free = (
                # Never this worker's own: those are in flight here.
                c.claimed_by.is_(None) | c.lease_until.is_(None) | (c.lease_until < now)
            )
            dead = self._dead_holders(conn, job_id, now)
            if dead:
                free |= c.claimed_by.in_(dead)
            pick = (
                select(c.run_id)
                .where(c.job_id == job_id, c.status == "pending", free)
                .order_by(c.run_id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
            if among is not None:
                pick = pick.where(c.run_id.in_(list(dict.fromkeys(among))))
            # A CTE is evaluated once; as an IN subquery PostgreSQL may run it again
            # per row, and each run would pick (and lock) other rows.
            picked = pick.cte("picked")
            rows = conn.execute(
                update(_ITEMS)
                .where(_ITEMS.c.job_id == job_id, _ITEMS.c.run_id == picked.c.run_id)
                .values(
                    claimed_by=self.worker_id,
                    claimed_at=now,
                    lease_until=now + timedelta(seconds=lease_s),
                )
                .returning(_ITEMS.c.run_id, _ITEMS.c.payload, _ITEMS.c.attempts)
            ).all()
        order = {k: i for i, k in enumerate(among or ())}
        got = [Claimed(str(k), p, int(a or 0)) for k, p, a in rows]
        return sorted(got, key=lambda c: (order.get(c.key, 0), c.key))

    def _dead_holders(self, conn: Connection, job_id: str, now: datetime) -> list[str]:
        holders = conn.execute(
            select(_ITEMS.c.claimed_by)
            .where(
                _ITEMS.c.job_id == job_id,
                _ITEMS.c.status == "pending",
                _ITEMS.c.claimed_by.is_not(None),
                _ITEMS.c.claimed_by != self.worker_id,
                _ITEMS.c.lease_until >= now,
            )
            .distinct()
        ).scalars()
        return [h for h in holders if worker_dead(h)]

    @_reconnecting
    def heartbeat(self, job_id: str, keys: Iterable[str], *, lease_s: float = LEASE_S) -> set[str]:
        """Extend this worker's leases on `keys`; returns the keys it still holds."""
        wanted = list(keys)
        if not wanted:
            return set()
        with self._begin() as (conn, now):
            held = conn.execute(
                update(_ITEMS)
                .where(
                    _ITEMS.c.job_id == job_id,
                    _ITEMS.c.run_id.in_(wanted),
                    _ITEMS.c.claimed_by == self.worker_id,
                    _ITEMS.c.status == "pending",
                )
                .values(lease_until=now + timedelta(seconds=lease_s))
                .returning(_ITEMS.c.run_id)
            ).scalars()
            return set(held)

    @_reconnecting
    def release(self, job_id: str, keys: Iterable[str] | None = None) -> None:
        """Give back this worker's claims (all of them in the job when `keys` is None)."""
        query = update(_ITEMS).where(
            _ITEMS.c.job_id == job_id,
            _ITEMS.c.claimed_by == self.worker_id,
            _ITEMS.c.status == "pending",
        )
        if keys is not None:
            query = query.where(_ITEMS.c.run_id.in_(list(keys)))
        with self._begin() as (conn, _):
            conn.execute(query.values(claimed_by=None, claimed_at=None, lease_until=None))

    # -- completion -------------------------------------------------------------------

    @_reconnecting
    def complete(self, job_id: str, completions: Sequence[Completion]) -> list[str]:
        """Record items' outcomes, each with its results, in one transaction (a group
        commit). An item this worker no longer holds (its lease lapsed and another
        worker took it, or it was completed already) is skipped with all its writes.
        Returns the keys recorded."""
        if not completions:
            return []
        store = self.store
        first: dict[str, Completion] = {}
        for c in completions:
            first.setdefault(c.key, c)
        with self._begin() as (conn, now):
            # Which items are still ours, locked (PostgreSQL) or under the write lock
            # (SQLite) until the commit; then each kind of write as one statement for
            # the whole group, not one per item (building statements is most of the cost).
            keys = list(first)
            mine: dict[str, float] = {}  # key -> the cost it had (a redone item's earlier work)
            for start in range(0, len(keys), 500):
                mine.update(
                    conn.execute(
                        select(_ITEMS.c.run_id, _ITEMS.c.cost_usd)
                        .where(
                            _ITEMS.c.job_id == job_id,
                            _ITEMS.c.run_id.in_(keys[start : start + 500]),
                            _ITEMS.c.claimed_by == self.worker_id,
                            _ITEMS.c.status == "pending",
                        )
                        .with_for_update()
                    ).all()
                )
            done = [c for key, c in first.items() if key in mine]
            if done:
                conn.execute(
                    _MARK_DONE,
                    [
                        {"b_job": job_id, "b_key": c.key, "b_status": c.status, "b_now": now,
                         "b_error": store.redact.optional(c.error), "b_cost": c.cost_usd,
                         "b_steps": c.run_steps,
                         "b_result": None if c.result is None else store.redact.value(c.result)}
                        for c in done
                    ],
                )  # fmt: skip
                self._write_results(conn, done)
                # Pending items counted as neither done nor failed, so the job's
                # counts move by exactly this group (a recount would read every
                # item of the job at every commit).
                conn.execute(
                    update(_JOBS)
                    .where(_JOBS.c.id == job_id)
                    .values(
                        done=_JOBS.c.done + sum(c.status == "done" for c in done),
                        failed=_JOBS.c.failed + sum(c.status in FAILED_STATUSES for c in done),
                        cost_usd=_JOBS.c.cost_usd
                        + sum(c.cost_usd - float(mine[c.key] or 0.0) for c in done),
                        updated_at=now,
                    )
                )
        return [c.key for c in done]

    def _write_results(self, conn: Connection, done: Sequence[Completion]) -> None:
        store = self.store
        by_prefix: dict[str, list[str]] = {}
        for c in done:
            for prefix in c.replace:
                by_prefix.setdefault(prefix, []).append(c.key)
        for prefix, keys in by_prefix.items():
            for start in range(0, len(keys), 500):
                conn.execute(
                    _ANNOTATIONS.delete().where(
                        _ANNOTATIONS.c.run_id.in_(keys[start : start + 500]),
                        _ANNOTATIONS.c.annotator.startswith(prefix, autoescape=True),
                    )
                )
        rows = [
            store.labels.annotation_row(c.key, a)
            for c in done
            for labels in c.replace.values()
            for a in labels
        ]
        if rows:
            conn.execute(insert(_ANNOTATIONS), rows)
        attributions = [
            store.labels.attribution_row(c.key, a) for c in done for a in c.attributions
        ]
        if attributions:
            conn.execute(insert(_ATTRIBUTIONS), attributions)
        with_meta = [c for c in done if c.metadata]
        if with_meta:
            ids = [c.key for c in with_meta]
            current: dict[str, Any] = {}
            for start in range(0, len(ids), 500):
                current.update(
                    conn.execute(
                        select(_RUNS.c.id, _RUNS.c.metadata).where(
                            _RUNS.c.id.in_(ids[start : start + 500])
                        )
                    ).all()
                )
            conn.execute(
                _SET_METADATA,
                [
                    {"b_id": c.key,
                     "b_metadata": {**(current.get(c.key) or {}), **store.redact.value(c.metadata)}}
                    for c in with_meta if c.key in current
                ],
            )  # fmt: skip

    def _count(self, conn: Connection, job_id: str, now: datetime) -> None:
        # One pass over the job's items for both the counts and the cost.
        rows = conn.execute(
            select(_ITEMS.c.status, func.count(), func.coalesce(func.sum(_ITEMS.c.cost_usd), 0.0))
            .where(_ITEMS.c.job_id == job_id)
            .group_by(_ITEMS.c.status)
        ).all()
        counts: dict[str, int] = {status: n for status, n, _ in rows}
        spent = sum(float(cost) for _, _, cost in rows)
        conn.execute(
            update(_JOBS)
            .where(_JOBS.c.id == job_id)
            .values(
                done=counts.get("done", 0),
                failed=sum(counts.get(s, 0) for s in FAILED_STATUSES),
                cost_usd=spent,
                updated_at=now,
            )
        )

    @_reconnecting
    def finish_job(self, job_id: str, *, status: str, error: str | None = None) -> None:
        """Mark the job done or stopped (why, in `error`)."""
        with self._begin() as (conn, now):
            conn.execute(
                update(_JOBS)
                .where(_JOBS.c.id == job_id)
                .values(status=status, error=self.store.redact.optional(error), updated_at=now)
            )

    def pending(self, job_id: str) -> int:
        """How many of the job's items are still to be done (held or not)."""
        with self._read.connect() as conn:
            return int(
                conn.execute(
                    select(func.count()).where(
                        _ITEMS.c.job_id == job_id, _ITEMS.c.status == "pending"
                    )
                ).scalar_one()
            )


def utcnow() -> datetime:
    return datetime.now(UTC)


def _insert_new(conn: Connection, table: Any, rows: list[dict[str, Any]]) -> None:
    """Insert rows whose key is not taken; another worker may be adding the same ones."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        conn.execute(pg_insert(table).on_conflict_do_nothing(), rows)
    else:
        conn.execute(insert(table).prefix_with("OR IGNORE"), rows)
