"""The runs screen driven through Textual's pilot."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Input, Select, Static

from mascope.traces import TraceStore
from mascope.tui import TraceApp, open_for_viewing
from mascope.tui._run_screen import RunScreen
from mascope.tui._runs_screen import RunsScreen, RunTable

from .conftest import (
    FORK,
    REPLAY,
    RUN,
    assert_snapshot,
    record_fixture_runs,
    screen_text,
    settle,
    wait_until,
)

SIZE = (130, 30)


def row_ids(app: TraceApp) -> list[str]:
    table = app.screen.query_one(RunTable)
    return [str(row.key.value) for row in table.ordered_rows]


async def test_runs_screen_snapshot(db: Path) -> None:
    with open_for_viewing(db) as store:
        app = TraceApp(store, poll_interval=0)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await settle(pilot)
            assert_snapshot("runs", screen_text(app).replace(str(db), "<db>"))


async def test_filter_search_and_sort(db: Path) -> None:
    with open_for_viewing(db) as store:
        app = TraceApp(store, poll_interval=0)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            screen = app.screen
            assert isinstance(screen, RunsScreen)
            assert row_ids(app)[:3] == [FORK, REPLAY, RUN] and len(row_ids(app)) == 9

            screen.query_one("#status", Select).value = "failed"
            await settle(pilot)
            assert set(row_ids(app)) == {
                RUN,
                FORK,
                "01JTUI00000000000000000001",
                "01JTUI00000000000000000004",
            }
            screen.query_one("#team", Select).value = "coders"
            await settle(pilot)
            assert row_ids(app) == [FORK, RUN]
            screen.query_one("#mode", Select).value = "FM-3.3"
            await settle(pilot)
            assert row_ids(app) == [RUN]
            assert "1 of 1 runs (of 9 in the store)" in str(
                screen.query_one("#runs-status", Static).content
            )

            await pilot.press("x")
            await settle(pilot)
            assert len(row_ids(app)) == 9
            await pilot.press("slash", *"number 4", "enter")
            await settle(pilot)
            assert row_ids(app) == ["01JTUI00000000000000000004"]
            assert screen.query_one(RunTable).has_focus

            await pilot.press("x")
            screen.query_one("#search", Input).value = "no such task"
            await wait_until(pilot, lambda: row_ids(app) == [])  # after typing pauses
            assert "No runs match these filters" in screen_text(app)
            await pilot.press("x")
            await settle(pilot)

            await pilot.press("s", "s", "s")  # time -> team -> status -> steps, largest first
            await settle(pilot)
            assert screen.sort == "steps" and row_ids(app)[0] == RUN
            await pilot.press("S")
            await settle(pilot)
            assert row_ids(app)[-1] == RUN
            await pilot.click(RunTable, offset=(2, 0))  # the "started" header: newest first
            await settle(pilot)
            assert screen.sort == "time" and row_ids(app)[:3] == [FORK, REPLAY, RUN]
            await pilot.click(RunTable, offset=(2, 0))  # again: oldest first
            await settle(pilot)
            assert screen.ascending and row_ids(app)[0] == "01JTUI00000000000000000000"


async def test_pages_through_a_large_store(tmp_path: Path) -> None:
    db = tmp_path / "big.db"
    with TraceStore(db) as s:
        for i in range(250):
            s.start_run(team="t", task=f"task {i}", run_id=f"01JPAGE{i:019d}")
    with open_for_viewing(db) as store:
        app = TraceApp(store, poll_interval=0)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            assert len(row_ids(app)) == 100
            await pilot.press("G")
            await settle(pilot)
            assert len(row_ids(app)) == 200
            await pilot.press("G", "G")
            await settle(pilot)
            ids = row_ids(app)
            assert len(ids) == 250 and len(set(ids)) == 250
            assert ids[-1] == "01JPAGE" + "0" * 19


async def test_a_run_that_changes_while_paging_is_shown_once(tmp_path: Path) -> None:
    """Sorted by status, a running run that ends in error moves to the first page."""
    db = tmp_path / "moving.db"
    with TraceStore(db) as s:
        for i in range(150):
            rid = s.start_run(team="t", task=f"task {i}", run_id=f"01JMOVE{i:019d}")
            if i:
                s.finish_run(rid, status="failed")
    with open_for_viewing(db) as store:
        app = TraceApp(store, poll_interval=0)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            screen = app.screen
            assert isinstance(screen, RunsScreen)
            screen._set_sort("status")
            screen._resort()
            await settle(pilot)
            assert len(row_ids(app)) == 100
            with TraceStore(db) as writer:  # "error" sorts first: every later run shifts by one
                writer.finish_run("01JMOVE" + "0" * 19, status="error")
            await pilot.press("G")
            await settle(pilot)
            ids = row_ids(app)
            # No crash and no run twice; the moved run itself jumped above the
            # rows already read and shows on the next refresh (offset paging).
            assert len(ids) == len(set(ids)) == 149


async def test_an_empty_store_says_how_to_fill_it(tmp_path: Path) -> None:
    TraceStore(tmp_path / "empty.db").close()
    with open_for_viewing(tmp_path / "empty.db") as store:
        app = TraceApp(store, poll_interval=0)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await settle(pilot)
            text = screen_text(app)
            assert "No runs in" in text and "mascope demo" in text


async def test_new_and_running_runs_update_live(db: Path) -> None:
    with open_for_viewing(db) as store, TraceStore(db) as writer:
        app = TraceApp(store, poll_interval=0.05)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            rid = writer.start_run(team="live", task="a run in progress")
            await wait_until(pilot, lambda: row_ids(app)[0] == rid)
            writer.append_step(rid, agent="a", content="one")
            writer.append_step(rid, agent="a", content="two")
            table = app.screen.query_one(RunTable)
            await wait_until(pilot, lambda: table.get_cell(rid, "steps").plain == "2")
            writer.finish_run(rid, status="succeeded")
            await wait_until(pilot, lambda: table.get_cell(rid, "status").plain == "succeeded")


async def test_enter_opens_a_run_and_escape_comes_back(db: Path) -> None:
    with open_for_viewing(db) as store:
        app = TraceApp(store, poll_interval=0)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press("j", "j", "enter")
            await settle(pilot)
            assert isinstance(app.screen, RunScreen) and app.screen.run_id == RUN
            await pilot.press("escape")
            await settle(pilot)
            assert isinstance(app.screen, RunsScreen)
            await pilot.press("question_mark")
            await settle(pilot)
            assert "this help" in screen_text(app) and "open the run" in screen_text(app)
            await pilot.press("escape", "q")
        assert app.return_code == 0


async def test_the_tui_browses_a_postgresql_store(postgres_url: str) -> None:
    record_fixture_runs(postgres_url)  # type: ignore[arg-type]
    with open_for_viewing(postgres_url) as store:
        app = TraceApp(store, poll_interval=0)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await settle(pilot)
            assert row_ids(app)[:3] == [FORK, REPLAY, RUN] and len(row_ids(app)) == 9
            screen = app.screen
            assert isinstance(screen, RunsScreen)
            screen.query_one("#mode", Select).value = "FM-3.3"
            await settle(pilot)
            assert row_ids(app) == [RUN]


async def test_a_task_and_team_that_look_like_markup_are_shown_as_written(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    task = "compute [x for x in xs] then [link=http://example.invalid]click[/link] [bold]now[/]"
    with TraceStore(db) as store:
        rid = store.start_run(team="[red]ops[/red]", task=task)
        store.finish_run(rid, status="failed")
    with open_for_viewing(db) as store:
        app = TraceApp(store, poll_interval=0)
        async with app.run_test(size=(200, 30)) as pilot:
            await settle(pilot)
            screen = app.screen
            table = screen.query_one(RunTable)
            shown = screen_text(app)
            assert "[x for x in xs]" in shown and "[link=" in shown
            cell = table.get_cell(rid, "task")
            assert not cell.spans and cell.plain.startswith("compute [x for x in xs]")
            team = table.get_cell(rid, "team")
            assert not team.spans and team.plain == "[red]ops[/r…"  # cut to 12, not styled
