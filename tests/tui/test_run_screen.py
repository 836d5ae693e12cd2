"""The run screen driven through Textual's pilot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mascope.traces import TraceStore
from mascope.tui import TraceApp, open_for_viewing
from mascope.tui._run_screen import LabelTree, RunScreen
from mascope.tui._runs_screen import RunsScreen, RunTable
from mascope.tui._timeline import StepTimeline

from .conftest import FORK, REPLAY, RUN, assert_snapshot, screen_text, settle, wait_until

SIZE = (130, 34)


def run_screen(app: TraceApp) -> RunScreen:
    assert isinstance(app.screen, RunScreen)
    return app.screen


async def test_run_screen_snapshot(db: Path) -> None:
    with open_for_viewing(db) as store:
        app = TraceApp(store, run_id=RUN, poll_interval=0)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press("n")  # to the first marked step: evidence of FM-1.3
            await settle(pilot)
            assert_snapshot("run", screen_text(app))


async def test_jump_from_an_annotation_to_its_step(db: Path) -> None:
    with open_for_viewing(db) as store:
        app = TraceApp(store, run_id=RUN, poll_interval=0)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            screen = run_screen(app)
            timeline = screen.query_one(StepTimeline)
            assert timeline.cursor == 0
            tree = screen.query_one(LabelTree)
            tree.focus()
            # The tree: Failure modes > Specification issues > FM-1.3 > steps 1, 2;
            # Task verification > FM-3.3 > step 4.
            labels = []
            node = None
            for line in range(tree.last_line + 1):
                node = tree.get_node_at_line(line)
                assert node is not None
                labels.append(str(node.label))
            line = labels.index("◆ step 4")
            tree.move_cursor_to_line(line)
            await pilot.press("enter")
            await settle(pilot)
            assert timeline.cursor == 4 and timeline.has_focus
            assert "FAIL: add(2, 3) gave -1" in screen_text(app)
            assert "evidence for FM-3.3" in screen_text(app)

            tree.focus()
            tree.move_cursor_to_line(next(i for i, t in enumerate(labels) if t.startswith("★")))
            await pilot.press("enter")
            await settle(pilot)
            assert timeline.cursor == 3
            assert "subtracted instead of adding" in screen_text(app)


async def test_open_branches(db: Path) -> None:
    with open_for_viewing(db) as store:
        app = TraceApp(store, run_id=RUN, poll_interval=0)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press("b")  # two branches, none at step 0: says where they are
            await settle(pilot)
            assert run_screen(app).run_id == RUN
            await pilot.press("j", "j", "j", "b")  # step 3: the counterfactual replay
            await settle(pilot)
            assert run_screen(app).run_id == REPLAY
            assert f"from {RUN} at step 3" in screen_text(app)
            await pilot.press("escape")
            await pilot.press("k", "k", "b")  # step 1: the manual fork
            await settle(pilot)
            assert run_screen(app).run_id == FORK
            await pilot.press("escape", "escape")
            await settle(pilot)
            assert isinstance(app.screen, RunsScreen)
            assert app.screen.query_one(RunTable).row_count == 9  # read when first shown


async def test_a_running_run_grows_while_you_watch(db: Path) -> None:
    with TraceStore(db) as writer, open_for_viewing(db) as store:
        rid = writer.start_run(team="live", task="counting")
        writer.append_step(rid, agent="counter", content="1")
        app = TraceApp(store, run_id=rid, poll_interval=0.05)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            timeline = run_screen(app).query_one(StepTimeline)
            assert timeline.total == 1
            for i in range(2, 6):
                writer.append_step(rid, agent="counter", content=str(i))
            await wait_until(pilot, lambda: timeline.total == 5)
            assert timeline.cursor == 4  # it follows the tail
            writer.finish_run(rid, status="succeeded", final_answer="5")
            await wait_until(pilot, lambda: "answer 5" in screen_text(app))
            assert "succeeded" in screen_text(app)


async def test_copy_and_export(db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with open_for_viewing(db) as store:
        app = TraceApp(store, run_id=RUN, poll_interval=0)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press("G", "k", "k", "y")
            assert app.clipboard == "def add(a, b):\n    return a - b"
            await pilot.press("e")
            await app.workers.wait_for_complete()
            await settle(pilot)
    exported = tmp_path / f"mascope-run-{RUN}.jsonl"
    (line,) = exported.read_text().splitlines()
    data = json.loads(line)
    assert data["run"]["id"] == RUN and len(data["steps"]) == 6
    assert len(data["annotations"]) == 3 and len(data["attributions"]) == 1


async def test_a_long_run_opens_without_reading_it_all(tmp_path: Path) -> None:
    db = tmp_path / "long.db"
    with TraceStore(db) as s:
        rid = s.start_run(team="t", task="long")
        for i in range(2000):
            s.append_step(rid, agent="a", content=f"step {i}")
        s.finish_run(rid, status="failed")
    with open_for_viewing(db) as store:
        app = TraceApp(store, run_id=rid, poll_interval=0)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            timeline = run_screen(app).query_one(StepTimeline)
            assert len(timeline._pages) == 1
            await pilot.press("G")
            await settle(pilot)
            assert timeline.cursor == 1999 and "step 1999" in screen_text(app)
            assert len(timeline._pages) == 2  # the first page and the last, nothing between


async def test_looking_writes_nothing_and_huge_steps_are_cut(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io
    import sqlite3

    from rich.console import Console
    from textual.widgets import Static

    db = tmp_path / "huge.db"
    with TraceStore(db) as s:
        rid = s.start_run(team="t", task="big")
        s.append_step(rid, agent="a", content="x" * 100_000)
        s.finish_run(rid, status="failed")

    def dump() -> list[str]:
        con = sqlite3.connect(db)
        try:
            return list(con.iterdump())
        finally:
            con.close()

    before = dump()
    monkeypatch.chdir(tmp_path)
    with open_for_viewing(db) as store:
        app = TraceApp(store, run_id=rid, poll_interval=0.05)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.pause(0.2)
            detail = run_screen(app).query_one("#detail", Static).content
            console = Console(width=80, file=io.StringIO(), record=True)
            console.print(detail)
            assert "80,000 more characters" in console.export_text()
            await pilot.press("y", "e", "escape")
            await app.workers.wait_for_complete()
            await pilot.pause(0.2)
    assert app.clipboard == "x" * 100_000
    assert dump() == before


async def test_the_step_pane_shows_what_the_agent_was_sent(tmp_path: Path) -> None:
    db = tmp_path / "inputs.db"
    with TraceStore(db) as writer:
        rid = writer.start_run(team="math", task="add")
        writer.append_step(rid, agent="planner", content="plan: add them")  # no model input
        writer.append_step(
            rid,
            agent="solver",
            content="ANSWER: 5",
            inputs=[
                {"role": "system", "content": "You are solver, the careful adder.\n\nBe exact."},
                {"role": "user", "content": "Task: add\n\nIt was rejected: recount the twos"},
            ],
        )
        writer.finish_run(rid, status="succeeded")
    with open_for_viewing(db) as store:
        app = TraceApp(store, run_id=rid, poll_interval=0)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            assert "sent to the model" not in screen_text(app)  # step 0 called no model
            await pilot.press("j")
            await settle(pilot)
            text = screen_text(app)
            assert "input: 2 messages sent to the model" in text
            assert "▸ system" in text and "You are solver, the careful adder." in text
            assert "▸ user" in text and "recount the twos" not in text  # collapsed: first lines
            await pilot.press("i")
            await settle(pilot)
            text = screen_text(app)
            assert "▾ system" in text and "Be exact." in text and "recount the twos" in text
            await pilot.press("i")
            await settle(pilot)
            assert "recount the twos" not in screen_text(app)


async def test_an_uncertain_label_is_shown_apart_and_not_in_the_mode_column(db: Path) -> None:
    with TraceStore(db) as writer:
        writer.add_annotations(
            RUN,
            [{"mode": "FM-2.6", "present": False, "status": "uncertain", "evidence_steps": [1],
              "status_reason": "quote 'all checked' is not in step 1", "annotator": "llm:weak"}],
        )  # fmt: skip
    with open_for_viewing(db) as store:
        app = TraceApp(store, poll_interval=0)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await settle(pilot)
            table = app.screen.query_one(RunTable)
            row = [str(c) for c in table.get_row(RUN)]
            assert "FM-3.3" in " ".join(row) and "FM-2.6" not in " ".join(row)
        app = TraceApp(store, run_id=RUN, poll_interval=0)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await settle(pilot)
            tree = run_screen(app).query_one(LabelTree)
            lines = []
            for line in range(tree.last_line + 1):
                node = tree.get_node_at_line(line)
                assert node is not None
                lines.append(str(node.label))
            failure_modes = next(i for i, t in enumerate(lines) if t.startswith("Failure modes"))
            doubts = next(i for i, t in enumerate(lines) if t.startswith("Uncertain, not counted"))
            assert lines[doubts] == "Uncertain, not counted (1)" and doubts > failure_modes
            assert not any("FM-2.6" in t for t in lines[:doubts])
            assert lines[doubts + 1].startswith("? FM-2.6")
            assert "is not in step 1" in lines[doubts + 2]
