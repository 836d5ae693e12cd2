"""Graph topology: fan-out runs every branch, a join waits for all of them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mascope import Agent, Team
from mascope.agents import TurnContext
from mascope.errors import ConfigError
from mascope.traces import TraceStore


def says(text: str) -> Any:
    return lambda ctx: text


def seen_by(name: str) -> Any:
    """An agent that reports which agents spoke before it."""

    def fn(ctx: TurnContext) -> str:
        return f"{name} after " + ",".join(e.agent for e in ctx.transcript if e.kind == "message")

    return fn


def graph_team(db: Path, edges: list[tuple[str, str]], names: str, **kwargs: Any) -> Team:
    return Team(
        "fan",
        [Agent(n, fn=seen_by(n)) for n in names],
        topology="graph",
        start=names[0],
        nodes=[{"name": n, "agent": n} for n in names],
        edges=[{"from": a, "to": b} for a, b in edges],
        store=db,
        **kwargs,
    )


def test_two_always_edges_run_both_branches(tmp_path: Path) -> None:
    db = tmp_path / "f.db"
    result = graph_team(db, [("a", "b"), ("a", "c")], "abc").run("t")
    steps = TraceStore(db).steps(result.run_id)
    assert [s.agent for s in steps] == ["a", "b", "c"]
    assert [s.index for s in steps] == [0, 1, 2]
    assert (result.status, result.termination_reason) == ("succeeded", "end")


def test_a_join_runs_once_after_every_branch(tmp_path: Path) -> None:
    db = tmp_path / "j.db"
    # b reaches d in one hop, c in two (via e): d still waits for e
    edges = [("a", "b"), ("a", "c"), ("b", "d"), ("c", "e"), ("e", "d")]
    result = graph_team(db, edges, "abcde").run("t")
    steps = TraceStore(db).steps(result.run_id)
    assert [s.agent for s in steps] == ["a", "b", "c", "e", "d"]
    assert steps[-1].content == "d after a,b,c,e"
    assert result.answer == "d after a,b,c,e"


def test_fan_out_order_is_the_same_every_run(tmp_path: Path) -> None:
    db = tmp_path / "o.db"
    team = graph_team(db, [("a", "c"), ("a", "b"), ("b", "d"), ("c", "d")], "abcd")
    orders = {tuple(s.agent for s in team.run("t").steps) for _ in range(3)}
    assert orders == {("a", "c", "b", "d")}  # edges' order decides, not timing


def test_final_names_the_answer_of_a_graph_with_branches(tmp_path: Path) -> None:
    result = graph_team(tmp_path / "x.db", [("a", "b"), ("a", "c")], "abc", final="b").run("t")
    assert result.answer == "b after a"


def test_fork_inside_a_branch_replays_the_rest(tmp_path: Path) -> None:
    db = tmp_path / "k.db"
    team = graph_team(db, [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")], "abcd")
    parent = team.run("t")
    child = team.fork(parent.run_id, step=1, content="b fixed")
    steps = TraceStore(db).steps(child.run_id)
    assert [s.agent for s in steps] == ["a", "b", "c", "d"]
    assert [s.index for s in steps] == [0, 1, 2, 3]
    assert steps[1].content == "b fixed" and child.status == "succeeded"


def test_a_conditional_edge_after_an_always_edge_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        Team(
            "bad", [Agent("a", fn=says("x")), Agent("b", fn=says("y"))], topology="graph", start="a",
            nodes=[{"name": "a", "agent": "a"}, {"name": "b", "agent": "b"}],
            edges=[{"from": "a", "to": "b"}, {"from": "a", "to": "END", "when": "contains:x"}],
            store=tmp_path / "b.db",
        )  # fmt: skip
    message = str(info.value)
    assert "edges[1]" in message and "a -> END" in message and "never be taken" in message
    assert "\n" not in message


def test_yaml_fan_out_runs_from_the_cli(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from mascope.cli import app

    team = tmp_path / "fan.yaml"
    team.write_text(
        "name: fan\n"
        "agents:\n"
        + "".join(f"  - name: {n}\n    function: tests.graphs.helpers:counter\n" for n in "abc")
        + "topology:\n  kind: graph\n  start: a\n"
        "  nodes: [{name: a, agent: a}, {name: b, agent: b}, {name: c, agent: c}]\n"
        "  edges: [{from: a, to: b}, {from: a, to: c}]\n"
    )
    db = tmp_path / "y.db"
    result = CliRunner().invoke(app, ["run", str(team), "--task", "t", "--db", str(db)])
    assert result.exit_code == 0, result.output
    run = TraceStore(db).list_runs()[0]
    assert [s.agent for s in TraceStore(db).steps(run.id)] == ["a", "b", "c"]
