"""Opening a store for viewing: never create one, refuse foreign files up front."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import create_engine, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from mascope.errors import StoreError
from mascope.settings import Settings
from mascope.traces import TraceStore

_SQLITE_MAGIC = b"SQLite format 3\x00"
HOW_TO_MAKE_ONE = (
    "make one with `mascope demo`, `mascope run TEAM.yaml --task ...` "
    "or `mascope runs import FORMAT FILE`"
)


def open_for_viewing(target: str | Path | None = None) -> TraceStore:
    """Open an existing trace store to look at it.

    A SQLite file is checked read-only first, so a missing path, a file that is
    not SQLite and a SQLite file that is not a mascope store each fail with a
    one-line `StoreError` and nothing is created or changed.

    Args:
        target: a SQLite path or SQLAlchemy URL; default `MASCOPE_DB` or `./mascope.db`.
    """
    raw = str(target) if target is not None else Settings.load().db
    if "://" not in raw:
        _check_sqlite_file(Path(raw).expanduser())
        return TraceStore(raw, create=False)
    try:
        url = make_url(raw)
    except ArgumentError:
        raise StoreError(f"{raw!r} is not a database URL or path (MASCOPE_DB / --db)") from None
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        _check_sqlite_file(Path(str(url.database)).expanduser())
    else:
        _check_database(raw)
    return TraceStore(raw, create=False)


def _check_database(url: str) -> None:
    """A server database must already hold a store: opening one would create the tables."""
    shown = make_url(url).render_as_string(hide_password=True)
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot open trace store {shown}: {exc.__class__.__name__}") from None
    finally:
        engine.dispose()
    if "mascope_meta" not in tables:
        raise StoreError(
            f"{shown} holds no mascope trace store; {HOW_TO_MAKE_ONE} with --db {shown}"
        )


def _check_sqlite_file(path: Path) -> None:
    if not path.exists():
        raise StoreError(f"no trace store at {path}; {HOW_TO_MAKE_ONE}, or pass --db PATH")
    if path.is_dir():
        raise StoreError(f"{path} is a folder, not a trace store; pass --db PATH to a .db file")
    try:
        with path.open("rb") as fh:
            head = fh.read(len(_SQLITE_MAGIC))
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror or exc}") from None
    if head != _SQLITE_MAGIC:
        raise StoreError(
            f"{path} is not a SQLite database; pass --db PATH to a mascope trace store"
        )
    try:
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
        try:
            found = con.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'mascope_meta'"
            ).fetchone()
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"cannot read {path}: {exc}; is it a mascope trace store?") from None
    if found is None:
        raise StoreError(
            f"{path} is a SQLite database but not a mascope trace store; "
            "pass --db PATH to a store mascope wrote"
        )
