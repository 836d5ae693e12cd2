"""A first look at a SQLite store with the stdlib `sqlite3` module, read-only.

`StoreGlance` reads what the TUI shows first (the runs screen: how many runs,
the newest page with its failure modes, the teams; the run screen: the run and
its first steps) as `TraceStore` would return it, without importing SQLAlchemy, SQLModel or pydantic: those imports
cost several times the reads themselves, and a terminal UI that paints first
and opens the full store afterwards starts about as fast as a bare Textual app.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ._constants import SCHEMA_VERSION, encode_cursor
from ._sqlite_file import check_existing_sqlite, connect_read_only

_RUN_COLUMNS = (
    "id", "parent_run_id", "fork_step", "team", "task", "status", "started_at", "finished_at",
    "input_tokens", "output_tokens", "cost_usd", "step_count", "source", "termination_reason",
    "final_answer",
)  # fmt: skip
_STEP_COLUMNS = (
    "run_id", "idx", "agent", "kind", "content", "data", "model", "input_tokens", "output_tokens",
    "latency_s", "cost_usd", "checkpoint_id", "error", "created_at", "inputs",
)  # fmt: skip


@dataclass(frozen=True)
class RunRow:
    """The columns of a run that lists of runs show (a `Run` without its spec and metadata)."""

    id: str
    parent_run_id: str | None
    fork_step: int | None
    team: str
    task: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    step_count: int
    source: str
    termination_reason: str | None
    final_answer: str | None


@dataclass(frozen=True)
class StepRow:
    """A step as `TraceStore.steps` reads it, as a plain value."""

    run_id: str
    index: int
    agent: str
    kind: str
    content: str
    data: dict[str, Any] | None
    model: str | None
    input_tokens: int | None
    output_tokens: int | None
    latency_s: float | None
    cost_usd: float | None
    checkpoint_id: str | None
    error: str | None
    created_at: datetime
    inputs: list[dict[str, Any]] | None


@dataclass(frozen=True)
class RunGlance:
    """A run, how many steps it has and its first steps (what the run screen shows first)."""

    run: RunRow
    total: int
    steps: list[StepRow]


@dataclass(frozen=True)
class RunsGlance:
    """The first page of a store's runs, newest first, unfiltered: what
    `count_runs()`, `page_runs(limit=...)`, `modes_by_run`, `live_step_counts`,
    `teams()` and `labels_mark()` of a `TraceStore` on the same file return."""

    where: str
    total: int
    runs: list[RunRow]
    next: str | None
    """The cursor `TraceStore.page_runs` takes for the page after this one."""
    modes: dict[str, list[str]]
    live: dict[str, int]
    """Steps recorded so far by the runs still running."""
    teams: list[str]
    labels_mark: str | None


def _time(value: str | None) -> datetime | None:
    if value is None:
        return None
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _row(values: Sequence[object]) -> RunRow:
    row = dict(zip(_RUN_COLUMNS, values, strict=True))
    started = _time(row["started_at"])  # type: ignore[arg-type]
    return RunRow(
        **{**row, "started_at": started, "finished_at": _time(row["finished_at"])}  # type: ignore[arg-type]
    )


def _step(values: Sequence[Any]) -> StepRow:
    row = dict(zip(_STEP_COLUMNS, values, strict=True))
    row["index"] = row.pop("idx")
    for key in ("data", "inputs"):
        row[key] = None if row[key] is None else json.loads(row[key])
    row["created_at"] = _time(row["created_at"])
    return StepRow(**row)


class StoreGlance:
    """A read-only `sqlite3` connection to a mascope store file.

    Raises the same one-line `StoreError` as `TraceStore(path, create=False)` for
    a missing file, a file that is not SQLite and a SQLite file that is not a
    mascope store, and changes nothing. `usable` is False when the store's schema
    is not the one this mascope reads (the full store then migrates or refuses it).
    """

    def __init__(self, path: Path) -> None:
        check_existing_sqlite(path)
        self.where = str(path)
        self.con = connect_read_only(path)
        self.con.isolation_level = None  # BEGIN and COMMIT are ours
        self.con.execute("PRAGMA busy_timeout = 30000")
        found = self.con.execute(
            "SELECT value FROM mascope_meta WHERE key = 'schema_version'"
        ).fetchone()
        self.usable = found is not None and found[0] == str(SCHEMA_VERSION)

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> StoreGlance:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def resolve_run_id(self, text: str) -> str | None:
        """The one run whose id is `text` or starts with it; None when there is
        no such run or several (the full store then says which)."""
        needle = text.strip().upper()
        if not needle:
            return None
        found = self.con.execute(
            "SELECT id FROM runs WHERE id >= ? AND id < ? ORDER BY id LIMIT 2",
            (needle, needle + "\x7f"),
        ).fetchall()
        ids = [str(r[0]) for r in found]
        if needle in ids:
            return needle
        return ids[0] if len(ids) == 1 else None

    def run(self, run_id: str, *, steps: int) -> RunGlance | None:
        """Run `run_id`, its step count and its first `steps` steps; None if there is no such run."""
        con = self.con
        con.execute("BEGIN")
        try:
            found = con.execute(
                f"SELECT {', '.join(_RUN_COLUMNS)} FROM runs WHERE id = ?", (run_id,)
            ).fetchone()
            if found is None:
                return None
            total = int(
                con.execute("SELECT count(*) FROM steps WHERE run_id = ?", (run_id,)).fetchone()[0]
            )
            rows = con.execute(
                f"SELECT {', '.join(_STEP_COLUMNS)} FROM steps WHERE run_id = ? ORDER BY idx LIMIT ?",
                (run_id, steps),
            ).fetchall()
        finally:
            con.execute("COMMIT")
        return RunGlance(_row(found), total, [_step(r) for r in rows])

    def runs(self, *, limit: int = 50) -> RunsGlance:
        """The newest `limit` runs and what the runs screen shows with them."""
        con = self.con
        con.execute("BEGIN")  # one snapshot for every read below
        try:
            total = int(con.execute("SELECT count(*) FROM runs").fetchone()[0])
            rows = con.execute(
                f"SELECT {', '.join(_RUN_COLUMNS)} FROM runs ORDER BY id DESC LIMIT ?",
                (limit + 1,),
            ).fetchall()
            runs = [_row(r) for r in rows[:limit]]
            ids = [r.id for r in runs]
            modes: dict[str, list[str]] = {rid: [] for rid in ids}
            marks = ", ".join("?" * len(ids))
            if ids:
                for rid, mode in con.execute(
                    f"SELECT DISTINCT run_id, mode FROM annotations "
                    f"WHERE run_id IN ({marks}) AND present = 1",
                    ids,
                ):
                    modes[rid].append(mode)
            for found in modes.values():
                found.sort()
            running = [r.id for r in runs if r.status == "running"]
            live: dict[str, int] = {}
            if running:
                live = dict(
                    con.execute(
                        f"SELECT run_id, count(*) FROM steps WHERE run_id IN "
                        f"({', '.join('?' * len(running))}) GROUP BY run_id",
                        running,
                    ).fetchall()
                )
            teams = [str(t) for (t,) in con.execute("SELECT DISTINCT team FROM runs ORDER BY team")]
            mark = con.execute("SELECT max(rowid) FROM annotations").fetchone()[0]
        finally:
            con.execute("COMMIT")
        nxt = None
        if len(rows) > limit and runs:
            nxt = encode_cursor("time", False, runs[-1].id, runs[-1].id)
        return RunsGlance(
            where=self.where,
            total=total,
            runs=runs,
            next=nxt,
            modes=modes,
            live=live,
            teams=teams,
            labels_mark=None if mark is None else str(mark),
        )


__all__ = ["RunGlance", "RunRow", "RunsGlance", "StepRow", "StoreGlance"]
