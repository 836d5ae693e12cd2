"""The run's LangGraph checkpointer, with every string it writes redacted.

The state carries the task and the agents' latest outputs, so without this
the checkpoint database would hold in clear the secrets the trace store masks.
Redacting in the serializer catches every value LangGraph writes (checkpoints,
pending writes, forked state) whatever method of the saver writes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import aiosqlite
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import ChannelVersions, Checkpoint, CheckpointMetadata
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from pydantic import BaseModel

from mascope.errors import StoreError
from mascope.traces import Redactor
from mascope.traces._engine import use_wal

_PLAIN = frozenset({int, float, bool, type(None), bytes})
"""Types that hold no text to redact (exactly these types, not subclasses)."""


class RedactingSerializer:
    """Wraps a LangGraph serializer: values are redacted on the way out, read back as stored."""

    def __init__(self, inner: Any, redactor: Redactor):
        self.inner = inner
        self.redactor = redactor

    def _redact(self, obj: Any) -> Any:
        if isinstance(obj, dict) and "channel_values" in obj and "channel_versions" in obj:
            # A checkpoint: only its channel values are the run's data; the rest
            # (ids, versions, timestamps) is LangGraph's bookkeeping, left exact.
            return {**obj, "channel_values": self._deep(obj["channel_values"])}
        return self._deep(obj)

    def _deep(self, obj: Any) -> Any:
        """Every string inside `obj` redacted, whatever holds it; the same types come back."""
        if type(obj) in _PLAIN:  # most of a checkpoint: counters, flags, versions
            return obj
        if isinstance(obj, str):
            return self.redactor.text(obj)
        if isinstance(obj, dict):
            return {k: self._deep(v) for k, v in obj.items()}
        if isinstance(obj, list | tuple | set | frozenset):
            return type(obj)(self._deep(v) for v in obj)
        if isinstance(obj, BaseException):
            # A node's error is written too (`__error__`), and its message may quote the task.
            args = [self._deep(a) for a in obj.args]
            try:
                return type(obj)(*args)
            except Exception:  # an exception class with its own signature
                return RuntimeError(*args)
        if isinstance(obj, BaseModel):
            return obj.model_copy(update={k: self._deep(v) for k, v in obj.__dict__.items()})
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            changes = {
                f.name: self._deep(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.init
            }
            return dataclasses.replace(obj, **changes)
        return obj

    def dumps_typed(self, obj: Any) -> tuple[str, bytes]:
        return self.inner.dumps_typed(self._redact(obj))  # type: ignore[no-any-return]

    def loads_typed(self, data: tuple[str, bytes]) -> Any:
        return self.inner.loads_typed(data)

    def __getattr__(self, name: str) -> Any:
        # Anything else the saver may ask of its serializer goes to the wrapped one.
        return getattr(self.inner, name)


def _clean(redactor: Redactor, metadata: CheckpointMetadata) -> CheckpointMetadata:
    return cast(CheckpointMetadata, redactor.strings(dict(metadata)))


class _Redacting:
    """Mixed into a LangGraph saver: it also redacts checkpoint metadata, which savers
    write as JSON beside the serializer (some LangGraph versions put node outputs
    there, as `writes`)."""

    serde: Any
    redactor: Redactor

    def __init__(self, conn: Any, redactor: Redactor):
        super().__init__(conn)  # type: ignore[call-arg]
        self.redactor = redactor
        self.serde = RedactingSerializer(self.serde, redactor)

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        clean = _clean(self.redactor, metadata)
        return await super().aput(config, checkpoint, clean, new_versions)  # type: ignore[misc,no-any-return]


class _RedactingSaver(_Redacting, AsyncSqliteSaver):
    """LangGraph's async SQLite saver, redacting what it stores."""


def checkpoint_saver(conn: aiosqlite.Connection, redactor: Redactor) -> AsyncSqliteSaver:
    """LangGraph's async SQLite saver on `conn`, redacting what it stores with `redactor`."""
    return _RedactingSaver(conn, redactor)


_SETUP_LOCK = 0x6D61636B  # held while LangGraph's checkpoint tables are created or migrated
_set_up: set[str] = set()
"""PostgreSQL URLs whose checkpoint tables this process has already set up."""


def _postgres_saver_class() -> type[Any]:
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

    class _RedactingPostgresSaver(_Redacting, AsyncPostgresSaver):
        """LangGraph's PostgreSQL saver, redacting like the SQLite one."""

    return _RedactingPostgresSaver


def _switch_to_wal(path: Path) -> None:
    with contextlib.closing(sqlite3.connect(path, timeout=30)) as con:
        use_wal(con)


@contextlib.asynccontextmanager
async def open_saver(location: Path | str, redactor: Redactor) -> AsyncIterator[Any]:
    """A redacting LangGraph saver where a store keeps its checkpoints.

    `location` is `TraceStore.checkpoint_location()`: a SQLite file beside a
    SQLite store, or the PostgreSQL URL of a server store, whose checkpoints
    then live in the same database (so any machine can resume or fork its runs).
    """
    if isinstance(location, str):
        try:
            from psycopg import AsyncConnection
            from psycopg.rows import dict_row
        except ImportError:
            raise StoreError(
                "checkpoints on PostgreSQL need langgraph-checkpoint-postgres and psycopg; "
                "pip install 'mascope[postgres]'"
            ) from None
        saver_class = _postgres_saver_class()
        async with await AsyncConnection.connect(
            location, autocommit=True, prepare_threshold=0, row_factory=dict_row
        ) as pg:
            saver = saver_class(pg, redactor)
            if location not in _set_up:
                # Two processes setting up one database at once would race on
                # LangGraph's migration rows: one at a time.
                await pg.execute(f"SELECT pg_advisory_lock({_SETUP_LOCK})")
                try:
                    await saver.setup()
                finally:
                    await pg.execute(f"SELECT pg_advisory_unlock({_SETUP_LOCK})")
                _set_up.add(location)
            yield saver
        return
    async with aiosqlite.connect(location, timeout=30) as conn:
        async with conn.execute("PRAGMA journal_mode") as cur:
            row = await cur.fetchone()
        if not row or str(row[0]).lower() != "wal":  # a new file: runs starting together race on it
            await asyncio.to_thread(_switch_to_wal, location)
        # WAL with synchronous=NORMAL: durable against a killed process (what
        # resume needs) without an fsync per checkpoint.
        await conn.execute("PRAGMA synchronous=NORMAL")
        yield checkpoint_saver(conn, redactor)
