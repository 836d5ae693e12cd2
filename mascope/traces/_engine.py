"""The store's engine: opening, checking, tuning and migrating the database.

Everything that differs between SQLite and a server database lives here, as
two `Backend` classes with the same methods; the recorder, queries, labels
and jobs modules write portable SQLAlchemy and ask the backend for the rest.

* SQLite: WAL mode, a busy timeout and `BEGIN IMMEDIATE` for writes (so
  concurrent writers queue instead of failing), a separate reader engine, and
  a plain `sqlite3` connection for the recorder's hot path.
* PostgreSQL (or any other SQLAlchemy URL): one pooled engine, sessions in
  UTC, an advisory lock while a store is created or migrated, and a one-line
  error naming host and port when the server cannot be reached.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import sqlite3
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    create_engine,
    event,
    func,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, IntegrityError, OperationalError
from sqlalchemy.pool import QueuePool, StaticPool
from sqlmodel import SQLModel

from mascope.errors import StoreError
from mascope.settings import Settings

from . import _migrations
from ._constants import HOW_TO_MAKE_ONE
from ._schema import SCHEMA_VERSION, Blob, Meta, Step, utcnow
from ._sqlite_file import check_existing_sqlite, connect_read_only, is_read_only_error

_META = Meta.__table__  # type: ignore[attr-defined]
_BLOBS = Blob.__table__  # type: ignore[attr-defined]
_STEPS = Step.__table__  # type: ignore[attr-defined]
OUR_TABLES = frozenset(
    {"runs", "steps", "annotations", "attributions", "jobs", "job_items", "mascope_meta", "blobs"}
)

LANGGRAPH_TABLES = frozenset(
    {"checkpoints", "checkpoint_blobs", "checkpoint_writes", "checkpoint_migrations"}
)
"""LangGraph's checkpoint tables, which share a server store's database."""

_STEP_COLUMNS = (
    "run_id", "idx", "agent", "kind", "content", "data", "model", "input_tokens",
    "output_tokens", "latency_s", "cost_usd", "checkpoint_id", "error", "created_at", "inputs",
)  # fmt: skip
_STEP_SQL = (
    f"INSERT INTO steps ({', '.join(_STEP_COLUMNS)}) VALUES ({', '.join('?' * len(_STEP_COLUMNS))})"
)
_BLOB_SQL = "INSERT OR IGNORE INTO blobs (hash, text) VALUES (?, ?)"
_PG_STEP_SQL = f"INSERT INTO steps ({', '.join(_STEP_COLUMNS)}) VALUES ({', '.join(['%s'] * len(_STEP_COLUMNS))})"
_PG_BLOBS_AND_STEP_SQL = (
    "WITH parts AS (INSERT INTO blobs (hash, text) SELECT * FROM unnest(%s::varchar[], %s::text[]) "
    "ON CONFLICT DO NOTHING) " + _PG_STEP_SQL
)
_PREPARE_LOCK = (
    0x6D617363  # "masc": the advisory lock held while a server store is created or migrated
)


class StepConflict(Exception):
    """Another writer took this step index of the run first (the recorder retries)."""


def _sqlite_time(moment: datetime) -> str:
    """A timestamp as SQLAlchemy stores it in SQLite (UTC, no offset)."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _step_params(row: dict[str, Any]) -> tuple[Any, ...]:
    params = [row.get(c) for c in _STEP_COLUMNS]
    data = row.get("data")
    params[5] = None if data is None else json.dumps(data)
    params[13] = _sqlite_time(row["created_at"])
    inputs = row.get("inputs")
    params[14] = None if inputs is None else json.dumps(inputs)
    return tuple(params)


def read_only_message(where: object) -> str:
    return (
        f"the trace store {where} is read-only (this user cannot write the file or its folder); "
        "make both writable, or pass --db to a store you can write"
    )


def aware(row: dict[str, Any]) -> dict[str, Any]:
    """Timestamps without a zone (imported ones) are taken to be UTC."""
    for key, value in row.items():
        if isinstance(value, datetime) and value.tzinfo is None:
            row[key] = value.replace(tzinfo=UTC)
    return row


class Backend:
    """An open store database: its engines and what differs between databases."""

    url: str
    path: Path | None = None
    read_only: bool = False
    write: Engine
    read: Engine

    @property
    def where(self) -> str:
        """How messages name this store (a URL's password is hidden)."""
        return self.url

    def record_step(self, row: dict[str, Any], blobs: dict[str, str]) -> None:
        """Insert one step and the input texts it refers to, committed together;
        `StepConflict` if the run already has a step at this index."""
        try:
            with self.write.begin() as conn:
                self.insert_blobs(conn, blobs)
                conn.execute(insert(_STEPS), row)
        except IntegrityError:
            raise StepConflict from None

    def insert_steps(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        """Insert many steps inside an open transaction (an import)."""
        conn.execute(insert(_STEPS), [aware(r) for r in rows])

    def insert_blobs(self, conn: Connection, blobs: dict[str, str]) -> None:
        """Store input texts not stored yet, inside an open transaction."""
        if not blobs:
            return
        known = set(
            conn.execute(select(_BLOBS.c.hash).where(_BLOBS.c.hash.in_(list(blobs)))).scalars()
        )
        fresh = [{"hash": k, "text": v} for k, v in blobs.items() if k not in known]
        if fresh:
            conn.execute(insert(_BLOBS), fresh)

    @property
    def shared(self) -> bool:
        """Whether other processes can open this store (an in-memory one they cannot)."""
        return True

    def clock(self) -> Any:
        """The time heartbeats are written in, as a value or SQL expression.

        One clock for every host that shares the store, so liveness does not
        depend on the hosts' clocks agreeing: the server's for a server store.
        """
        return utcnow()

    def read_clock(self, conn: Connection) -> datetime:
        """The current time of `clock`, read inside `conn`."""
        return utcnow()

    def insertion_mark(self) -> Any:
        """A column expression that grows with every row inserted into a table (see `labels_mark`)."""
        return None

    def lock_for_prepare(self, conn: Connection) -> None:
        """Serialise creating and migrating the store between processes."""

    def fold_wal(self) -> None:
        """Fold a write-ahead log back into the main file (SQLite only)."""

    def checkpoint_location(self) -> Path | str:
        """Where LangGraph checkpoints of this store's runs go: a SQLite file or a server URL."""
        return Path("mascope.checkpoints.db")

    def explain(self, exc: DatabaseError) -> str:
        """A one-line message for a database error met while opening the store."""
        return f"cannot open trace store {self.where}: {_first_line(exc.orig or exc)}"

    def close(self) -> None:
        self.write.dispose()
        if self.read is not self.write:
            self.read.dispose()


class SqliteBackend(Backend):
    """A SQLite file (or an in-memory database)."""

    def __init__(self, url: str, path: Path | None, *, create: bool, read_only: bool | None):
        self.url = url
        self.path = path
        if path is not None:
            if not create or read_only:
                # Checked read-only first: opening a file for real would switch it
                # to WAL mode, changing a file that may not be ours.
                check_existing_sqlite(path)
            if path.parent and not path.parent.exists():
                raise StoreError(f"cannot create {path}: folder {path.parent} does not exist")
            writable = _writable(path)
            if read_only is False and not writable:
                raise StoreError(read_only_message(path))
            self.read_only = bool(read_only) or not writable
            if self.read_only and not path.exists():
                raise StoreError(read_only_message(path))
        if self.read_only or path is None:
            # An in-memory database exists once per connection: one engine, one connection.
            self.read = self._make_engine(write=not self.read_only)
            self.write = self.read
        else:
            self.write = self._make_engine(write=True)
            self.read = self._make_engine(write=False)
        # The recorder's hot path writes steps through one plain sqlite3
        # connection: SQLAlchemy's per-statement overhead is several times the
        # cost of the INSERT itself (see docs/benchmarks.md).
        self._raw: sqlite3.Connection | None = None
        self._raw_lock = threading.Lock()

    @property
    def where(self) -> str:
        return str(self.path) if self.path is not None else self.url

    def _make_engine(self, *, write: bool) -> Engine:
        if self.read_only and self.path is not None:
            path = self.path
            # A pool of the file's connections, like any file URL gets: the URL says
            # "memory", whose default pool keeps one connection per thread and closes
            # another thread's when more than five threads read (the TUI's workers).
            engine = create_engine(
                "sqlite://", creator=lambda: connect_read_only(path), poolclass=QueuePool
            )
        elif self.path is None:  # in memory
            engine = create_engine(
                "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
            )
        else:
            engine = create_engine(
                self.url, connect_args={"timeout": 30, "check_same_thread": False}
            )
        wal = self.path is not None and not self.read_only

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: sqlite3.Connection, _: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA busy_timeout = 30000")
            if wal:
                use_wal(dbapi_conn)
            cur.execute("PRAGMA synchronous = NORMAL")
            cur.execute("PRAGMA foreign_keys = OFF")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            # Writers take the write lock up front, so two writers queue on the
            # busy timeout instead of deadlocking on a lock upgrade.
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        @event.listens_for(engine, "handle_error")
        def _on_error(context: Any) -> None:
            if is_read_only_error(context.original_exception):
                raise StoreError(read_only_message(self.where)) from None

        return engine

    def record_step(self, row: dict[str, Any], blobs: dict[str, str]) -> None:
        if self.path is None:
            super().record_step(row, blobs)
            return
        if self.read_only:
            raise StoreError(read_only_message(self.path))
        with self._raw_lock:
            if self._raw is None:
                self._raw = sqlite3.connect(
                    self.path, timeout=30, isolation_level=None, check_same_thread=False
                )
                self._raw.execute("PRAGMA busy_timeout = 30000")
                self._raw.execute("PRAGMA synchronous = NORMAL")
            con = self._raw
            try:
                con.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if is_read_only_error(exc):
                    raise StoreError(read_only_message(self.path)) from None
                raise
            try:
                if blobs:
                    con.executemany(_BLOB_SQL, list(blobs.items()))
                con.execute(_STEP_SQL, _step_params(row))
            except BaseException as exc:
                con.execute("ROLLBACK")
                if isinstance(exc, sqlite3.OperationalError) and is_read_only_error(exc):
                    raise StoreError(read_only_message(self.path)) from None
                if isinstance(exc, sqlite3.IntegrityError):
                    raise StepConflict from None
                raise
            con.execute("COMMIT")

    def insert_blobs(self, conn: Connection, blobs: dict[str, str]) -> None:
        if blobs:
            rows = [{"hash": k, "text": v} for k, v in blobs.items()]
            conn.execute(insert(_BLOBS).prefix_with("OR IGNORE"), rows)

    @property
    def shared(self) -> bool:
        return self.path is not None

    def insert_steps(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        raw = conn.connection.dbapi_connection
        if raw is None:  # pragma: no cover - SQLAlchemy always has one inside begin()
            super().insert_steps(conn, rows)
            return
        raw.executemany(_STEP_SQL, [_step_params(d) for d in rows])

    def insertion_mark(self) -> Any:
        # SQLite's rowid grows with every insert, whatever the row's own id.
        return text("max(rowid)")

    def fold_wal(self) -> None:
        if self.path is not None:
            with self.read.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    def checkpoint_location(self) -> Path | str:
        if self.path is None:  # an in-memory store: its checkpoints leave no file either
            return Path(":memory:")
        return self.path.with_name(self.path.stem + ".checkpoints" + (self.path.suffix or ".db"))

    def explain(self, exc: DatabaseError) -> str:
        if "not a database" in str(exc) or "file is encrypted" in str(exc):
            return f"{self.where} is not a SQLite database; pass another --db"
        return super().explain(exc)

    def close(self) -> None:
        with self._raw_lock:
            if self._raw is not None:
                self._raw.close()
                self._raw = None
        super().close()


class ServerBackend(Backend):
    """A database server: PostgreSQL (tested), or another SQLAlchemy URL."""

    def __init__(self, url: str, *, read_only: bool | None):
        self.url = url
        self._url: URL = make_url(url)
        self.is_postgres = self._url.get_backend_name() == "postgresql"
        # A server store is written through the server's own permissions;
        # read_only=True still keeps this object from writing.
        self.read_only = bool(read_only)
        connect_args: dict[str, Any] = {}
        if self.is_postgres:
            # Sessions in UTC, so timestamps never depend on the server's zone;
            # a bounded connect so an unreachable host fails in seconds; a
            # read-only store's sessions refuse writes on the server itself.
            options = "-c timezone=UTC"
            if self.read_only:
                options += " -c default_transaction_read_only=on"
            connect_args = {
                "connect_timeout": 10,
                "options": options,
                "application_name": "mascope",
            }
        self.write = create_engine(url, pool_pre_ping=True, connect_args=connect_args)
        self.read = self.write

        # The recorder's hot path: one plain psycopg connection in autocommit that
        # writes a step and its input texts in one statement (one round trip, not
        # the four of a pinged, pooled SQLAlchemy transaction).
        self._raw: Any = None
        self._raw_lock = threading.Lock()

        @event.listens_for(self.write, "handle_error")
        def _on_error(context: Any) -> None:
            if "read-only transaction" in str(context.original_exception):
                raise StoreError(
                    f"the trace store {self.where} is read-only (opened with read_only=True, or "
                    "the server's session is read-only); open it for writing to change it"
                ) from None

    @property
    def where(self) -> str:
        return self._url.render_as_string(hide_password=True)

    def insert_blobs(self, conn: Connection, blobs: dict[str, str]) -> None:
        if not (self.is_postgres and blobs):
            super().insert_blobs(conn, blobs)
            return
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        rows = [{"hash": k, "text": v} for k, v in blobs.items()]
        conn.execute(pg_insert(_BLOBS).on_conflict_do_nothing(), rows)

    def clock(self) -> Any:
        return func.now() if self.is_postgres else super().clock()

    def read_clock(self, conn: Connection) -> datetime:
        if not self.is_postgres:
            return super().read_clock(conn)
        now = conn.execute(select(func.now())).scalar_one()
        return now if now.tzinfo else now.replace(tzinfo=UTC)

    def record_step(self, row: dict[str, Any], blobs: dict[str, str]) -> None:
        if not self.is_postgres or self.read_only:
            super().record_step(row, blobs)
            return
        import psycopg
        from psycopg.types.json import Json

        params = [row.get(c) for c in _STEP_COLUMNS]
        for i in (5, 14):  # data, inputs
            params[i] = None if params[i] is None else Json(params[i])
        with self._raw_lock:
            for attempt in (1, 2):
                con = self._raw_connection()
                try:
                    # One statement in autocommit: atomic, and one round trip.
                    if blobs:
                        con.execute(
                            _PG_BLOBS_AND_STEP_SQL, [list(blobs), list(blobs.values()), *params]
                        )
                    else:
                        con.execute(_PG_STEP_SQL, params)
                    return
                except psycopg.errors.UniqueViolation:
                    if attempt == 2 and self._already_recorded(con, row):
                        return  # the first try did commit; only its answer was lost
                    raise StepConflict from None
                except psycopg.OperationalError:
                    # A dropped connection (server restart, idle timeout): once more on a new one.
                    self._close_raw()
                    if attempt == 2:
                        raise

    @staticmethod
    def _already_recorded(con: Any, row: dict[str, Any]) -> bool:
        found = con.execute(
            "SELECT 1 FROM steps WHERE run_id = %s AND idx = %s AND created_at = %s",
            (row["run_id"], row["idx"], row["created_at"]),
        ).fetchone()
        return found is not None

    def _raw_connection(self) -> Any:
        if self._raw is None or self._raw.closed:
            import psycopg

            self._raw = psycopg.connect(
                self.libpq_url(),
                autocommit=True,
                connect_timeout=10,
                options="-c timezone=UTC",
                application_name="mascope",
            )
        return self._raw

    def _close_raw(self) -> None:
        if self._raw is not None:
            with contextlib.suppress(Exception):
                self._raw.close()
            self._raw = None

    def close(self) -> None:
        with self._raw_lock:
            self._close_raw()
        super().close()

    def lock_for_prepare(self, conn: Connection) -> None:
        if self.is_postgres:
            # Two processes opening a new database at once: one creates, the other then sees it.
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PREPARE_LOCK})")

    def libpq_url(self) -> str:
        """The URL in libpq's own form (no SQLAlchemy driver name), for psycopg."""
        return self._url.set(drivername="postgresql").render_as_string(hide_password=False)

    def checkpoint_location(self) -> Path | str:
        if not self.is_postgres:
            return super().checkpoint_location()
        return self.libpq_url()  # for langgraph-checkpoint-postgres (psycopg)

    def explain(self, exc: DatabaseError) -> str:
        if isinstance(exc, OperationalError) and self.is_postgres:
            host = self._url.host or "localhost"
            port = self._url.port or 5432
            reason = _server_reason(exc.orig or exc)
            return (
                f"cannot open trace store {self.where}: PostgreSQL at {host}:{port} {reason}; "
                "check the server is running and the URL (--db / MASCOPE_DB)"
            )
        return super().explain(exc)


def use_wal(con: sqlite3.Connection, *, wait_s: float = 30.0) -> None:
    """Put the SQLite file behind `con` in WAL mode, unless it already is.

    WAL is a property of the file, so only its first opening switches it. The
    switch needs the file to itself and SQLite reports "database is locked" at
    once, without its busy timeout, when another connection opens the same new
    file at that moment (runs of one eval starting together, two workers): the
    switch is tried again until `wait_s` has passed.
    """
    deadline = time.monotonic() + wait_s
    delay = 0.005
    while True:
        try:
            if con.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                con.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(delay + random.random() * delay)
        delay = min(delay * 2, 0.2)


def _first_line(exc: object) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return lines[0] if lines else type(exc).__name__


def _server_reason(exc: object) -> str:
    """What a connection failure says, in a few words on one line."""
    text = " ".join(str(exc).split())
    lowered = text.lower()
    if "connection refused" in lowered:
        return "refused the connection"
    if "timeout" in lowered or "timed out" in lowered:
        return "did not answer in time"
    if "does not exist" in lowered and "database" in lowered:
        return "has no such database (create it first: createdb NAME)"
    if "authentication" in lowered or "password" in lowered:
        return "refused the credentials"
    if "could not translate host name" in lowered or "name or service not known" in lowered:
        return "is an unknown host name"
    return f"failed: {text[:200]}"


def store_url(target: str | Path | None, settings: Settings | None) -> tuple[str, Path | None]:
    """A SQLAlchemy URL and, for SQLite files, the file's path."""
    raw = str(target) if target is not None else (settings or Settings.load()).db
    if "://" in raw:
        try:
            url = make_url(raw)
        except Exception:
            raise StoreError(f"{raw!r} is not a database URL or path (MASCOPE_DB / --db)") from None
        if url.get_backend_name() == "sqlite":
            if url.database and url.database != ":memory:":
                return raw, Path(url.database)
            return "sqlite://", None
        return raw, None
    if raw == ":memory:":
        return "sqlite://", None
    path = Path(raw).expanduser()
    return f"sqlite:///{path}", path


def open_backend(
    target: str | Path | None,
    settings: Settings | None,
    *,
    create: bool,
    read_only: bool | None,
) -> Backend:
    """Open (and if allowed create or migrate) the store at `target`."""
    url, path = store_url(target, settings)
    try:
        if url.startswith("sqlite"):
            backend: Backend = SqliteBackend(url, path, create=create, read_only=read_only)
        else:
            backend = ServerBackend(url, read_only=read_only)
    except ImportError as exc:
        raise StoreError(
            f"cannot open trace store {url}: its database driver is not installed "
            f"({exc.name or exc}); install it, e.g. pip install 'mascope[postgres]' for postgresql://"
        ) from None
    except ArgumentError as exc:
        raise StoreError(
            f"{url!r} is not a database URL or path (--db / MASCOPE_DB): {exc}"
        ) from None
    try:
        _prepare(backend, create=create)
    except DatabaseError as exc:
        backend.close()
        raise StoreError(backend.explain(exc)) from None
    except BaseException:
        backend.close()
        raise
    return backend


def _prepare(backend: Backend, *, create: bool) -> None:
    """Create the tables of a new store, or check and migrate an existing one."""
    where = backend.where
    with backend.write.begin() as conn:
        backend.lock_for_prepare(conn)
        tables = set(inspect(conn).get_table_names())
        if "mascope_meta" not in tables:
            if not create or backend.read_only:
                raise StoreError(f"{where} holds no mascope trace store; {HOW_TO_MAKE_ONE}")
            if tables - OUR_TABLES - LANGGRAPH_TABLES:
                shown = ", ".join(sorted(tables)[:5])
                raise StoreError(
                    f"{where} is not a mascope trace store (it holds other tables: {shown}); "
                    "pass another --db"
                )
            SQLModel.metadata.create_all(
                conn, tables=[t for t in SQLModel.metadata.sorted_tables if t.name in OUR_TABLES]
            )
            conn.execute(insert(_META).values(key="schema_version", value=str(SCHEMA_VERSION)))
            return
        raw = conn.execute(select(_META.c.value).where(_META.c.key == "schema_version")).scalar()
        try:
            version = int(raw or "")
        except ValueError:
            raise StoreError(f"{where} has an unreadable schema version {raw!r}") from None
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{where} was written by a newer mascope (store schema v{version}; this "
                f"mascope reads up to v{SCHEMA_VERSION}); upgrade mascope"
            )
        if version < SCHEMA_VERSION and backend.read_only:
            raise StoreError(
                f"{where} has store schema v{version} and needs an upgrade to "
                f"v{SCHEMA_VERSION}, which needs write access; open it once as a user who can write it"
            )
        while version < SCHEMA_VERSION:
            migrate = _migrations.MIGRATIONS.get(version)
            if migrate is None:
                raise StoreError(
                    f"{where} has store schema v{version}, which this mascope cannot upgrade "
                    f"(no migration from v{version}); export it with the mascope that wrote it"
                )
            migrate(conn)
            version += 1
            conn.execute(
                update(_META).where(_META.c.key == "schema_version").values(value=str(version))
            )


def _writable(path: Path) -> bool:
    """Whether this process may change the SQLite file: the file and, for the
    WAL and its index, the folder it is in."""
    folder = path.parent if str(path.parent) else Path(".")
    if path.exists() and not os.access(path, os.W_OK):
        return False
    return os.access(folder, os.W_OK)


__all__ = [
    "Backend",
    "ServerBackend",
    "SqliteBackend",
    "StepConflict",
    "aware",
    "open_backend",
    "store_url",
]
