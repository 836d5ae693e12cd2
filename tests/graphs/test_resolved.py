"""The resolved team a Team's graph and runs read, and runs that share one Team."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest

from mascope import Agent, Team
from mascope.agents import TurnContext
from mascope.graphs import ResolvedTeam
from mascope.models import ScriptedModel
from mascope.traces import TraceStore


async def slow_echo(ctx: TurnContext) -> str:
    # Yield to the event loop between steps, so runs of one team interleave.
    for _ in range(3):
        await asyncio.sleep(0)
    return f"{ctx.agent} on {ctx.task} after {len(ctx.transcript)}"


async def test_runs_of_one_team_at_once_keep_their_own_steps(tmp_path: Path) -> None:
    team = Team(
        "echo",
        [Agent("first", fn=slow_echo), Agent("second", fn=slow_echo)],
        store=tmp_path / "r.db",
    )
    tasks = [f"task {i}" for i in range(4)]
    results = await asyncio.gather(*(team.arun(t) for t in tasks))
    store = TraceStore(tmp_path / "r.db")
    for task, result in zip(tasks, results, strict=True):
        assert result.succeeded
        contents = [s.content for s in store.steps(result.run_id) if s.kind == "message"]
        # Each run saw only its own conversation.
        assert contents == [f"first on {task} after 0", f"second on {task} after 1"]
        assert result.answer == f"second on {task} after 1"


def test_the_resolved_team_is_frozen_and_is_what_the_team_shows(tmp_path: Path) -> None:
    solver = Agent("solver", role="solves")
    team = Team("t", [solver], model=ScriptedModel(["ANSWER: 1"]), store=tmp_path / "r.db")
    resolved = team.resolved
    assert isinstance(resolved, ResolvedTeam)
    assert resolved.spec is team.spec and resolved.agents["solver"] is solver
    assert team.agents["solver"] is solver
    with pytest.raises(dataclasses.FrozenInstanceError):
        resolved.spec = team.spec  # type: ignore[misc]
    with pytest.raises(TypeError):
        team.tools["x"] = team.tools.get("x")  # type: ignore[index]


def test_override_model_rebuilds_what_the_next_run_uses(tmp_path: Path) -> None:
    script = tmp_path / "replies.yaml"
    script.write_text('- "ANSWER: from the file"\n')
    team = Team(
        "t", [Agent("solver", role="solves")], model=ScriptedModel(["ANSWER: built in"]),
        store=tmp_path / "r.db",
    )  # fmt: skip
    before, graph = team.resolved, team.graph
    team.override_model(f"scripted:{script}")
    assert team.resolved is not before and team.resolved.spec is before.spec
    assert team.graph is not graph  # compiled again from the new resolved team
    result = team.run("say something")
    assert result.answer == "ANSWER: from the file"
    assert team.resolved.model == f"scripted:{script}"
