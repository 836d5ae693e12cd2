"""The store the screens read, opened after the first paint, read off the UI thread.

`mascope tui` on a SQLite file reads the runs screen's first page with the
stdlib `sqlite3` module (`StoreGlance`) and paints it; the full `TraceStore`
(SQLAlchemy, SQLModel, pydantic: most of the start-up time) is opened by the
first read that needs it, in a worker thread. Every read of the screens goes
through `StoreSource.read` in a worker, so a key press never waits for a query.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from textual.dom import DOMNode
from textual.message import Message

from mascope.errors import MascopeError

from ._format import first_line

if TYPE_CHECKING:
    from mascope.traces import RunGlance, RunsGlance, TraceStore

T = TypeVar("T")

FIRST_PAGE = 100
"""Runs the runs screen reads at a time."""
STEP_PAGE = 200
"""Steps the run screen's timeline reads at a time."""


def open_for_viewing(target: str | Path | None = None) -> TraceStore:
    """Open an existing trace store to look at it.

    A SQLite file is checked read-only first, so a missing path, a file that is
    not SQLite and a SQLite file that is not a mascope store each fail with a
    one-line `StoreError` and nothing is created or changed.

    Args:
        target: a SQLite path or SQLAlchemy URL; default `MASCOPE_DB` or `./mascope.db`.
    """
    from mascope.traces import TraceStore

    return TraceStore(target, create=False)


class ReadFailed(Exception):
    """A read of the store failed; the message is one line, fit for a notification."""


class StoreSource:
    """An open `TraceStore`, or the target of one to open on first use.

    Args:
        store: a store already open (the caller closes it, unless `owns_store`).
        target: what to open otherwise (`open_for_viewing` checks it); closed by `close`.
        where: how messages name the store, known before it is open.
        first_runs: the runs screen's first page, read before the store was open.
        first_run: the first run screen's run and first steps, read likewise.
    """

    def __init__(
        self,
        *,
        store: TraceStore | None = None,
        target: str | Path | None = None,
        where: str | None = None,
        first_runs: RunsGlance | None = None,
        first_run: RunGlance | None = None,
        owns_store: bool = False,
    ) -> None:
        self._store = store
        self._owned = store is None or owns_store
        self._target = target
        self._lock = threading.Lock()
        self.where = store.where if store is not None else str(where or target)
        self.first_runs = first_runs
        self.first_run = first_run

    @property
    def is_open(self) -> bool:
        return self._store is not None

    def get(self) -> TraceStore:
        """The store, opened now if it is not yet (blocks: call it in a worker thread)."""
        with self._lock:
            if self._store is None:
                self._store = open_for_viewing(self._target)
            return self._store

    def read(self, query: Callable[[TraceStore], T]) -> T:
        """`query(store)`; a store error becomes `ReadFailed` with a one-line message."""
        try:
            return query(self.get())
        except MascopeError as exc:
            raise ReadFailed(first_line(str(exc))) from exc
        except Exception as exc:
            from sqlalchemy.exc import SQLAlchemyError

            if isinstance(exc, SQLAlchemyError):
                raise ReadFailed(first_line(str(exc))) from exc
            raise

    def close(self) -> None:
        """Close the store if this source opened it."""
        with self._lock:
            if self._owned and self._store is not None:
                self._store.close()
                self._store = None


class Read(Message):
    """A read done in a worker thread: `apply(result)` runs on the UI thread.

    `result` is what the read returned, or `ReadFailed`.
    """

    def __init__(self, result: object, apply: Callable[[Any], None]) -> None:
        super().__init__()
        self.result = result
        self.apply = apply


def read_in_worker(
    node: DOMNode,
    source: StoreSource,
    read: Callable[[TraceStore], Any],
    apply: Callable[[Any], None],
) -> None:
    """Run `read(store)` in a worker thread and post its result to `node` as `Read`
    (its handler calls `apply`): the UI goes on taking key presses meanwhile."""

    def work() -> None:
        try:
            result: object = source.read(read)
        except ReadFailed as exc:
            result = exc
        node.post_message(Read(result, apply))

    node.run_worker(work, thread=True, group="read")
