"""The recorder: the hot path that writes runs and their steps as they happen.

Every write is redacted first and committed at once, so a process killed
mid-run loses nothing it had recorded. While a run is being recorded its
owner heartbeats (`runs.heartbeat_at`); a run whose owner is gone (its
process exited, on this host, or its heartbeat is older than the lease, on
any host) is marked `interrupted` and can be resumed.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update

from mascope.errors import NotFoundError, StoreError

from ._constants import RUN_STATUSES
from ._engine import Backend, StepConflict
from ._ids import new_id
from ._inputs import encode_inputs
from ._owners import owner_alive, owner_token
from ._redact import Redactor
from ._schema import Run, Step, utcnow

_RUNS = Run.__table__  # type: ignore[attr-defined]
_STEPS = Step.__table__  # type: ignore[attr-defined]

_KNOWN_BLOBS_MAX = 100_000
"""How many part keys a store remembers having written (so repeats skip the INSERT)."""

HEARTBEAT_S = 10.0
"""How often a recording process renews the heartbeat of the runs it records."""
RUN_LEASE_S = 60.0
"""How old a running run's heartbeat may get before its owner counts as gone."""


class Recorder:
    """Writes runs and steps; keeps each run's next step index and its owner's heartbeat."""

    def __init__(self, backend: Backend, redact: Redactor):
        self.backend = backend
        self.redact = redact
        self.owner = owner_token()
        self.heartbeat_s = HEARTBEAT_S
        self.lease_s = RUN_LEASE_S
        self._next_index: dict[str, int] = {}
        self._known_blobs: set[str] = set()
        self._lock = threading.Lock()
        self._live: set[str] = set()
        self._beat_stop = threading.Event()
        self._beat: threading.Thread | None = None

    # -- runs ----------------------------------------------------------------

    def start_run(
        self,
        *,
        team: str = "",
        task: str = "",
        spec: dict[str, Any] | None = None,
        spec_hash: str | None = None,
        ground_truth: str | None = None,
        metadata: dict[str, Any] | None = None,
        parent_run_id: str | None = None,
        fork_step: int | None = None,
        intervention: dict[str, Any] | None = None,
        run_id: str | None = None,
    ) -> str:
        rid = run_id or new_id()
        r = self.redact
        now = utcnow()
        row = {
            "id": rid,
            "parent_run_id": parent_run_id,
            "fork_step": fork_step,
            "intervention": r.value(intervention),
            "team": r.text(team),
            "spec": r.value(spec),
            "spec_hash": spec_hash,
            "task": r.text(task),
            "ground_truth": r.optional(ground_truth),
            "status": "running",
            "started_at": now,
            "input_tokens": 0,
            "output_tokens": 0,
            "step_count": 0,
            "source": "native",
            "metadata": r.value(metadata or {}),
            "owner": self.owner,
        }
        with self.backend.write.begin() as conn:
            # Values as parameters, not in the statement: one cached statement for
            # every run, and no cache key computed over the spec. (The heartbeat is
            # the database's clock, an expression.)
            conn.execute(insert(_RUNS).values(heartbeat_at=self.backend.clock()), row)
        with self._lock:
            self._next_index[rid] = 0
        self._track(rid)
        return rid

    def finish_run(
        self,
        run_id: str,
        *,
        status: str,
        final_answer: str | None = None,
        termination_reason: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Run:
        """Close the run row and return it as closed (one UPDATE that sums the
        run's steps and returns the row, so nobody has to read it back)."""
        if status not in RUN_STATUSES or status == "running":
            raise ValueError(f"finish_run status must be one of {RUN_STATUSES[1:]}, not {status!r}")
        values: dict[str, Any] = {
            "status": status,
            "final_answer": self.redact.optional(final_answer),
            "termination_reason": termination_reason,
            "finished_at": utcnow(),
            "owner": None,
            "heartbeat_at": None,
        }
        with self.backend.write.begin() as conn:
            if metadata:
                current = conn.execute(
                    select(_RUNS.c.metadata).where(_RUNS.c.id == run_id)
                ).scalar()
                values["metadata"] = {**(current or {}), **self.redact.value(metadata)}
            row = conn.execute(_FINISH, {**values, "run_id_": run_id}).mappings().one_or_none()
            if row is None:
                raise NotFoundError(f"no run {run_id} in {self.backend.where}")
        self._forget(run_id)
        return run_from_row(row)

    def reopen_run(self, run_id: str) -> None:
        with self.backend.write.begin() as conn:
            conn.execute(
                update(_RUNS)
                .where(_RUNS.c.id == run_id)
                .values(
                    status="running",
                    owner=self.owner,
                    heartbeat_at=self.backend.clock(),
                    finished_at=None,
                    termination_reason=None,
                )
            )
        with self._lock:
            self._next_index.pop(run_id, None)
        self._track(run_id)

    def describe_run(self, run_id: str, *, team: str, task: str) -> None:
        with self.backend.write.begin() as conn:
            conn.execute(
                update(_RUNS)
                .where(_RUNS.c.id == run_id)
                .values(team=self.redact.text(team), task=self.redact.text(task))
            )

    def update_run_metadata(self, run_id: str, values: dict[str, Any]) -> None:
        with self.backend.write.begin() as conn:
            current = conn.execute(select(_RUNS.c.metadata).where(_RUNS.c.id == run_id)).scalar()
            merged = {**(current or {}), **self.redact.value(values)}
            conn.execute(update(_RUNS).where(_RUNS.c.id == run_id).values(metadata=merged))

    def recover_interrupted(self) -> list[str]:
        """Mark as `interrupted` the running runs whose owner is gone; returns their ids."""
        with self.backend.read.connect() as conn:
            stale = self.backend.read_clock(conn) - timedelta(seconds=self.lease_s)
            rows = conn.execute(
                select(_RUNS.c.id, _RUNS.c.owner, _RUNS.c.heartbeat_at).where(
                    _RUNS.c.status == "running"
                )
            ).all()
        dead = [
            rid for rid, owner, beat in rows if owner != self.owner and _gone(owner, beat, stale)
        ]
        if dead and not self.backend.read_only:  # a reader that cannot write leaves them be
            with self.backend.write.begin() as conn:
                conn.execute(
                    update(_RUNS)
                    .where(_RUNS.c.id.in_(dead), _RUNS.c.status == "running")
                    .values(
                        status="interrupted",
                        termination_reason="process died",
                        owner=None,
                        heartbeat_at=None,
                    )
                )
        return dead

    # -- steps ---------------------------------------------------------------

    def append_step(
        self,
        run_id: str,
        *,
        agent: str,
        kind: str = "message",
        content: str = "",
        data: dict[str, Any] | None = None,
        model: str | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        latency_s: float | None = None,
        cost_usd: float | None = None,
        checkpoint_id: str | None = None,
        error: str | None = None,
        inputs: Sequence[Any] | None = None,
    ) -> int:
        r = self.redact
        refs, blobs = encode_inputs(inputs, r) if inputs is not None else (None, {})
        with self._lock:
            blobs = {k: v for k, v in blobs.items() if k not in self._known_blobs}
        row = {
            "run_id": run_id,
            "agent": agent,
            "kind": kind,
            "content": r.text(content),
            "data": r.value(data) if data is not None else None,
            "model": model,
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "latency_s": latency_s,
            "cost_usd": cost_usd,
            "checkpoint_id": checkpoint_id,
            "error": r.optional(error),
            "created_at": utcnow(),
            "inputs": refs,
        }
        for _ in range(3):
            with self._lock:
                index = self._next_index.get(run_id)
            if index is None:
                index = self._load_next_index(run_id)
            row["idx"] = index
            try:
                self.backend.record_step(row, blobs)
            except StepConflict:
                # Another writer appended to this run; learn the new end and retry.
                with self._lock:
                    self._next_index.pop(run_id, None)
                continue
            with self._lock:
                self._next_index[run_id] = index + 1
                if len(self._known_blobs) > _KNOWN_BLOBS_MAX:
                    self._known_blobs.clear()
                self._known_blobs.update(blobs)
            return index
        raise StoreError(f"could not append a step to run {run_id}: its step indexes keep changing")

    def truncate_steps(self, run_id: str, from_index: int) -> int:
        with self.backend.write.begin() as conn:
            done = conn.execute(
                _STEPS.delete().where(_STEPS.c.run_id == run_id, _STEPS.c.idx >= from_index)
            )
        with self._lock:
            self._next_index.pop(run_id, None)
        return int(done.rowcount or 0)

    def copy_steps(self, source_run: str, target_run: str, before_index: int) -> int:
        columns = [c for c in _STEPS.c if c.name not in ("id", "run_id")]
        query = (
            select(*columns)
            .where(_STEPS.c.run_id == source_run, _STEPS.c.idx < before_index)
            .order_by(_STEPS.c.idx)
        )
        with self.backend.write.begin() as conn:
            rows = [dict(r._mapping) for r in conn.execute(query)]
            for r in rows:
                r["run_id"] = target_run
            if rows:
                conn.execute(insert(_STEPS), rows)
        with self._lock:
            self._next_index.pop(target_run, None)
        return len(rows)

    def _load_next_index(self, run_id: str) -> int:
        with self.backend.read.connect() as conn:
            exists = conn.execute(select(_RUNS.c.id).where(_RUNS.c.id == run_id)).scalar()
            if exists is None:
                raise NotFoundError(f"no run {run_id} in {self.backend.where}")
            last = conn.execute(
                select(func.max(_STEPS.c.idx)).where(_STEPS.c.run_id == run_id)
            ).scalar()
        return 0 if last is None else int(last) + 1

    # -- heartbeat -----------------------------------------------------------

    def _track(self, run_id: str) -> None:
        """Heartbeat `run_id` until it is finished (a daemon thread, one per store,
        that ends once the store records no run and starts again with the next)."""
        if not self.backend.shared:  # nobody else can see an in-memory run: nothing to prove
            return
        with self._lock:
            self._live.add(run_id)
            if self._beat is None or not self._beat.is_alive():
                self._beat_stop.clear()
                self._beat = threading.Thread(
                    target=self._heartbeat, name="mascope-run-heartbeat", daemon=True
                )
                self._beat.start()

    def _forget(self, run_id: str) -> None:
        with self._lock:
            self._next_index.pop(run_id, None)
            self._live.discard(run_id)

    def _heartbeat(self) -> None:
        while not self._beat_stop.wait(self.heartbeat_s):
            with self._lock:
                # Nothing left to prove alive: end, rather than wake for ever and
                # keep an idle (or forgotten, unclosed) store and its engine alive.
                if not self._live:
                    self._beat = None
                    return
            self.beat()

    def beat(self) -> None:
        """Renew the heartbeat of every run this store is recording (the thread calls it)."""
        with self._lock:
            live = list(self._live)
        if not live or self.backend.read_only:
            return
        try:
            with self.backend.write.begin() as conn:
                conn.execute(
                    update(_RUNS)
                    .where(
                        _RUNS.c.id.in_(live),
                        _RUNS.c.owner == self.owner,
                        _RUNS.c.status == "running",
                    )
                    .values(heartbeat_at=self.backend.clock())
                )
        except Exception:  # a missed beat is retried at the next; the lease allows several
            pass

    def close(self) -> None:
        self._beat_stop.set()
        beat = self._beat
        if beat is not None and beat is not threading.current_thread():
            beat.join(timeout=5)
        self._beat = None


def _gone(owner: str | None, beat: Any, stale: datetime) -> bool:
    """Whether a running run's owner is gone: a process of this host that exited,
    or a heartbeat older than the lease (the only sign that works across hosts)."""
    if not owner_alive(owner):
        return True
    if beat is None:  # recorded before heartbeats (schema v4): the pid check is all there is
        return False
    if beat.tzinfo is None:
        beat = beat.replace(tzinfo=UTC)
    return bool(beat < stale)


__all__ = ["HEARTBEAT_S", "RUN_LEASE_S", "Recorder"]


def _steps_of_run(column: Any) -> Any:
    return select(column).where(_STEPS.c.run_id == bindparam("run_id_")).scalar_subquery()


_FINISH = (
    update(_RUNS)
    .where(_RUNS.c.id == bindparam("run_id_"))
    .values(
        step_count=_steps_of_run(func.count()),
        input_tokens=_steps_of_run(func.coalesce(func.sum(_STEPS.c.input_tokens), 0)),
        output_tokens=_steps_of_run(func.coalesce(func.sum(_STEPS.c.output_tokens), 0)),
        cost_usd=_steps_of_run(func.sum(_STEPS.c.cost_usd)),
    )
    .returning(*_RUNS.c)
)
"""UPDATE runs SET the closing values (parameters) and the totals summed from the run's
steps WHERE id = :run_id_ RETURNING the row."""


def run_from_row(row: Any) -> Run:
    """A `Run` from a row of the runs table (its columns by name)."""
    values = dict(row)
    values["metadata_"] = values.pop("metadata")
    return Run(**values)
