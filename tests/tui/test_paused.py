"""A paused run in the TUI: its question is marked and the header says how to continue."""

from __future__ import annotations

from pathlib import Path

from mascope.agents import Agent, TurnContext
from mascope.graphs import Team
from mascope.tui import TraceApp, open_for_viewing

from .conftest import screen_text


def _writer(ctx: TurnContext) -> str:
    return "a draft"


async def test_a_paused_run_shows_its_question_and_the_resume_command(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    team = Team(
        "review",
        [Agent("writer", fn=_writer)],
        stages=[{"agent": "writer", "interrupt": "before", "prompt": "Approve the plan?"}],
        store=db,
    )
    result = await team.arun("write it")
    assert result.paused
    team.store.close()
    with open_for_viewing(db) as store:
        app = TraceApp(store, run_id=result.run_id, poll_interval=0)
        async with app.run_test(size=(130, 30)) as pilot:
            await pilot.pause()
            text = screen_text(app)
    assert "paused" in text
    assert f"waiting Approve the plan?  (mascope runs resume {result.run_id} --input TEXT)" in text
    assert "⏸ asks" in text
