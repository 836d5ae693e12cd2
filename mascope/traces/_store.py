"""TraceStore: runs, steps, annotations and attributions in one database.

SQLite by default (WAL mode, a busy timeout, `BEGIN IMMEDIATE` for writes so
concurrent writers queue instead of failing); any SQLAlchemy URL otherwise.
Every write is redacted first and committed at once, so a process killed
mid-run loses nothing it had recorded.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, NamedTuple, TypeVar

from sqlalchemy import (
    Engine,
    bindparam,
    create_engine,
    event,
    func,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, IntegrityError
from sqlalchemy.pool import StaticPool
from sqlmodel import Session, SQLModel, col

from mascope.errors import NotFoundError, StoreError, did_you_mean
from mascope.settings import Settings

from ._constants import HOW_TO_MAKE_ONE
from ._ids import new_id
from ._inputs import InputMessage, decode_inputs, encode_inputs, gather
from ._migrations import MIGRATIONS
from ._redact import Redactor
from ._schema import (
    RUN_STATUSES,
    SCHEMA_VERSION,
    Annotation,
    AnnotationBase,
    Attribution,
    AttributionBase,
    Blob,
    Job,
    JobItem,
    Meta,
    Run,
    Step,
    utcnow,
)

_RUNS = Run.__table__  # type: ignore[attr-defined]
_STEPS = Step.__table__  # type: ignore[attr-defined]
_ANNOTATIONS = Annotation.__table__  # type: ignore[attr-defined]
_ATTRIBUTIONS = Attribution.__table__  # type: ignore[attr-defined]
_META = Meta.__table__  # type: ignore[attr-defined]
_JOBS = Job.__table__  # type: ignore[attr-defined]
_JOB_ITEMS = JobItem.__table__  # type: ignore[attr-defined]
_BLOBS = Blob.__table__  # type: ignore[attr-defined]
_OUR_TABLES = {t.name for t in SQLModel.metadata.sorted_tables if t.name in {
    "runs", "steps", "annotations", "attributions", "jobs", "job_items", "mascope_meta", "blobs"}}  # fmt: skip


_STEP_COLUMNS = (
    "run_id", "idx", "agent", "kind", "content", "data", "model", "input_tokens",
    "output_tokens", "latency_s", "cost_usd", "checkpoint_id", "error", "created_at", "inputs",
)  # fmt: skip
_STEP_SQL = (
    f"INSERT INTO steps ({', '.join(_STEP_COLUMNS)}) VALUES ({', '.join('?' * len(_STEP_COLUMNS))})"
)


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


_BLOB_SQL = "INSERT OR IGNORE INTO blobs (hash, text) VALUES (?, ?)"
_KNOWN_BLOBS_MAX = 100_000
"""How many part keys a store remembers having written (so repeats skip the INSERT)."""


def _insert_blobs(conn: Any, blobs: dict[str, str]) -> None:
    """Store parts not stored yet, through a SQLAlchemy connection (any backend)."""
    if not blobs:
        return
    rows = [{"hash": k, "text": v} for k, v in blobs.items()]
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        conn.execute(pg_insert(_BLOBS).on_conflict_do_nothing(), rows)
    else:
        conn.execute(insert(_BLOBS).prefix_with("OR IGNORE"), rows)


_Label = TypeVar("_Label", Annotation, Attribution)


class JobItemView(NamedTuple):
    """A job item as a batch sees it: the run's state and the item's."""

    run_status: str
    run_step_count: int
    status: str
    run_steps: int | None
    """The step count the item was done at (None: not done, or done before that was kept)."""
    claimed_by: str | None


RunSort = Literal["time", "team", "status", "steps", "tokens", "cost"]
"""Orders `TraceStore.list_runs` can sort by (`time` is the run id: ids sort by start time)."""
_RUN_SORTS: dict[str, Any] = {
    "time": _RUNS.c.id,
    "team": _RUNS.c.team,
    "status": _RUNS.c.status,
    "steps": _RUNS.c.step_count,
    "tokens": _RUNS.c.input_tokens + _RUNS.c.output_tokens,
    "cost": _RUNS.c.cost_usd,
}


_SQLITE_MAGIC = b"SQLite format 3\x00"


def _check_existing_sqlite(path: Path) -> None:
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
        con = _connect_read_only(path)
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


def _store_url(target: str | Path | None, settings: Settings | None) -> tuple[str, Path | None]:
    """A SQLAlchemy URL and, for SQLite files, the file's path."""
    raw = str(target) if target is not None else (settings or Settings.load()).db
    if "://" in raw:
        try:
            url = make_url(raw)
        except Exception:
            raise StoreError(f"{raw!r} is not a database URL or path (MASCOPE_DB / --db)") from None
        if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
            return raw, Path(url.database)
        return raw, None
    path = Path(raw).expanduser()
    return f"sqlite:///{path}", path


def _writable(path: Path) -> bool:
    """Whether this process may change the SQLite file: the file and, for the
    WAL and its index, the folder it is in."""
    folder = path.parent if str(path.parent) else Path(".")
    if path.exists() and not os.access(path, os.W_OK):
        return False
    return os.access(folder, os.W_OK)


def _read_only_message(where: object) -> str:
    return (
        f"the trace store {where} is read-only (this user cannot write the file or its folder); "
        "make both writable, or pass --db to a store you can write"
    )


def _connect_read_only(path: Path) -> sqlite3.Connection:
    """A connection that never writes: `mode=ro`, or `immutable=1` when even the
    WAL index cannot be created (a read-only folder, and no writer to see)."""
    uri = path.resolve().as_uri()
    con = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=30, check_same_thread=False)
    try:
        con.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return con
    except sqlite3.DatabaseError as exc:
        con.close()
        if not _is_read_only_error(exc) and "unable to open" not in str(exc):
            raise
    return sqlite3.connect(
        f"{uri}?mode=ro&immutable=1", uri=True, timeout=30, check_same_thread=False
    )


class TraceStore:
    """The trace store.

    Args:
        target: a file path or SQLAlchemy URL; default `MASCOPE_DB` or `./mascope.db`.
        create: make a new store if there is none (else raise, changing nothing:
            a missing file, a foreign file or a database without a store each
            give a one-line `StoreError`).
        redactor: what masks secrets; default one built from the environment.
        read_only: open a SQLite store without ever writing to it (any write
            raises a one-line `StoreError`); `False` refuses a store this user
            cannot write at once; `None` (the default) reads a store it cannot
            write and writes one it can.
    """

    def __init__(
        self,
        target: str | Path | None = None,
        *,
        create: bool = True,
        settings: Settings | None = None,
        redactor: Redactor | None = None,
        read_only: bool | None = None,
    ):
        self.url, self.path = _store_url(target, settings)
        self.create = create
        self.read_only = False
        """True when this store was opened without write access."""
        if self.path is not None:
            if not create or read_only:
                # Checked read-only first: opening a file for real would switch it
                # to WAL mode, changing a file that may not be ours.
                _check_existing_sqlite(self.path)
            if self.path.parent and not self.path.parent.exists():
                raise StoreError(
                    f"cannot create {self.path}: folder {self.path.parent} does not exist"
                )
            writable = _writable(self.path)
            if read_only is False and not writable:
                raise StoreError(_read_only_message(self.path))
            self.read_only = bool(read_only) or not writable
            if self.read_only and not self.path.exists():
                raise StoreError(_read_only_message(self.path))
        self.redact = redactor or Redactor()
        self.is_sqlite = self.url.startswith("sqlite")
        try:
            if self.read_only or (self.is_sqlite and self.path is None):
                # An in-memory database exists once per connection: one engine, one connection.
                self._read = self._make_engine(write=not self.read_only)
                self._engine = self._read
            else:
                self._engine = self._make_engine(write=True)
                self._read = self._make_engine(write=False) if self.is_sqlite else self._engine
        except ImportError as exc:
            raise StoreError(
                f"cannot open trace store {self.url}: its database driver is not installed "
                f"({exc.name or exc}); install it, e.g. pip install 'psycopg[binary]' for postgresql://"
            ) from None
        except ArgumentError as exc:
            raise StoreError(
                f"{self.url!r} is not a database URL or path (--db / MASCOPE_DB): {exc}"
            ) from None
        self._next_index: dict[str, int] = {}
        self._lock = threading.Lock()
        # The recorder's hot path writes steps through one plain sqlite3
        # connection: SQLAlchemy's per-statement overhead is several times the
        # cost of the INSERT itself (see docs/benchmarks.md).
        self._raw: sqlite3.Connection | None = None
        self._raw_lock = threading.Lock()
        self._known_blobs: set[str] = set()
        self._owner = _owner_token()
        # A batch worker: the process plus this store object, so two workers in
        # one process (threads, tests) still claim items apart.
        self.worker_id = f"{self._owner}/{os.urandom(3).hex()}"
        self._prepare()

    # -- opening -----------------------------------------------------------

    def _make_engine(self, *, write: bool) -> Engine:
        if not self.is_sqlite:
            return create_engine(self.url, pool_pre_ping=True)
        if self.read_only and self.path is not None:
            path = self.path
            engine = create_engine("sqlite://", creator=lambda: _connect_read_only(path))
        elif self.path is None:  # in memory
            engine = create_engine(
                self.url, poolclass=StaticPool, connect_args={"check_same_thread": False}
            )
        else:
            engine = create_engine(
                self.url, connect_args={"timeout": 30, "check_same_thread": False}
            )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: sqlite3.Connection, _: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA busy_timeout = 30000")
            if self.path is not None and not self.read_only:
                cur.execute("PRAGMA journal_mode = WAL")
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
            if _is_read_only_error(context.original_exception):
                raise StoreError(_read_only_message(self.path or self.url)) from None

        return engine

    def _prepare(self) -> None:
        where = self.path or self.url
        try:
            with self._engine.begin() as conn:
                tables = set(inspect(conn).get_table_names())
                if "mascope_meta" not in tables:
                    if not self.create or self.read_only:
                        raise StoreError(f"{where} holds no mascope trace store; {HOW_TO_MAKE_ONE}")
                    if tables - _OUR_TABLES:
                        shown = ", ".join(sorted(tables)[:5])
                        raise StoreError(
                            f"{where} is not a mascope trace store (it holds other tables: {shown}); "
                            "pass another --db"
                        )
                    SQLModel.metadata.create_all(
                        conn,
                        tables=[
                            t for t in SQLModel.metadata.sorted_tables if t.name in _OUR_TABLES
                        ],
                    )
                    conn.execute(
                        insert(_META).values(key="schema_version", value=str(SCHEMA_VERSION))
                    )
                    return
                raw = conn.execute(
                    select(_META.c.value).where(_META.c.key == "schema_version")
                ).scalar()
                try:
                    version = int(raw or "")
                except ValueError:
                    raise StoreError(f"{where} has an unreadable schema version {raw!r}") from None
                if version > SCHEMA_VERSION:
                    raise StoreError(
                        f"{where} was written by a newer mascope (store schema v{version}; this "
                        f"mascope reads up to v{SCHEMA_VERSION}); upgrade mascope"
                    )
                if version < SCHEMA_VERSION and self.read_only:
                    raise StoreError(
                        f"{where} has store schema v{version} and needs an upgrade to "
                        f"v{SCHEMA_VERSION}, which needs write access; open it once as a user who can write it"
                    )
                while version < SCHEMA_VERSION:
                    migrate = MIGRATIONS.get(version)
                    if migrate is None:
                        raise StoreError(
                            f"{where} has store schema v{version}, which this mascope cannot upgrade "
                            f"(no migration from v{version}); export it with the mascope that wrote it"
                        )
                    migrate(conn)
                    version += 1
                    conn.execute(
                        update(_META)
                        .where(_META.c.key == "schema_version")
                        .values(value=str(version))
                    )
        except DatabaseError as exc:
            self.close()
            if "not a database" in str(exc) or "file is encrypted" in str(exc):
                raise StoreError(f"{where} is not a SQLite database; pass another --db") from None
            raise StoreError(f"cannot open trace store {where}: {exc.orig or exc}") from None
        except StoreError:
            self.close()
            raise

    @property
    def schema_version(self) -> int:
        with self._read.connect() as conn:
            return int(
                conn.execute(
                    select(_META.c.value).where(_META.c.key == "schema_version")
                ).scalar_one()
            )

    def close(self) -> None:
        with self._raw_lock:
            if self._raw is not None:
                self._raw.close()
                self._raw = None
        self._engine.dispose()
        if self._read is not self._engine:
            self._read.dispose()

    def __enter__(self) -> TraceStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"TraceStore({str(self.path or self.url)!r})"

    # -- recording ---------------------------------------------------------

    def start_run(
        self,
        *,
        team: str = "",
        task: str = "",
        spec: dict[str, Any] | None = None,
        spec_hash: str | None = None,
        ground_truth: str | None = None,
        metadata: dict[str, Any] | None = None,
        parent_run_id: str | None = None,
        fork_step: int | None = None,
        intervention: dict[str, Any] | None = None,
        run_id: str | None = None,
    ) -> str:
        """Record that a run began; returns its id."""
        rid = run_id or new_id()
        r = self.redact
        row = {
            "id": rid,
            "parent_run_id": parent_run_id,
            "fork_step": fork_step,
            "intervention": r.value(intervention),
            "team": r.text(team),
            "spec": r.value(spec),
            "spec_hash": spec_hash,
            "task": r.text(task),
            "ground_truth": r.optional(ground_truth),
            "status": "running",
            "started_at": utcnow(),
            "input_tokens": 0,
            "output_tokens": 0,
            "step_count": 0,
            "source": "native",
            "metadata": r.value(metadata or {}),
            "owner": self._owner,
        }
        with self._engine.begin() as conn:
            conn.execute(insert(_RUNS), row)
        with self._lock:
            self._next_index[rid] = 0
        return rid

    def append_step(
        self,
        run_id: str,
        *,
        agent: str,
        kind: str = "message",
        content: str = "",
        data: dict[str, Any] | None = None,
        model: str | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        latency_s: float | None = None,
        cost_usd: float | None = None,
        checkpoint_id: str | None = None,
        error: str | None = None,
        inputs: Sequence[Any] | None = None,
    ) -> int:
        """Append one step to a run and commit it; returns its 0-based index.

        `inputs` are the messages a model was sent for this step (mappings or
        objects with `role`, `content` and optionally `name`, `tool_calls`,
        `tool_call_id`); each distinct text is stored once (`step_inputs` reads them).
        """
        r = self.redact
        refs, blobs = encode_inputs(inputs, r) if inputs is not None else (None, {})
        with self._lock:
            blobs = {k: v for k, v in blobs.items() if k not in self._known_blobs}
        row = {
            "run_id": run_id,
            "agent": agent,
            "kind": kind,
            "content": r.text(content),
            "data": r.value(data) if data is not None else None,
            "model": model,
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "latency_s": latency_s,
            "cost_usd": cost_usd,
            "checkpoint_id": checkpoint_id,
            "error": r.optional(error),
            "created_at": utcnow(),
            "inputs": refs,
        }
        for _ in range(3):
            with self._lock:
                index = self._next_index.get(run_id)
            if index is None:
                index = self._load_next_index(run_id)
            row["idx"] = index
            try:
                self._insert_step(row, blobs)
            except (IntegrityError, sqlite3.IntegrityError):
                # Another writer appended to this run; learn the new end and retry.
                with self._lock:
                    self._next_index.pop(run_id, None)
                continue
            with self._lock:
                self._next_index[run_id] = index + 1
                if len(self._known_blobs) > _KNOWN_BLOBS_MAX:
                    self._known_blobs.clear()
                self._known_blobs.update(blobs)
            return index
        raise StoreError(f"could not append a step to run {run_id}: its step indexes keep changing")

    def _insert_step(self, row: dict[str, Any], blobs: dict[str, str]) -> None:
        # A step and the input texts it refers to commit together.
        if not self.is_sqlite or self.path is None:
            with self._engine.begin() as conn:
                _insert_blobs(conn, blobs)
                conn.execute(insert(_STEPS), row)
            return
        if self.read_only:
            raise StoreError(_read_only_message(self.path))
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
                if _is_read_only_error(exc):
                    raise StoreError(_read_only_message(self.path)) from None
                raise
            try:
                if blobs:
                    con.executemany(_BLOB_SQL, list(blobs.items()))
                con.execute(_STEP_SQL, _step_params(row))
            except BaseException as exc:
                con.execute("ROLLBACK")
                if isinstance(exc, sqlite3.OperationalError) and _is_read_only_error(exc):
                    raise StoreError(_read_only_message(self.path)) from None
                raise
            con.execute("COMMIT")

    def truncate_steps(self, run_id: str, from_index: int) -> int:
        """Delete a run's steps from `from_index` on (a resumed run redoes the
        unfinished node that wrote them); returns how many were deleted."""
        with self._engine.begin() as conn:
            done = conn.execute(
                _STEPS.delete().where(_STEPS.c.run_id == run_id, _STEPS.c.idx >= from_index)
            )
        with self._lock:
            self._next_index.pop(run_id, None)
        return int(done.rowcount or 0)

    def copy_steps(self, source_run: str, target_run: str, before_index: int) -> int:
        """Copy a run's steps `0 .. before_index-1` into another run (a fork's shared past)."""
        columns = [c for c in _STEPS.c if c.name not in ("id", "run_id")]
        query = (
            select(*columns)
            .where(_STEPS.c.run_id == source_run, _STEPS.c.idx < before_index)
            .order_by(_STEPS.c.idx)
        )
        with self._engine.begin() as conn:
            rows = [dict(r._mapping) for r in conn.execute(query)]
            for r in rows:
                r["run_id"] = target_run
            if rows:
                conn.execute(insert(_STEPS), rows)
        with self._lock:
            self._next_index.pop(target_run, None)
        return len(rows)

    def _load_next_index(self, run_id: str) -> int:
        with self._read.connect() as conn:
            exists = conn.execute(select(_RUNS.c.id).where(_RUNS.c.id == run_id)).scalar()
            if exists is None:
                raise NotFoundError(f"no run {run_id} in {self.path or self.url}")
            last = conn.execute(
                select(func.max(_STEPS.c.idx)).where(_STEPS.c.run_id == run_id)
            ).scalar()
        return 0 if last is None else int(last) + 1

    def finish_run(
        self,
        run_id: str,
        *,
        status: str,
        final_answer: str | None = None,
        termination_reason: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Run:
        """Close a run: status, answer and why it ended; tokens, cost and step
        count are summed from its steps."""
        if status not in RUN_STATUSES or status == "running":
            raise ValueError(f"finish_run status must be one of {RUN_STATUSES[1:]}, not {status!r}")
        with self._engine.begin() as conn:
            totals = conn.execute(
                select(
                    func.count(),
                    func.coalesce(func.sum(_STEPS.c.input_tokens), 0),
                    func.coalesce(func.sum(_STEPS.c.output_tokens), 0),
                    func.sum(_STEPS.c.cost_usd),
                ).where(_STEPS.c.run_id == run_id)
            ).one()
            values: dict[str, Any] = {
                "status": status,
                "final_answer": self.redact.optional(final_answer),
                "termination_reason": termination_reason,
                "finished_at": utcnow(),
                "step_count": totals[0],
                "input_tokens": totals[1],
                "output_tokens": totals[2],
                "cost_usd": totals[3],
                "owner": None,
            }
            if metadata is not None:
                current = conn.execute(
                    select(_RUNS.c.metadata).where(_RUNS.c.id == run_id)
                ).scalar()
                values["metadata"] = {**(current or {}), **self.redact.value(metadata)}
            done = conn.execute(update(_RUNS).where(_RUNS.c.id == run_id).values(**values))
            if done.rowcount == 0:
                raise NotFoundError(f"no run {run_id} in {self.path or self.url}")
        with self._lock:
            self._next_index.pop(run_id, None)
        return self.get_run(run_id)

    def reopen_run(self, run_id: str) -> Run:
        """Mark an interrupted run as running again in this process (to resume it)."""
        with self._engine.begin() as conn:
            conn.execute(
                update(_RUNS)
                .where(_RUNS.c.id == run_id)
                .values(
                    status="running", owner=self._owner, finished_at=None, termination_reason=None
                )
            )
        with self._lock:
            self._next_index.pop(run_id, None)
        return self.get_run(run_id)

    def recover_interrupted(self) -> list[str]:
        """Mark as `interrupted` the running runs whose recording process is gone.

        Only runs recorded on this host can be checked; their process id and
        start time must both match a live process.
        """
        with self._read.connect() as conn:
            rows = conn.execute(
                select(_RUNS.c.id, _RUNS.c.owner).where(_RUNS.c.status == "running")
            ).all()
        dead = [rid for rid, owner in rows if not _owner_alive(owner)]
        if dead and not self.read_only:  # a reader that cannot write leaves them as they are
            with self._engine.begin() as conn:
                conn.execute(
                    update(_RUNS)
                    .where(_RUNS.c.id.in_(dead), _RUNS.c.status == "running")
                    .values(status="interrupted", termination_reason="process died", owner=None)
                )
        return dead

    # -- labels --------------------------------------------------------------

    def add_annotations(
        self, run_id: str, annotations: Iterable[AnnotationBase | dict[str, Any]]
    ) -> list[str]:
        """Store failure-mode labels for a run; returns their ids."""
        rows = [self._annotation_row(run_id, a) for a in annotations]
        if rows:
            self._require_run(run_id)
            with self._engine.begin() as conn:
                conn.execute(insert(_ANNOTATIONS), rows)
        return [row["id"] for row in rows]

    def replace_annotations(
        self,
        run_id: str,
        *,
        annotator_prefix: str,
        annotations: Iterable[AnnotationBase | dict[str, Any]],
        job_id: str | None = None,
    ) -> list[str]:
        """Swap a run's annotations from annotators starting with `annotator_prefix`
        for new ones, in one transaction (re-running a detector or judge)."""
        rows = [self._annotation_row(run_id, a) for a in annotations]
        self._require_run(run_id)
        with self._engine.begin() as conn:
            query = _ANNOTATIONS.delete().where(
                _ANNOTATIONS.c.run_id == run_id,
                _ANNOTATIONS.c.annotator.startswith(annotator_prefix, autoescape=True),
            )
            if job_id is not None:
                query = query.where(_ANNOTATIONS.c.job_id == job_id)
            conn.execute(query)
            if rows:
                conn.execute(insert(_ANNOTATIONS), rows)
        return [row["id"] for row in rows]

    # -- batch jobs -------------------------------------------------------------

    def ensure_job(
        self, job_id: str, *, kind: str, config: dict[str, Any], config_hash: str
    ) -> None:
        """Create the job row if it does not exist yet (a rerun reuses it)."""
        with self._engine.begin() as conn:
            if conn.execute(select(_JOBS.c.id).where(_JOBS.c.id == job_id)).scalar() is None:
                now = utcnow()
                conn.execute(
                    insert(_JOBS),
                    {"id": job_id, "kind": kind, "config": self.redact.value(config), "config_hash": config_hash,
                     "status": "running", "total": 0, "done": 0, "failed": 0, "skipped": 0, "cost_usd": 0.0,
                     "created_at": now, "updated_at": now},
                )  # fmt: skip
            else:
                conn.execute(
                    update(_JOBS)
                    .where(_JOBS.c.id == job_id)
                    .values(status="running", error=None, updated_at=utcnow())
                )

    def add_job_items(self, job_id: str, run_ids: Sequence[str]) -> None:
        """Add runs to a job; runs already in it keep their state."""
        with self._engine.begin() as conn:
            known = set(
                conn.execute(
                    select(_JOB_ITEMS.c.run_id).where(_JOB_ITEMS.c.job_id == job_id)
                ).scalars()
            )
            rows = [
                {
                    "job_id": job_id,
                    "run_id": r,
                    "status": "pending",
                    "attempts": 0,
                    "cost_usd": 0.0,
                    "updated_at": utcnow(),
                }
                for r in dict.fromkeys(run_ids)
                if r not in known
            ]
            if rows:
                conn.execute(insert(_JOB_ITEMS), rows)
            total = conn.execute(
                select(func.count()).where(_JOB_ITEMS.c.job_id == job_id)
            ).scalar_one()
            conn.execute(update(_JOBS).where(_JOBS.c.id == job_id).values(total=total))

    def job_item_view(self, job_id: str, run_ids: Sequence[str]) -> dict[str, JobItemView]:
        """Each run's item state beside the run's own status and step count."""
        query = (
            select(
                _JOB_ITEMS.c.run_id,
                _RUNS.c.status,
                _RUNS.c.step_count,
                _JOB_ITEMS.c.status,
                _JOB_ITEMS.c.run_steps,
                _JOB_ITEMS.c.claimed_by,
            )
            .join(_RUNS, _RUNS.c.id == _JOB_ITEMS.c.run_id)
            .where(
                _JOB_ITEMS.c.job_id == job_id,
                _JOB_ITEMS.c.run_id.in_(bindparam("ids", expanding=True)),
            )
        )
        out: dict[str, JobItemView] = {}
        with self._read.connect() as conn:
            for i in range(0, len(run_ids), 500):
                for row in conn.execute(query, {"ids": list(run_ids[i : i + 500])}):
                    out[row[0]] = JobItemView(*row[1:])
        return out

    def claim_job_items(
        self, job_id: str, run_ids: Sequence[str], *, lease_s: float = 300.0
    ) -> dict[str, int]:
        """Claim the items of `run_ids` that need doing and nobody else holds.

        Needs doing: the run has finished and the item is not done, or was done
        at another step count. Held: claimed by a live worker within the lease
        (a claim of a dead process on this host is free at once). One atomic
        UPDATE, so two workers never get the same item. Returns the claimed
        runs with their step counts.
        """
        if not run_ids:
            return {}
        now = utcnow()
        run = select(_RUNS.c.step_count, _RUNS.c.status).where(_RUNS.c.id == _JOB_ITEMS.c.run_id)
        steps = run.with_only_columns(_RUNS.c.step_count).scalar_subquery()
        status = run.with_only_columns(_RUNS.c.status).scalar_subquery()
        ids = list(dict.fromkeys(run_ids))
        with self._engine.begin() as conn:
            holders = conn.execute(
                select(_JOB_ITEMS.c.claimed_by)
                .where(_JOB_ITEMS.c.job_id == job_id, _JOB_ITEMS.c.claimed_by.is_not(None))
                .distinct()
            ).scalars()
            dead = [h for h in holders if h != self.worker_id and not _owner_alive(h.split("/")[0])]
            free = _JOB_ITEMS.c.claimed_by.is_(None) | (_JOB_ITEMS.c.claimed_by == self.worker_id)
            free |= _JOB_ITEMS.c.claimed_at < now - timedelta(seconds=lease_s)
            if dead:
                free |= _JOB_ITEMS.c.claimed_by.in_(dead)
            claimed = conn.execute(
                update(_JOB_ITEMS)
                .where(
                    _JOB_ITEMS.c.job_id == job_id,
                    _JOB_ITEMS.c.run_id.in_(ids),
                    free,
                    status != "running",
                    (_JOB_ITEMS.c.status != "done") | _JOB_ITEMS.c.run_steps.is_distinct_from(steps),
                )
                .values(claimed_by=self.worker_id, claimed_at=now)
                .returning(_JOB_ITEMS.c.run_id)
            ).scalars().all()  # fmt: skip
            if not claimed:
                return {}
            counts: dict[str, int] = dict(
                conn.execute(
                    select(_RUNS.c.id, _RUNS.c.step_count).where(_RUNS.c.id.in_(list(claimed)))
                ).all()
            )
        return {r: counts[r] for r in ids if r in counts}

    def renew_job_claims(self, job_id: str, run_ids: Sequence[str]) -> None:
        """Extend this worker's claims on `run_ids` (a heartbeat)."""
        if run_ids:
            with self._engine.begin() as conn:
                conn.execute(
                    update(_JOB_ITEMS)
                    .where(
                        _JOB_ITEMS.c.job_id == job_id,
                        _JOB_ITEMS.c.run_id.in_(list(run_ids)),
                        _JOB_ITEMS.c.claimed_by == self.worker_id,
                    )
                    .values(claimed_at=utcnow())
                )

    def release_job_claims(self, job_id: str) -> None:
        """Give back every claim this worker still holds in the job (stopped early)."""
        with self._engine.begin() as conn:
            conn.execute(
                update(_JOB_ITEMS)
                .where(_JOB_ITEMS.c.job_id == job_id, _JOB_ITEMS.c.claimed_by == self.worker_id)
                .values(claimed_by=None, claimed_at=None)
            )

    def job_item_states(self, job_id: str, run_ids: Sequence[str]) -> dict[str, str]:
        query = select(_JOB_ITEMS.c.run_id, _JOB_ITEMS.c.status).where(
            _JOB_ITEMS.c.job_id == job_id, _JOB_ITEMS.c.run_id.in_(bindparam("ids", expanding=True))
        )
        with self._read.connect() as conn:
            return {r: st for r, st in conn.execute(query, {"ids": list(run_ids)})}

    def finish_job_item(
        self,
        job_id: str,
        run_id: str,
        *,
        status: str,
        error: str | None = None,
        cost_usd: float = 0.0,
        replace: dict[str, Sequence[dict[str, Any]]] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Store a job item's result and its labels in one transaction, so a
        killed job leaves either both or neither. `replace` maps an annotator
        prefix to the labels that replace that annotator's earlier ones."""
        self.finish_job_items(
            job_id,
            [
                {
                    "run_id": run_id,
                    "status": status,
                    "error": error,
                    "cost_usd": cost_usd,
                    "replace": replace,
                    "metadata": metadata,
                }
            ],
        )

    def finish_job_items(self, job_id: str, items: Sequence[dict[str, Any]]) -> None:
        """`finish_job_item` for several runs in one transaction (a group commit)."""
        with self._engine.begin() as conn:
            for item in items:
                run_id = item["run_id"]
                replace = item.get("replace") or {}
                for prefix in replace:
                    conn.execute(
                        _ANNOTATIONS.delete().where(
                            _ANNOTATIONS.c.run_id == run_id,
                            _ANNOTATIONS.c.annotator.startswith(prefix, autoescape=True),
                        )
                    )
                rows = [
                    self._annotation_row(run_id, a) for labels in replace.values() for a in labels
                ]
                if rows:
                    conn.execute(insert(_ANNOTATIONS), rows)
                for attribution in item.get("attributions") or ():
                    conn.execute(insert(_ATTRIBUTIONS), self._attribution_row(run_id, attribution))
                if item.get("metadata"):
                    current = conn.execute(
                        select(_RUNS.c.metadata).where(_RUNS.c.id == run_id)
                    ).scalar()
                    merged = {**(current or {}), **self.redact.value(item["metadata"])}
                    conn.execute(update(_RUNS).where(_RUNS.c.id == run_id).values(metadata=merged))
                conn.execute(
                    update(_JOB_ITEMS)
                    .where(_JOB_ITEMS.c.job_id == job_id, _JOB_ITEMS.c.run_id == run_id)
                    .values(
                        status=item["status"],
                        error=self.redact.optional(item.get("error")),
                        cost_usd=item.get("cost_usd", 0.0),
                        attempts=_JOB_ITEMS.c.attempts + 1,
                        updated_at=utcnow(),
                        run_steps=item.get("run_steps"),
                        claimed_by=None,
                        claimed_at=None,
                    )
                )
            counts: dict[str, int] = dict(
                conn.execute(
                    select(_JOB_ITEMS.c.status, func.count())
                    .where(_JOB_ITEMS.c.job_id == job_id)
                    .group_by(_JOB_ITEMS.c.status)
                ).all()
            )
            spent = conn.execute(
                select(func.coalesce(func.sum(_JOB_ITEMS.c.cost_usd), 0.0)).where(
                    _JOB_ITEMS.c.job_id == job_id
                )
            ).scalar_one()
            conn.execute(
                update(_JOBS)
                .where(_JOBS.c.id == job_id)
                .values(
                    done=counts.get("done", 0),
                    failed=counts.get("not_judged", 0) + counts.get("error", 0),
                    cost_usd=spent,
                    updated_at=utcnow(),
                )
            )

    def finish_job(self, job_id: str, *, status: str, error: str | None = None) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                update(_JOBS)
                .where(_JOBS.c.id == job_id)
                .values(status=status, error=error, updated_at=utcnow())
            )

    def get_job(self, job_id: str) -> Job | None:
        with Session(self._read) as session:
            job = session.get(Job, job_id)
            if job is not None:
                session.expunge(job)
            return job

    def update_run_metadata(self, run_id: str, values: dict[str, Any]) -> None:
        """Merge `values` into a run's metadata."""
        with self._engine.begin() as conn:
            current = conn.execute(select(_RUNS.c.metadata).where(_RUNS.c.id == run_id)).scalar()
            merged = {**(current or {}), **self.redact.value(values)}
            conn.execute(update(_RUNS).where(_RUNS.c.id == run_id).values(metadata=merged))

    def add_attribution(self, run_id: str, attribution: AttributionBase | dict[str, Any]) -> str:
        """Store who-and-when for a run; returns the attribution's id."""
        row = self._attribution_row(run_id, attribution)
        self._require_run(run_id)
        with self._engine.begin() as conn:
            conn.execute(insert(_ATTRIBUTIONS), row)
        return str(row["id"])

    def _annotation_row(self, run_id: str, a: AnnotationBase | dict[str, Any]) -> dict[str, Any]:
        data = dict(a) if isinstance(a, dict) else a.model_dump()
        data.setdefault("id", new_id())
        data = _aware(AnnotationBase.model_validate(data).model_dump())
        data["rationale"] = self.redact.text(data["rationale"])
        if data.get("status_reason"):
            data["status_reason"] = self.redact.text(data["status_reason"])
        data["run_id"] = run_id
        return data

    def _attribution_row(self, run_id: str, a: AttributionBase | dict[str, Any]) -> dict[str, Any]:
        data = dict(a) if isinstance(a, dict) else a.model_dump()
        data.setdefault("id", new_id())
        data = _aware(AttributionBase.model_validate(data).model_dump())
        data["reason"] = self.redact.text(data["reason"])
        data["intervention"] = self.redact.optional(data["intervention"])
        data["run_id"] = run_id
        return data

    # -- reading -----------------------------------------------------------

    def _require_run(self, run_id: str) -> None:
        with self._read.connect() as conn:
            if conn.execute(select(_RUNS.c.id).where(_RUNS.c.id == run_id)).scalar() is None:
                raise NotFoundError(f"no run {run_id} in {self.path or self.url}")

    def resolve_run_id(self, text: str) -> str:
        """The full id of the run that `text` (an id or a unique prefix of one) names."""
        needle = text.strip().upper()
        if not needle:
            raise NotFoundError("no run id given")
        with self._read.connect() as conn:
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
            f"no run {text!r} in {self.path or self.url}{did_you_mean(needle, recent)}; "
            "see mascope runs list"
        )

    def get_run(self, run_id: str) -> Run:
        with Session(self._read) as session:
            run = session.get(Run, run_id)
            if run is None:
                raise NotFoundError(
                    f"no run {run_id} in {self.path or self.url}; see mascope runs list"
                )
            session.expunge(run)
            return run

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
        """Runs, newest first, one page at a time: pass the last id seen as `before`.

        `sort` orders by another column (ties newest first); page such an order
        with `offset`, since `before` only pages the default newest-first order.
        """
        key = _RUN_SORTS[sort]
        order = [key.asc() if ascending else key.desc()]
        if sort != "time":
            order.append(_RUNS.c.id.desc())
        query = select(Run).order_by(*order).limit(limit)
        query = self._filter(
            query, status=status, team=team, mode=mode, source=source, search=search
        )
        if before:
            query = query.where(col(Run.id) > before if ascending else col(Run.id) < before)
        if offset:
            query = query.offset(offset)
        with Session(self._read) as session:
            runs = list(session.scalars(query).all())
            for run in runs:
                session.expunge(run)
        return runs

    def child_runs(self, run_id: str, *, limit: int = 500) -> list[Run]:
        """Runs forked from this one (forks and counterfactual replays), oldest first."""
        query = (
            select(Run).where(col(Run.parent_run_id) == run_id).order_by(col(Run.id)).limit(limit)
        )
        with Session(self._read) as session:
            runs = list(session.scalars(query).all())
            for run in runs:
                session.expunge(run)
        return runs

    def all_run_ids(self, *, status: str | None = None, team: str | None = None) -> list[str]:
        """Ids of every run matching the filters, oldest first, read a page at a time."""
        ids: list[str] = []
        before = None
        while True:
            page = self.list_runs(status=status, team=team, before=before, limit=1000)
            ids.extend(r.id for r in page)
            if len(page) < 1000:
                return ids[::-1]
            before = page[-1].id

    def count_runs(
        self,
        *,
        status: str | None = None,
        team: str | None = None,
        mode: str | None = None,
        source: str | None = None,
        search: str | None = None,
    ) -> int:
        query = self._filter(
            select(func.count()).select_from(Run),
            status=status,
            team=team,
            mode=mode,
            source=source,
            search=search,
        )
        with self._read.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def _filter(
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
        """A run's steps in order, optionally one window of them."""
        query = select(Step).where(col(Step.run_id) == run_id).order_by(col(Step.index))
        if offset:
            query = query.where(col(Step.index) >= offset)
        if limit is not None:
            query = query.limit(limit)
        with Session(self._read) as session:
            steps = list(session.scalars(query).all())
            for s in steps:
                session.expunge(s)
        return steps

    def iter_steps(self, run_id: str, *, batch: int = 2000) -> Iterator[Step]:
        """All of a run's steps, fetched a batch at a time."""
        offset = 0
        while True:
            page = self.steps(run_id, offset=offset, limit=batch)
            yield from page
            if len(page) < batch:
                return
            offset = page[-1].index + 1

    def step_inputs(self, run_id: str, index: int) -> list[InputMessage]:
        """The messages a model was sent for step `index` of a run, system prompt
        first; empty when the step called no model (or was recorded without them)."""
        with self._read.connect() as conn:
            found = conn.execute(
                select(_STEPS.c.inputs).where(_STEPS.c.run_id == run_id, _STEPS.c.idx == index)
            ).first()
        if found is None:
            self._require_run(run_id)
            raise NotFoundError(f"run {run_id} has no step {index}")
        refs = found[0] or []
        return decode_inputs(refs, gather(refs, self.blobs))

    def blobs(self, keys: Sequence[str]) -> dict[str, str]:
        """Stored input texts by key (the references in `Step.inputs`); unknown keys are left out."""
        out: dict[str, str] = {}
        wanted = list(dict.fromkeys(keys))
        query = select(_BLOBS.c.hash, _BLOBS.c.text).where(
            _BLOBS.c.hash.in_(bindparam("keys", expanding=True))
        )
        with self._read.connect() as conn:
            for start in range(0, len(wanted), 500):
                rows = conn.execute(query, {"keys": wanted[start : start + 500]})
                out.update((str(key), str(text)) for key, text in rows)
        return out

    def count_steps(self, run_id: str) -> int:
        with self._read.connect() as conn:
            return int(
                conn.execute(select(func.count()).where(_STEPS.c.run_id == run_id)).scalar_one()
            )

    def annotations(self, run_id: str) -> list[Annotation]:
        """A run's failure-mode labels, oldest first."""
        return self._labels(Annotation, run_id)

    def attributions(self, run_id: str) -> list[Attribution]:
        """A run's who-and-when answers, oldest first."""
        return self._labels(Attribution, run_id)

    def _labels(self, table: type[_Label], run_id: str) -> list[_Label]:
        with Session(self._read) as session:
            query = select(table).where(col(table.run_id) == run_id).order_by(col(table.id))
            rows = list(session.scalars(query).all())
            for row in rows:
                session.expunge(row)
        return rows

    def modes_by_run(self, run_ids: Sequence[str]) -> dict[str, list[str]]:
        """The failure modes labelled present on each of these runs, by any annotator."""
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
        with self._read.connect() as conn:
            for rid, mode in conn.execute(query, {"ids": list(run_ids)}):
                out[rid].append(mode)
        for modes in out.values():
            modes.sort()
        return out

    def labels_mark(self) -> str | None:
        """A value that changes whenever a failure-mode label is added: cheap enough to poll.

        SQLite's rowid grows with every insert, whatever the label's id; other
        databases use the newest id (ids sort by creation time).
        """
        column = text("max(rowid)") if self.is_sqlite else func.max(_ANNOTATIONS.c.id)
        with self._read.connect() as conn:
            mark = conn.execute(select(column).select_from(_ANNOTATIONS)).scalar()
        return None if mark is None else str(mark)

    def live_step_counts(self, run_ids: Sequence[str]) -> dict[str, int]:
        """Step counts of runs still being recorded (finished runs carry theirs)."""
        if not run_ids:
            return {}
        query = (
            select(_STEPS.c.run_id, func.count())
            .where(_STEPS.c.run_id.in_(bindparam("ids", expanding=True)))
            .group_by(_STEPS.c.run_id)
        )
        with self._read.connect() as conn:
            return {rid: n for rid, n in conn.execute(query, {"ids": list(run_ids)})}

    def teams(self) -> list[str]:
        with self._read.connect() as conn:
            return [
                t
                for t in conn.execute(
                    select(_RUNS.c.team).distinct().order_by(_RUNS.c.team)
                ).scalars()
            ]

    def has_source_key(self, key: str) -> bool:
        with self._read.connect() as conn:
            return (
                conn.execute(select(_RUNS.c.id).where(_RUNS.c.source_key == key)).scalar()
                is not None
            )

    def has_run(self, run_id: str) -> bool:
        with self._read.connect() as conn:
            return conn.execute(select(_RUNS.c.id).where(_RUNS.c.id == run_id)).scalar() is not None

    def checkpoint_wal(self) -> None:
        """Fold the WAL back into the main file (for measuring its size)."""
        if self.is_sqlite and self.path is not None:
            with self._read.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    # -- bulk writes (import) ---------------------------------------------------

    def write_bundles(self, bundles: Sequence[Any]) -> tuple[int, int]:
        """Write already-validated run bundles in one transaction.

        Runs whose id or source key is already in the store are skipped.
        Returns (written, skipped).
        """
        written = skipped = 0
        r = self.redact
        with self._engine.begin() as conn:
            for bundle in bundles:
                run = bundle.run
                exists = conn.execute(
                    select(_RUNS.c.id).where(
                        (_RUNS.c.id == run.id)
                        | ((_RUNS.c.source_key == run.source_key) if run.source_key else text("0"))
                    )
                ).first()
                if exists is not None:
                    skipped += 1
                    continue
                row = run.model_dump()
                row["metadata"] = r.value(row.pop("metadata_"))
                for key in ("task", "team"):
                    row[key] = r.text(row[key])
                for key in ("ground_truth", "final_answer"):
                    row[key] = r.optional(row[key])
                for key in ("spec", "intervention"):
                    row[key] = r.value(row[key])
                row["step_count"] = len(bundle.steps)
                row["owner"] = None
                conn.execute(insert(_RUNS), _aware(row))
                if bundle.steps:
                    blobs: dict[str, str] = {}
                    step_rows = [
                        {
                            "run_id": run.id,
                            "idx": st.index,
                            "agent": r.text(st.agent),  # imported names are untrusted text too
                            "kind": st.kind,
                            "content": r.text(st.content),
                            "data": None if st.data is None else r.value(st.data),
                            "model": st.model,
                            "input_tokens": st.input_tokens,
                            "output_tokens": st.output_tokens,
                            "latency_s": st.latency_s,
                            "cost_usd": st.cost_usd,
                            "checkpoint_id": st.checkpoint_id,
                            "error": r.optional(st.error),
                            "created_at": st.created_at,
                            "inputs": self._import_inputs(st.inputs, bundle.blobs, blobs),
                        }
                        for st in bundle.steps
                    ]
                    _insert_blobs(conn, blobs)
                    if self.is_sqlite:
                        raw = conn.connection.dbapi_connection
                        assert raw is not None
                        raw.executemany(_STEP_SQL, [_step_params(d) for d in step_rows])
                    else:
                        conn.execute(insert(_STEPS), [_aware(d) for d in step_rows])
                if bundle.annotations:
                    conn.execute(
                        insert(_ANNOTATIONS),
                        [self._annotation_row(run.id, a) for a in bundle.annotations],
                    )
                for a in bundle.attributions:
                    conn.execute(insert(_ATTRIBUTIONS), self._attribution_row(run.id, a))
                written += 1
        return written, skipped

    def _import_inputs(
        self, refs: list[dict[str, Any]] | None, given: dict[str, str], out: dict[str, str]
    ) -> list[dict[str, Any]] | None:
        """An imported step's input references, re-made from their text: the
        file's keys are not trusted to be the hashes of the texts they name."""
        if refs is None:
            return None
        new_refs, blobs = encode_inputs(decode_inputs(refs, given), self.redact)
        out.update(blobs)
        return new_refs


def _is_read_only_error(exc: BaseException | None) -> bool:
    text = str(exc).lower()
    return "readonly database" in text or "read-only database" in text


def _aware(row: dict[str, Any]) -> dict[str, Any]:
    """Imported timestamps without a zone are taken to be UTC."""
    for key, value in row.items():
        if isinstance(value, datetime) and value.tzinfo is None:
            row[key] = value.replace(tzinfo=UTC)
    return row


def _proc_start(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    # Field 22 (start time), counted after the command name's closing paren.
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else ""


def _owner_token() -> str:
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_proc_start(pid)}"


def _owner_alive(owner: str | None) -> bool:
    if not owner:
        return False
    host, _, rest = owner.partition(":")
    pid_text, _, start = rest.partition(":")
    if host != socket.gethostname():
        return True  # cannot check another machine's processes: assume alive
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    if pid <= 0:  # stored data: never signal a process group
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        pass
    return not start or _proc_start(pid) == start


__all__ = ["RunSort", "TraceStore"]
