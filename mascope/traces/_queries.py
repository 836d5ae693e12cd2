"""Reading the store: runs, steps and their inputs, a page at a time.

Pages of runs are keyset pages in every order: `page_runs` hands back an
opaque cursor that remembers the order and where the page ended, so a caller
never needs to know which sort pages by id and which by value, and a page
never repeats or skips a run when runs are added between pages.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select
from sqlmodel import Session, col

from mascope.errors import ConfigError, NotFoundError, did_you_mean

from ._constants import RunSort
from ._constants import encode_cursor as _encode_cursor
from ._engine import Backend
from ._inputs import InputMessage, decode_inputs, gather
from ._redact import Redactor
from ._schema import Annotation, Blob, Meta, Run, Step

_RUNS = Run.__table__  # type: ignore[attr-defined]
_STEPS = Step.__table__  # type: ignore[attr-defined]
_ANNOTATIONS = Annotation.__table__  # type: ignore[attr-defined]
_META = Meta.__table__  # type: ignore[attr-defined]
_BLOBS = Blob.__table__  # type: ignore[attr-defined]

_RUN_SORTS: dict[RunSort, Any] = {
    "time": _RUNS.c.id,
    "team": _RUNS.c.team,
    "status": _RUNS.c.status,
    "steps": _RUNS.c.step_count,
    "tokens": _RUNS.c.input_tokens + _RUNS.c.output_tokens,
    # Runs without a known cost sort as the cheapest, on every database
    # (SQLite and PostgreSQL disagree on where NULLs go).
    "cost": func.coalesce(_RUNS.c.cost_usd, -1.0),
}
_ID_PAGE = 1000
"""How many run ids `all_run_ids` reads per query."""


@dataclass(frozen=True)
class RunPage:
    """One page of runs and the cursor of the next (None: this was the last page)."""

    runs: list[Run]
    next: str | None


def _run_order(sort: RunSort, ascending: bool) -> tuple[Any, list[Any]]:
    """The sort key of an order of runs, and its ORDER BY (ties: newest first)."""
    key = _RUN_SORTS[sort]
    order = [key.asc() if ascending else key.desc()]
    if sort != "time":
        order.append(_RUNS.c.id.desc())
    return key, order


def _decode_cursor(cursor: str, sort: str, ascending: bool) -> tuple[Any, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        got_sort, got_asc, key, run_id = json.loads(raw)
    except (binascii.Error, ValueError, TypeError):
        raise ConfigError(f"{cursor[:40]!r} is not a page cursor mascope handed out") from None
    if got_sort != sort or got_asc != ascending or not isinstance(run_id, str):
        raise ConfigError(
            "this page cursor belongs to another order of runs; start again from the first page"
        )
    return key, run_id


class Queries:
    """Read-only questions about runs and steps."""

    def __init__(self, backend: Backend, redact: Redactor):
        self.backend = backend
        self.redact = redact

    def _scalars(self, query: Any) -> list[Any]:
        with Session(self.backend.read) as session:
            rows = list(session.scalars(query).all())
            for row in rows:
                session.expunge(row)
        return rows

    @property
    def schema_version(self) -> int:
        with self.backend.read.connect() as conn:
            return int(
                conn.execute(
                    select(_META.c.value).where(_META.c.key == "schema_version")
                ).scalar_one()
            )

    def require_run(self, run_id: str) -> None:
        if not self.has_run(run_id):
            raise NotFoundError(f"no run {run_id} in {self.backend.where}")

    def resolve_run_id(self, text: str) -> str:
        needle = text.strip().upper()
        if not needle:
            raise NotFoundError("no run id given")
        with self.backend.read.connect() as conn:
            found = (
                conn.execute(
                    select(_RUNS.c.id)
                    .where(_RUNS.c.id >= needle, _RUNS.c.id < needle + "\x7f")
                    .limit(2)
                )
                .scalars()
                .all()
            )
            if len(found) == 1:
                return str(found[0])
            if len(found) > 1 and needle not in found:
                raise NotFoundError(f"run id prefix {text!r} is ambiguous; give more characters")
            if needle in found:
                return needle
            recent = (
                conn.execute(select(_RUNS.c.id).order_by(_RUNS.c.id.desc()).limit(200))
                .scalars()
                .all()
            )
        raise NotFoundError(
            f"no run {text!r} in {self.backend.where}{did_you_mean(needle, recent)}; "
            "see mascope runs list"
        )

    def get_run(self, run_id: str) -> Run:
        with Session(self.backend.read) as session:
            run = session.get(Run, run_id)
            if run is None:
                raise NotFoundError(
                    f"no run {run_id} in {self.backend.where}; see mascope runs list"
                )
            session.expunge(run)
            return run

    def get_runs(self, run_ids: Sequence[str]) -> dict[str, Run]:
        """The rows of those of `run_ids` that exist, in one query."""
        if not run_ids:
            return {}
        rows = self._scalars(select(Run).where(col(Run.id).in_(list(dict.fromkeys(run_ids)))))
        return {r.id: r for r in rows}

    def steps_of(self, run_ids: Sequence[str]) -> dict[str, list[Step]]:
        """Every step of each of `run_ids`, in order, in one query (for short runs:
        nothing pages the steps here)."""
        out: dict[str, list[Step]] = {r: [] for r in dict.fromkeys(run_ids)}
        if not out:
            return out
        query = (
            select(Step)
            .where(col(Step.run_id).in_(list(out)))
            .order_by(col(Step.run_id), col(Step.index))
        )
        for step in self._scalars(query):
            out[step.run_id].append(step)
        return out

    def page_runs(
        self,
        *,
        status: str | None = None,
        team: str | None = None,
        mode: str | None = None,
        source: str | None = None,
        search: str | None = None,
        sort: RunSort = "time",
        ascending: bool = False,
        limit: int = 50,
        cursor: str | None = None,
    ) -> RunPage:
        key, order = _run_order(sort, ascending)
        query = self.filter(
            select(Run, key.label("sort_key")).order_by(*order).limit(limit + 1),
            status=status,
            team=team,
            mode=mode,
            source=source,
            search=search,
        )
        if cursor:
            last_key, last_id = _decode_cursor(cursor, sort, ascending)
            if sort == "time":
                query = query.where(_RUNS.c.id > last_id if ascending else _RUNS.c.id < last_id)
            else:
                beyond = key > last_key if ascending else key < last_key
                query = query.where(or_(beyond, and_(key == last_key, _RUNS.c.id < last_id)))
        with Session(self.backend.read) as session:
            rows = list(session.execute(query).all())
            runs = [row[0] for row in rows[:limit]]
            for run in runs:
                session.expunge(run)
        more = len(rows) > limit
        next_cursor = None
        if more and runs:
            next_cursor = _encode_cursor(sort, ascending, rows[limit - 1][1], runs[-1].id)
        return RunPage(runs, next_cursor)

    def list_runs(
        self,
        *,
        status: str | None = None,
        team: str | None = None,
        mode: str | None = None,
        source: str | None = None,
        search: str | None = None,
        before: str | None = None,
        limit: int = 50,
        sort: RunSort = "time",
        ascending: bool = False,
        offset: int = 0,
    ) -> list[Run]:
        _, order = _run_order(sort, ascending)
        query = self.filter(
            select(Run).order_by(*order).limit(limit),
            status=status,
            team=team,
            mode=mode,
            source=source,
            search=search,
        )
        if before:
            query = query.where(col(Run.id) > before if ascending else col(Run.id) < before)
        if offset:
            query = query.offset(offset)
        return self._scalars(query)

    def child_runs(self, run_id: str, *, limit: int = 500) -> list[Run]:
        return self._scalars(
            select(Run).where(col(Run.parent_run_id) == run_id).order_by(col(Run.id)).limit(limit)
        )

    def all_run_ids(self, *, status: str | None = None, team: str | None = None) -> list[str]:
        # Only the id column, keyset-paged in id order: whole rows (specs,
        # metadata) would be read and dropped a thousand at a time.
        base = self.filter(
            select(_RUNS.c.id).order_by(_RUNS.c.id).limit(_ID_PAGE),
            status=status, team=team, mode=None, source=None, search=None,
        )  # fmt: skip
        ids: list[str] = []
        with self.backend.read.connect() as conn:
            while True:
                query = base.where(_RUNS.c.id > ids[-1]) if ids else base
                page = list(conn.execute(query).scalars())
                ids.extend(page)
                if len(page) < _ID_PAGE:
                    return ids

    def count_runs(
        self,
        *,
        status: str | None = None,
        team: str | None = None,
        mode: str | None = None,
        source: str | None = None,
        search: str | None = None,
    ) -> int:
        query = self.filter(
            select(func.count()).select_from(Run),
            status=status,
            team=team,
            mode=mode,
            source=source,
            search=search,
        )
        with self.backend.read.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def filter(
        self,
        query: Any,
        *,
        status: str | None,
        team: str | None,
        mode: str | None,
        source: str | None,
        search: str | None,
    ) -> Any:
        if status:
            query = query.where(col(Run.status) == status)
        if team:
            # Names are stored redacted: a name holding a secret is found by its stored form.
            query = query.where(col(Run.team).in_({team, self.redact.text(team)}))
        if source:
            query = query.where(col(Run.source) == source)
        if search:
            escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            query = query.where(col(Run.task).like(f"%{escaped}%", escape="\\"))
        if mode:
            labelled = select(col(Annotation.run_id)).where(
                col(Annotation.mode) == mode, col(Annotation.present).is_(True)
            )
            query = query.where(col(Run.id).in_(labelled))
        return query

    def steps(self, run_id: str, *, offset: int = 0, limit: int | None = None) -> list[Step]:
        query = select(Step).where(col(Step.run_id) == run_id).order_by(col(Step.index))
        if offset:
            query = query.where(col(Step.index) >= offset)
        if limit is not None:
            query = query.limit(limit)
        return self._scalars(query)

    def iter_steps(self, run_id: str, *, batch: int = 2000) -> Iterator[Step]:
        offset = 0
        while True:
            page = self.steps(run_id, offset=offset, limit=batch)
            yield from page
            if len(page) < batch:
                return
            offset = page[-1].index + 1

    def step_inputs(self, run_id: str, index: int) -> list[InputMessage]:
        with self.backend.read.connect() as conn:
            found = conn.execute(
                select(_STEPS.c.inputs).where(_STEPS.c.run_id == run_id, _STEPS.c.idx == index)
            ).first()
        if found is None:
            self.require_run(run_id)
            raise NotFoundError(f"run {run_id} has no step {index}")
        refs = found[0] or []
        return decode_inputs(refs, gather(refs, self.blobs))

    def blobs(self, keys: Sequence[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        wanted = list(dict.fromkeys(keys))
        query = select(_BLOBS.c.hash, _BLOBS.c.text).where(
            _BLOBS.c.hash.in_(bindparam("keys", expanding=True))
        )
        with self.backend.read.connect() as conn:
            for start in range(0, len(wanted), 500):
                rows = conn.execute(query, {"keys": wanted[start : start + 500]})
                out.update((str(key), str(text)) for key, text in rows)
        return out

    def count_steps(self, run_id: str) -> int:
        with self.backend.read.connect() as conn:
            return int(
                conn.execute(select(func.count()).where(_STEPS.c.run_id == run_id)).scalar_one()
            )

    def live_step_counts(self, run_ids: Sequence[str]) -> dict[str, int]:
        if not run_ids:
            return {}
        query = (
            select(_STEPS.c.run_id, func.count())
            .where(_STEPS.c.run_id.in_(bindparam("ids", expanding=True)))
            .group_by(_STEPS.c.run_id)
        )
        with self.backend.read.connect() as conn:
            return {rid: n for rid, n in conn.execute(query, {"ids": list(run_ids)})}

    def teams(self) -> list[str]:
        with self.backend.read.connect() as conn:
            return list(
                conn.execute(select(_RUNS.c.team).distinct().order_by(_RUNS.c.team)).scalars()
            )

    def has_source_key(self, key: str) -> bool:
        with self.backend.read.connect() as conn:
            return (
                conn.execute(select(_RUNS.c.id).where(_RUNS.c.source_key == key)).scalar()
                is not None
            )

    def has_run(self, run_id: str) -> bool:
        with self.backend.read.connect() as conn:
            return conn.execute(select(_RUNS.c.id).where(_RUNS.c.id == run_id)).scalar() is not None


__all__ = ["Queries", "RunPage", "RunSort"]
