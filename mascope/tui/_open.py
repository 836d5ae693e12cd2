"""Opening a store for viewing: never create one, refuse foreign files up front."""

from __future__ import annotations

from pathlib import Path

from mascope.traces import TraceStore


def open_for_viewing(target: str | Path | None = None) -> TraceStore:
    """Open an existing trace store to look at it.

    A SQLite file is checked read-only first, so a missing path, a file that is
    not SQLite and a SQLite file that is not a mascope store each fail with a
    one-line `StoreError` and nothing is created or changed.

    Args:
        target: a SQLite path or SQLAlchemy URL; default `MASCOPE_DB` or `./mascope.db`.
    """
    return TraceStore(target, create=False)
