"""The TUI paints before the full store is open, and reads it off the UI thread."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from textual.widgets import DataTable, Input, Select

from mascope.traces import RunPage, StoreGlance, TraceStore
from mascope.tui import TraceApp
from mascope.tui._open import _open_source
from mascope.tui._runs_screen import RunsScreen

from .conftest import RUN, screen_text, settle

SIZE = (130, 30)


def row_ids(app: TraceApp) -> list[str]:
    table = app.screen.query_one(DataTable)
    return [str(row.key.value) for row in table.ordered_rows]


def fill(db: Path, runs: int = 130) -> None:
    with TraceStore(db) as s:
        for i in range(runs):
            rid = s.start_run(team=("math", "", "coders")[i % 3], task=f"task {i}\nmore")
            for k in range(i % 4):
                s.append_step(rid, agent="a", content=f"step {k}", input_tokens=k, output_tokens=1)
            if i % 5:  # every fifth run is still running
                s.finish_run(rid, status=("succeeded", "failed")[i % 2], final_answer="x")
            if i % 3 == 0:
                s.add_annotations(
                    rid,
                    [
                        {"mode": "FM-1.3", "present": True, "annotator": "rule:x"},
                        {"mode": "FM-3.2", "present": True, "annotator": "rule:y"},
                        {"mode": "FM-2.1", "present": False, "annotator": "llm:j"},
                    ],
                )
        child = s.start_run(team="math", task="a fork", parent_run_id=rid, fork_step=1)
        s.finish_run(child, status="failed")


def test_the_first_page_read_with_sqlite3_is_the_stores_own(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    fill(db)
    with StoreGlance(db) as glance:
        assert glance.usable
        first = glance.runs(limit=100)
    with TraceStore(db, create=False) as store:
        page = store.page_runs(limit=100)
        ids = [r.id for r in page.runs]
        assert [r.id for r in first.runs] == ids and len(ids) == 100
        assert first.total == store.count_runs() == 131
        assert first.where == store.where
        assert first.next == page.next
        assert first.modes == store.modes_by_run(ids)
        assert any(first.modes.values())
        running = [r.id for r in page.runs if r.status == "running"]
        assert running and first.live == store.live_step_counts(running)
        assert first.teams == store.teams()
        assert first.labels_mark == store.labels_mark()
        fields = ("id", "parent_run_id", "fork_step", "team", "task", "status", "started_at",
                  "finished_at", "input_tokens", "output_tokens", "cost_usd", "step_count",
                  "source", "termination_reason")  # fmt: skip
        for row, run in zip(first.runs, page.runs, strict=True):
            assert {f: getattr(row, f) for f in fields} == {f: getattr(run, f) for f in fields}
        # The cursor it hands out reads on where the store's own would.
        assert first.next is not None
        after: RunPage = store.page_runs(limit=100, cursor=first.next)
        assert [r.id for r in after.runs] == [r.id for r in store.list_runs(limit=31, offset=100)]


def test_the_tui_imports_no_sqlalchemy_before_it_paints(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    fill(db, runs=3)
    code = (
        "import sys\nfrom mascope.tui._open import _open_source\n"
        f"source, _ = _open_source({str(db)!r}, None)\n"
        "assert source.first_runs.total == 4 and not source.is_open\n"
        "print(sorted(m for m in ('sqlalchemy', 'sqlmodel', 'pydantic', 'typer') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


async def test_the_first_page_shows_before_the_store_opens(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    fill(db)
    source, _ = _open_source(db, None)
    try:
        app = TraceApp(source, poll_interval=0)
        async with app.run_test(size=SIZE) as pilot:
            first = row_ids(app)  # painted from the sqlite3 read, no worker waited for
            assert len(first) == 100
            await settle(pilot)
            assert source.is_open
            await pilot.press("G")
            await settle(pilot)
            with TraceStore(db, create=False) as store:
                assert row_ids(app) == [r.id for r in store.list_runs(limit=131)]
    finally:
        source.close()


async def test_keys_typed_before_the_selects_are_mounted_still_filter(tmp_path: Path) -> None:
    # The filter row's selects are mounted after the first paint; a user who
    # types `/` and a search at once must not lose a key to the table, and the
    # teams read for the first paint must be the team select's options.
    db = tmp_path / "m.db"
    fill(db, runs=30)
    source, _ = _open_source(db, None)
    try:
        app = TraceApp(source, poll_interval=0)
        async with app.run_test(size=SIZE) as pilot:
            screen = app.screen
            assert isinstance(screen, RunsScreen)
            assert not screen.query("#status")  # painted, the selects not mounted yet
            await pilot.press("slash", *"task 12")
            await settle(pilot)
            search = screen.query_one("#search", Input)
            assert search.has_focus and search.value == "task 12"
            await pilot.press("enter")
            await settle(pilot)
            assert screen.query_one(DataTable).has_focus
            assert task_cells(app) == ["task 12"]
            # The teams, read before the filter row existed, are its options.
            await pilot.press("x")
            screen.query_one("#team", Select).value = "coders"
            await settle(pilot)
            assert task_cells(app) == [f"task {i}" for i in range(29, 0, -3)]
    finally:
        source.close()


def task_cells(app: TraceApp) -> list[str]:
    table = app.screen.query_one(DataTable)
    return [str(table.get_cell(row.key, "task")) for row in table.ordered_rows]


class SlowStore(TraceStore):
    """A store whose pages of runs wait for the test to let them through."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gate = threading.Event()
        self.gate.set()
        self.waiting = threading.Semaphore(0)

    def page_runs(self, **kwargs: Any) -> RunPage:
        if not self.gate.is_set():
            self.waiting.release()
            assert self.gate.wait(30)
        return super().page_runs(**kwargs)


async def test_keys_are_handled_while_a_read_blocks_and_stale_reads_are_dropped(
    tmp_path: Path,
) -> None:
    db = tmp_path / "m.db"
    fill(db, runs=30)
    store = SlowStore(db, create=False)
    try:
        app = TraceApp(store, poll_interval=0)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            screen = app.screen
            assert isinstance(screen, RunsScreen)
            newest_first = row_ids(app)
            store.gate.clear()
            await pilot.press("s")  # sort by team: a read that now blocks
            assert store.waiting.acquire(timeout=10)
            await pilot.press("j", "j")  # handled at once, on the rows still shown
            await pilot.pause()
            assert screen.query_one(DataTable).cursor_row == 2
            assert row_ids(app) == newest_first
            await pilot.press("s")  # sort by status before the team read came back
            assert store.waiting.acquire(timeout=10)
            store.gate.set()
            await settle(pilot)
            assert screen.sort == "status"
            by_status = store.page_runs(sort="status", ascending=True, limit=100).runs
            assert row_ids(app) == [r.id for r in by_status]
    finally:
        store.close()


def test_the_console_script_refuses_a_missing_store_without_creating_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope.db"
    code = "import sys; from mascope.cli import main; sys.argv = ['mascope', *sys.argv[1:]]; main()"
    out = subprocess.run(
        [sys.executable, "-c", code, "tui", "--db", str(missing)], capture_output=True, text=True
    )
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "no trace store at" in out.stderr
    assert not missing.exists() and list(tmp_path.iterdir()) == []


def test_a_run_read_with_sqlite3_is_the_stores_own(db: Path) -> None:
    with StoreGlance(db) as glance:
        assert glance.resolve_run_id(RUN[:-1]) is None  # the prefix of three runs
        assert glance.resolve_run_id(RUN.lower()) == RUN
        assert glance.run("NOPE", steps=10) is None
        first = glance.run(RUN, steps=4)
    assert first is not None
    with TraceStore(db, create=False) as store:
        run = store.get_run(RUN)
        assert first.total == store.count_steps(RUN) == 6
        for name in ("id", "team", "task", "status", "started_at", "final_answer", "step_count"):
            assert getattr(first.run, name) == getattr(run, name)
        steps = store.steps(RUN, limit=4)
        names = ("run_id", "index", "agent", "kind", "content", "data", "model", "input_tokens",
                 "output_tokens", "latency_s", "cost_usd", "checkpoint_id", "error",
                 "created_at", "inputs")  # fmt: skip
        assert [{n: getattr(s, n) for n in names} for s in first.steps] == [
            {n: getattr(s, n) for n in names} for s in steps
        ]


async def test_a_run_opened_by_prefix_paints_before_the_store_opens(db: Path) -> None:
    source, rid = _open_source(db, RUN.lower())
    assert rid == RUN and source.first_run is not None and not source.is_open
    try:
        app = TraceApp(source, run_id=rid, poll_interval=0)
        async with app.run_test(size=(130, 34)) as pilot:
            await pilot.pause()
            assert "6 steps" in screen_text(app)  # from the sqlite3 read
            await settle(pilot)
            text = screen_text(app)
            assert source.is_open and "Failure modes (2)" in text and "reading" not in text
    finally:
        source.close()
