"""What `Team.run` hands back."""

from __future__ import annotations

from pathlib import Path

from mascope import Agent, Team


def test_a_run_result_gives_its_steps(tmp_path: Path) -> None:
    team = Team(
        "two",
        [Agent("a", fn=lambda ctx: "one"), Agent("b", fn=lambda ctx: "two")],
        store=tmp_path / "r.db",
    )
    result = team.run("t")
    assert result.step_count == 2
    assert [(s.index, s.agent, s.content) for s in result.steps] == [
        (0, "a", "one"),
        (1, "b", "two"),
    ]
    assert result.steps is result.steps  # loaded once
