"""Checking and reading a SQLite store file with the stdlib `sqlite3` module only.

Kept apart from `_engine.py` so the TUI can check a store and read its first
page before SQLAlchemy is imported (see `_glance.py`).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from mascope.errors import StoreError

from ._constants import HOW_TO_MAKE_ONE

_SQLITE_MAGIC = b"SQLite format 3\x00"


def is_read_only_error(exc: BaseException | None) -> bool:
    """Whether a database error says the file may not be written."""
    text = str(exc).lower()
    return "readonly database" in text or "read-only database" in text


def check_existing_sqlite(path: Path) -> None:
    """A one-line `StoreError` unless `path` is a mascope store; reads only."""
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
        con = connect_read_only(path)
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


def connect_read_only(path: Path) -> sqlite3.Connection:
    """A connection that never writes: `mode=ro`, or `immutable=1` when even the
    WAL index cannot be created (a read-only folder, and no writer to see)."""
    uri = path.resolve().as_uri()
    con = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=30, check_same_thread=False)
    try:
        con.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return con
    except sqlite3.DatabaseError as exc:
        con.close()
        if not is_read_only_error(exc) and "unable to open" not in str(exc):
            raise
    return sqlite3.connect(
        f"{uri}?mode=ro&immutable=1", uri=True, timeout=30, check_same_thread=False
    )


__all__ = ["check_existing_sqlite", "connect_read_only", "is_read_only_error"]
