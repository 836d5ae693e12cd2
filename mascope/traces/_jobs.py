"""Job rows: a batch job (judge, attribute) and its items, one per run.

The store keeps the rows and a batch's view of them (which items need doing,
an atomic claim); leasing, heartbeats and completing items with their results
are `mascope.jobs`'s queue, scheduling work is `mascope.diagnosis`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any, NamedTuple

from sqlalchemy import bindparam, func, insert, select, update
from sqlmodel import Session

from ._engine import Backend
from ._owners import owner_alive
from ._redact import Redactor
from ._schema import Job, JobItem, Run, utcnow

_RUNS = Run.__table__  # type: ignore[attr-defined]
_JOBS = Job.__table__  # type: ignore[attr-defined]
_JOB_ITEMS = JobItem.__table__  # type: ignore[attr-defined]


class JobItemView(NamedTuple):
    """A job item as a batch sees it: the run's state and the item's."""

    run_status: str
    run_step_count: int
    status: str
    run_steps: int | None
    """The step count the item was done at (None: not done, or done before that was kept)."""
    claimed_by: str | None


class Jobs:
    """Job and job-item rows; `worker_id` names this store object's claims."""

    def __init__(self, backend: Backend, redact: Redactor, worker_id: str):
        self.backend = backend
        self.redact = redact
        self.worker_id = worker_id

    def ensure_job(
        self, job_id: str, *, kind: str, config: dict[str, Any], config_hash: str
    ) -> None:
        with self.backend.write.begin() as conn:
            if conn.execute(select(_JOBS.c.id).where(_JOBS.c.id == job_id)).scalar() is None:
                now = utcnow()
                conn.execute(
                    insert(_JOBS),
                    {"id": job_id, "kind": kind, "config": self.redact.value(config), "config_hash": config_hash,
                     "status": "running", "total": 0, "done": 0, "failed": 0, "skipped": 0, "cost_usd": 0.0,
                     "created_at": now, "updated_at": now},
                )  # fmt: skip
            else:
                conn.execute(
                    update(_JOBS)
                    .where(_JOBS.c.id == job_id)
                    .values(status="running", error=None, updated_at=utcnow())
                )

    def add_job_items(self, job_id: str, run_ids: Sequence[str]) -> None:
        with self.backend.write.begin() as conn:
            known = set(
                conn.execute(
                    select(_JOB_ITEMS.c.run_id).where(_JOB_ITEMS.c.job_id == job_id)
                ).scalars()
            )
            rows = [
                {"job_id": job_id, "run_id": r, "status": "pending", "attempts": 0,
                 "cost_usd": 0.0, "updated_at": utcnow()}
                for r in dict.fromkeys(run_ids)
                if r not in known
            ]  # fmt: skip
            if rows:
                conn.execute(insert(_JOB_ITEMS), rows)
            total = conn.execute(
                select(func.count()).where(_JOB_ITEMS.c.job_id == job_id)
            ).scalar_one()
            conn.execute(update(_JOBS).where(_JOBS.c.id == job_id).values(total=total))

    def job_item_view(self, job_id: str, run_ids: Sequence[str]) -> dict[str, JobItemView]:
        query = (
            select(
                _JOB_ITEMS.c.run_id,
                _RUNS.c.status,
                _RUNS.c.step_count,
                _JOB_ITEMS.c.status,
                _JOB_ITEMS.c.run_steps,
                _JOB_ITEMS.c.claimed_by,
            )
            .join(_RUNS, _RUNS.c.id == _JOB_ITEMS.c.run_id)
            .where(
                _JOB_ITEMS.c.job_id == job_id,
                _JOB_ITEMS.c.run_id.in_(bindparam("ids", expanding=True)),
            )
        )
        out: dict[str, JobItemView] = {}
        with self.backend.read.connect() as conn:
            for i in range(0, len(run_ids), 500):
                for row in conn.execute(query, {"ids": list(run_ids[i : i + 500])}):
                    out[row[0]] = JobItemView(*row[1:])
        return out

    def claim_job_items(
        self, job_id: str, run_ids: Sequence[str], *, lease_s: float = 300.0
    ) -> dict[str, int]:
        if not run_ids:
            return {}
        now = utcnow()
        run = select(_RUNS.c.step_count, _RUNS.c.status).where(_RUNS.c.id == _JOB_ITEMS.c.run_id)
        steps = run.with_only_columns(_RUNS.c.step_count).scalar_subquery()
        status = run.with_only_columns(_RUNS.c.status).scalar_subquery()
        ids = list(dict.fromkeys(run_ids))
        with self.backend.write.begin() as conn:
            holders = conn.execute(
                select(_JOB_ITEMS.c.claimed_by)
                .where(_JOB_ITEMS.c.job_id == job_id, _JOB_ITEMS.c.claimed_by.is_not(None))
                .distinct()
            ).scalars()
            dead = [h for h in holders if h != self.worker_id and not owner_alive(h.split("/")[0])]
            free = _JOB_ITEMS.c.claimed_by.is_(None) | (_JOB_ITEMS.c.claimed_by == self.worker_id)
            free |= _JOB_ITEMS.c.claimed_at < now - timedelta(seconds=lease_s)
            if dead:
                free |= _JOB_ITEMS.c.claimed_by.in_(dead)
            claimed = conn.execute(
                update(_JOB_ITEMS)
                .where(
                    _JOB_ITEMS.c.job_id == job_id,
                    _JOB_ITEMS.c.run_id.in_(ids),
                    free,
                    status != "running",
                    (_JOB_ITEMS.c.status != "done") | _JOB_ITEMS.c.run_steps.is_distinct_from(steps),
                )
                .values(claimed_by=self.worker_id, claimed_at=now)
                .returning(_JOB_ITEMS.c.run_id)
            ).scalars().all()  # fmt: skip
            if not claimed:
                return {}
            counts: dict[str, int] = dict(
                conn.execute(
                    select(_RUNS.c.id, _RUNS.c.step_count).where(_RUNS.c.id.in_(list(claimed)))
                ).all()
            )
        return {r: counts[r] for r in ids if r in counts}

    def job_item_states(self, job_id: str, run_ids: Sequence[str]) -> dict[str, str]:
        query = select(_JOB_ITEMS.c.run_id, _JOB_ITEMS.c.status).where(
            _JOB_ITEMS.c.job_id == job_id, _JOB_ITEMS.c.run_id.in_(bindparam("ids", expanding=True))
        )
        with self.backend.read.connect() as conn:
            return {r: st for r, st in conn.execute(query, {"ids": list(run_ids)})}

    def get_job(self, job_id: str) -> Job | None:
        with Session(self.backend.read) as session:
            job = session.get(Job, job_id)
            if job is not None:
                session.expunge(job)
            return job


__all__ = ["JobItemView", "Jobs"]
