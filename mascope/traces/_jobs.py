"""Job rows: a batch job (judge, attribute) and its items, one per run.

The store reads the rows and a batch's view of them (which items need doing);
creating jobs, claiming with leases, heartbeats and completing items with
their results are `mascope.jobs`'s queue, scheduling work is
`mascope.diagnosis`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from sqlalchemy import bindparam, select
from sqlmodel import Session

from ._engine import Backend
from ._schema import Job, JobItem, Run

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
    """Reading job and job-item rows (the queue in `mascope.jobs` writes them)."""

    def __init__(self, backend: Backend):
        self.backend = backend

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

    def get_job(self, job_id: str) -> Job | None:
        with Session(self.backend.read) as session:
            job = session.get(Job, job_id)
            if job is not None:
                session.expunge(job)
            return job


__all__ = ["JobItemView", "Jobs"]
