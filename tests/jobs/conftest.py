"""A store for the queue's tests, on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mascope.traces import TraceStore


def psycopg_url(url: str) -> str:
    """SQLAlchemy's URL for psycopg 3 (plain `postgresql://` means psycopg2)."""
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


@pytest.fixture(params=["sqlite", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a store lives: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "queue.db")
    return psycopg_url(request.getfixturevalue("postgres_url"))


@pytest.fixture
def qstore(target: str) -> Iterator[TraceStore]:
    with TraceStore(target) as store:
        yield store
