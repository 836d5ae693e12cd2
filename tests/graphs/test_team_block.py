"""`async with team:`: one checkpoint connection for every run, resume and fork inside the block."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mascope.agents import Agent, TurnContext
from mascope.errors import UserError
from mascope.graphs import Team

from .helpers import is_five, wrong_then_right


def _says_task(ctx: TurnContext) -> str:
    return f"{ctx.agent}: {ctx.task} ({len(ctx.transcript)} before me)"


def _team(db: Path) -> Team:
    return Team(
        "solve",
        [Agent("solver", fn=wrong_then_right), Agent("reporter", fn=_says_task)],
        stages=[{"agent": "solver", "verifier": "five"}, "reporter"],
        verifiers={"five": is_five},
        store=db,
    )


def test_concurrent_runs_and_a_fork_inside_the_block_then_a_fork_after_it(
    tmp_path: Path,
) -> None:
    team = _team(tmp_path / "t.db")

    async def go() -> list[str]:
        async with team:
            results = await asyncio.gather(*(team.arun(f"task {i}") for i in range(6)))
            assert [r.status for r in results] == ["succeeded"] * 6
            assert [r.answer for r in results] == [
                f"reporter: task {i} (4 before me)" for i in range(6)
            ]
            # the solver's first answer, replaced: the verifier passes it at once
            forked = await team.afork(results[2].run_id, step=0, content="ANSWER: 5")
            assert [s.agent for s in forked.steps] == ["solver", "five", "reporter"]
            return [r.run_id for r in results]

    run_ids = asyncio.run(go())
    # what the block wrote to the checkpoints is there for a new team in a new loop
    again = Team.from_run(team.store, run_ids[4]).fork(run_ids[4], step=2, content="ANSWER: 5")
    assert again.status == "succeeded"
    assert again.answer == "reporter: task 4 (4 before me)"
    assert team.run("after the block").status == "succeeded"  # its own connection again


def test_the_block_belongs_to_one_event_loop(tmp_path: Path) -> None:
    team = _team(tmp_path / "t.db")

    async def enter() -> None:
        await team.__aenter__()

    asyncio.run(enter())  # left open on a loop that is now gone
    with pytest.raises(UserError, match="already in an `async with` block on another event loop"):
        asyncio.run(enter())
    # runs on another loop do not touch the held connection
    assert team.run("still works").status == "succeeded"
