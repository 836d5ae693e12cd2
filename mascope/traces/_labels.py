"""Labels on runs: failure-mode annotations and who-and-when attributions."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, create_model
from sqlalchemy import Connection, bindparam, func, insert, select
from sqlmodel import Session, SQLModel, col

from ._engine import Backend, aware
from ._ids import new_id
from ._redact import Redactor
from ._schema import Annotation, AnnotationBase, Attribution, AttributionBase

_ANNOTATIONS = Annotation.__table__  # type: ignore[attr-defined]
_ATTRIBUTIONS = Attribution.__table__  # type: ignore[attr-defined]

_Label = TypeVar("_Label", Annotation, Attribution)


def _row_model(model: type[SQLModel]) -> type[BaseModel]:
    """`model`'s fields as a plain pydantic model: it validates a row in half the
    time SQLModel's own validation takes, which adds up in a judge batch that
    writes fifteen labels per run."""
    fields: dict[str, Any] = {k: (f.annotation, f) for k, f in model.model_fields.items()}
    return create_model(f"{model.__name__}Row", **fields)


_ANNOTATION_ROW = _row_model(AnnotationBase)
_ATTRIBUTION_ROW = _row_model(AttributionBase)


class Labels:
    """Writes and reads a run's annotations and attributions."""

    def __init__(self, backend: Backend, redact: Redactor, require_run: Callable[[str], None]):
        self.backend = backend
        self.redact = redact
        self.require_run = require_run

    # -- rows ----------------------------------------------------------------

    def annotation_row(self, run_id: str, a: AnnotationBase | dict[str, Any]) -> dict[str, Any]:
        """A validated, redacted `annotations` row."""
        data = dict(a) if isinstance(a, dict) else a.model_dump()
        data.setdefault("id", new_id())
        data = aware(_ANNOTATION_ROW.model_validate(data).model_dump())
        data["rationale"] = self.redact.text(data["rationale"])
        if data.get("status_reason"):
            data["status_reason"] = self.redact.text(data["status_reason"])
        data["run_id"] = run_id
        return data

    def attribution_row(self, run_id: str, a: AttributionBase | dict[str, Any]) -> dict[str, Any]:
        """A validated, redacted `attributions` row."""
        data = dict(a) if isinstance(a, dict) else a.model_dump()
        data.setdefault("id", new_id())
        data = aware(_ATTRIBUTION_ROW.model_validate(data).model_dump())
        data["reason"] = self.redact.text(data["reason"])
        data["intervention"] = self.redact.optional(data["intervention"])
        data["run_id"] = run_id
        return data

    # -- writing (each inside a caller's transaction, or its own) -----------

    def replace_in(
        self,
        conn: Connection,
        run_id: str,
        prefix: str,
        rows: Sequence[dict[str, Any]],
        *,
        job_id: str | None = None,
    ) -> None:
        """Inside `conn`'s transaction: drop the run's labels from annotators starting
        with `prefix` (of one job, if given), then insert `rows`."""
        query = _ANNOTATIONS.delete().where(
            _ANNOTATIONS.c.run_id == run_id,
            _ANNOTATIONS.c.annotator.startswith(prefix, autoescape=True),
        )
        if job_id is not None:
            query = query.where(_ANNOTATIONS.c.job_id == job_id)
        conn.execute(query)
        self.insert_in(conn, rows)

    def insert_in(self, conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
        """Inside `conn`'s transaction: insert annotation rows (from `annotation_row`)."""
        if rows:
            conn.execute(insert(_ANNOTATIONS), list(rows))

    def add_attribution_in(self, conn: Connection, row: dict[str, Any]) -> None:
        conn.execute(insert(_ATTRIBUTIONS), row)

    def add_annotations(
        self, run_id: str, annotations: Iterable[AnnotationBase | dict[str, Any]]
    ) -> list[str]:
        rows = [self.annotation_row(run_id, a) for a in annotations]
        if rows:
            self.require_run(run_id)
            with self.backend.write.begin() as conn:
                self.insert_in(conn, rows)
        return [row["id"] for row in rows]

    def replace_annotations(
        self,
        run_id: str,
        *,
        annotator_prefix: str,
        annotations: Iterable[AnnotationBase | dict[str, Any]],
        job_id: str | None = None,
    ) -> list[str]:
        rows = [self.annotation_row(run_id, a) for a in annotations]
        self.require_run(run_id)
        with self.backend.write.begin() as conn:
            self.replace_in(conn, run_id, annotator_prefix, rows, job_id=job_id)
        return [row["id"] for row in rows]

    def add_attribution(self, run_id: str, attribution: AttributionBase | dict[str, Any]) -> str:
        row = self.attribution_row(run_id, attribution)
        self.require_run(run_id)
        with self.backend.write.begin() as conn:
            self.add_attribution_in(conn, row)
        return str(row["id"])

    # -- reading -------------------------------------------------------------

    def annotations(self, run_id: str) -> list[Annotation]:
        return self._rows(Annotation, run_id)

    def attributions(self, run_id: str) -> list[Attribution]:
        return self._rows(Attribution, run_id)

    def _rows(self, table: type[_Label], run_id: str) -> list[_Label]:
        with Session(self.backend.read) as session:
            query = select(table).where(col(table.run_id) == run_id).order_by(col(table.id))
            rows = list(session.scalars(query).all())
            for row in rows:
                session.expunge(row)
        return rows

    def modes_by_run(self, run_ids: Sequence[str]) -> dict[str, list[str]]:
        if not run_ids:
            return {}
        query = (
            select(_ANNOTATIONS.c.run_id, _ANNOTATIONS.c.mode)
            .where(
                _ANNOTATIONS.c.run_id.in_(bindparam("ids", expanding=True)),
                _ANNOTATIONS.c.present.is_(True),
            )
            .distinct()
        )
        out: dict[str, list[str]] = {rid: [] for rid in run_ids}
        with self.backend.read.connect() as conn:
            for rid, mode in conn.execute(query, {"ids": list(run_ids)}):
                out[rid].append(mode)
        for modes in out.values():
            modes.sort()
        return out

    def labels_mark(self) -> str | None:
        # The backend's insertion counter where it has one (SQLite's rowid); else
        # how many labels there are and the newest id (ids sort by creation time).
        column = self.backend.insertion_mark()
        with self.backend.read.connect() as conn:
            if column is not None:
                mark = conn.execute(select(column).select_from(_ANNOTATIONS)).scalar()
                return None if mark is None else str(mark)
            count, newest = conn.execute(select(func.count(), func.max(_ANNOTATIONS.c.id))).one()
        return None if newest is None else f"{count}:{newest}"


__all__ = ["Labels"]
