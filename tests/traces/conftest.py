"""The store's tests run against both backends: a SQLite file and a real PostgreSQL 15.

`db_url` is a fresh store location on each (a file in the test's temporary
folder, or a fresh database on the session's throwaway server), and `store`
is a `TraceStore` opened there, so every test that takes either runs twice.
Tests about SQLite files as such (WAL, permissions, foreign files) use
`tmp_path` directly and run once.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mascope.traces import TraceStore

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a new, empty store goes: a SQLite file path or a PostgreSQL URL."""
    if request.param == "sqlite":
        return str(tmp_path / "mascope.db")
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def store(db_url: str) -> Iterator[TraceStore]:
    """A fresh trace store on each backend."""
    with TraceStore(db_url) as s:
        yield s
