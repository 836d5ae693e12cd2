"""Router edges: a function reads the run's state and names the next node (YAML and Python)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from mascope import Agent, Team
from mascope.errors import ConfigError
from mascope.graphs import END, RouteState, parse_team
from mascope.models import ScriptedModel
from mascope.traces import TraceStore

from ..test_cli import assert_one_line_error

runner = CliRunner()


def says(text: str):  # type: ignore[no-untyped-def]
    return lambda ctx: text


def by_topic(state: RouteState) -> str:
    """Send maths to the calculator and everything else to the poet."""
    return "calc" if "math" in state.last_output.lower() else "poet"


def triage_team(db: Path, router: object = by_topic) -> Team:
    return Team(
        "triage",
        [
            Agent("triage", model=ScriptedModel(["topic: math", "topic: poetry"])),
            Agent("calculator", fn=says("42")),
            Agent("poet", fn=says("roses are red")),
        ],
        topology="graph",
        start="triage",
        nodes=[
            {"name": "triage", "agent": "triage"},
            {"name": "calc", "agent": "calculator"},
            {"name": "poet", "agent": "poet"},
        ],
        edges=[{"from": "triage", "router": router}],
        store=db,
    )


def test_a_router_chooses_between_two_branches_by_the_state(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    team = triage_team(db)
    first, second = team.run("what is 6 * 7?"), team.run("a poem please")
    assert (first.status, first.answer) == ("succeeded", "42")
    assert (second.status, second.answer) == ("succeeded", "roses are red")
    store = TraceStore(db)
    assert [s.agent for s in store.steps(first.run_id)] == ["triage", "calculator"]
    assert [s.agent for s in store.steps(second.run_id)] == ["triage", "poet"]
    # the stored spec names the router, so the run can be rebuilt from it
    edge = store.get_run(first.run_id).spec["topology"]["edges"][0]
    assert edge["router"] == "tests.graphs.test_routers:by_topic"


def test_the_router_sees_a_read_only_view_of_the_run(tmp_path: Path) -> None:
    seen: list[RouteState] = []

    def look(state: RouteState) -> str:
        seen.append(state)
        with pytest.raises(TypeError):
            state.outputs["writer"] = "changed"  # type: ignore[index]
        return END

    team = Team(
        "t",
        [Agent("writer", fn=says("draft")), Agent("other", fn=says("never"))],
        topology="graph",
        start="w",
        nodes=[
            {"name": "w", "agent": "writer"},
            {"name": "check", "verifier": "ok"},
            {"name": "o", "agent": "other"},
        ],
        edges=[{"from": "w", "to": "check"}, {"from": "check", "when": look}],
        verifiers={"ok": lambda c: (False, "too short")},
        store=tmp_path / "r.db",
    )
    result = team.run("write")
    assert result.status == "succeeded" and result.answer == "draft"
    (state,) = seen
    assert (state.task, state.node, state.last_output, state.last_agent) == (
        "write",
        "check",
        "draft",
        "writer",
    )
    assert dict(state.outputs) == {"writer": "draft"}
    assert state.verdict is not None and not state.verdict.passed
    assert state.verdict.feedback == "too short" and state.turns == 2
    assert [s.agent for s in result.steps] == ["writer", "ok"]


def test_a_router_loops_until_the_verifier_passes(tmp_path: Path) -> None:
    def retry_or_stop(state: RouteState) -> str:
        if state.verdict is not None and state.verdict.passed:
            return "end"
        return "write" if state.turns < 6 else "END"

    drafts = iter(["one", "two", "three!"])
    team = Team(
        "loop",
        [Agent("writer", fn=lambda ctx: next(drafts))],
        topology="graph",
        start="write",
        nodes=[{"name": "write", "agent": "writer"}, {"name": "check", "verifier": "bang"}],
        edges=[{"from": "write", "to": "check"}, {"from": "check", "router": retry_or_stop}],
        verifiers={"bang": lambda c: c.endswith("!")},
        store=tmp_path / "r.db",
    )
    result = team.run("shout")
    assert result.answer == "three!"
    assert [s.agent for s in result.steps] == ["writer", "bang"] * 3


def test_a_condition_before_the_router_takes_precedence(tmp_path: Path) -> None:
    asked: list[str] = []

    def fallback(state: RouteState) -> str:
        asked.append(state.last_output)
        return "b"

    team = Team(
        "t",
        [Agent("a", fn=lambda ctx: ctx.task), Agent("b", fn=says("from b")), Agent("c", fn=says("from c"))],
        topology="graph", start="a",
        nodes=[{"name": "a", "agent": "a"}, {"name": "b", "agent": "b"}, {"name": "c", "agent": "c"}],
        edges=[{"from": "a", "to": "c", "when": "contains:urgent"}, {"from": "a", "when": fallback}],
        store=tmp_path / "r.db",
    )  # fmt: skip
    assert team.run("urgent: now").answer == "from c"
    assert team.run("later").answer == "from b"
    assert asked == ["later"]


@pytest.mark.parametrize(
    ("router", "needles"),
    [
        (
            lambda s: "nowhere",
            ["'nowhere'", "not a node", "after node 'triage'", "<python:<lambda>>"],
        ),
        (lambda s: None, ["None", "not a node"]),
        (lambda s: 1 / 0, ["raised ZeroDivisionError", "after node 'triage'"]),
    ],
    ids=["unknown-node", "none", "raises"],
)
def test_a_router_that_goes_nowhere_fails_the_run_naming_it(
    tmp_path: Path, router: object, needles: list[str]
) -> None:
    db = tmp_path / "r.db"
    result = triage_team(db, router).run("what is 6 * 7?")
    assert result.status == "error" and result.termination_reason == "error"
    assert result.error is not None
    for needle in needles:
        assert needle in result.error
    steps = result.steps
    # the triage turn that ran is kept; then one runtime step says why the run stopped
    assert [(s.agent, s.kind) for s in steps] == [("triage", "message"), ("runtime", "error")]
    assert steps[-1].content == result.error and steps[-1].error == result.error
    assert TraceStore(db).get_run(result.run_id).status == "error"


def test_an_unknown_node_names_the_router_s_path(tmp_path: Path) -> None:
    (tmp_path / "badroutes.py").write_text("def pick(state):\n    return 'writer '\n")
    team_file = tmp_path / "team.yaml"
    team_file.write_text(
        textwrap.dedent(
            """
            name: t
            agents:
              - {name: a, function: "tests.graphs.helpers:echo_task"}
            topology:
              kind: graph
              start: a
              nodes: [{name: a, agent: a}, {name: writer, agent: a}]
              edges: [{from: a, when: "badroutes:pick"}]
            """
        )
    )
    result = Team.from_yaml(team_file, store=tmp_path / "r.db").run("x")
    assert result.status == "error"
    assert "router badroutes:pick after node 'a' returned 'writer '" in (result.error or "")
    assert "return one of a, writer or END" in (result.error or "")


ROUTES = '''
from mascope.graphs import RouteState


def pick(state: RouteState) -> str:
    """Numbers go to the calculator, words to the poet."""
    return "calc" if any(ch.isdigit() for ch in state.task) else "poet"
'''

ROUTED_TEAM = """
name: routed
agents:
  - {{name: triage, role: sorts the task}}
  - {{name: calculator, function: "tests.graphs.helpers:echo_task"}}
  - {{name: poet, role: writes verse}}
model: {model}
topology:
  kind: graph
  start: triage
  nodes:
    - {{name: triage, agent: triage}}
    - {{name: calc, agent: calculator}}
    - {{name: poet, agent: poet}}
  edges:
    - {{from: triage, {edge}: "routes:pick"}}
"""


def _routed(tmp_path: Path, edge: str, replies: list[str]) -> Path:
    (tmp_path / "replies.json").write_text(json.dumps(replies))
    (tmp_path / "routes.py").write_text(ROUTES)
    path = tmp_path / "team.yaml"
    path.write_text(ROUTED_TEAM.format(model=f"scripted:{tmp_path / 'replies.json'}", edge=edge))
    return path


@pytest.mark.parametrize("edge", ["when", "router"])
def test_a_yaml_router_next_to_the_team_file(tmp_path: Path, edge: str) -> None:
    from mascope.cli import app

    path = _routed(tmp_path, edge, ["sorted", "a verse"])
    db = tmp_path / "r.db"
    first = runner.invoke(app, ["run", str(path), "--task", "what is 6 * 7?", "--db", str(db)])
    assert first.exit_code == 0, first.output
    second = runner.invoke(app, ["run", str(path), "--task", "a poem please", "--db", str(db)])
    assert second.exit_code == 0, second.output
    store = TraceStore(db)
    runs = sorted(store.list_runs(), key=lambda r: r.id)
    assert [r.final_answer for r in runs] == ["what is 6 * 7?", "a verse"]
    assert [s.agent for s in store.steps(runs[1].id)] == ["triage", "poet"]
    # a fork rebuilds the team (and imports its router) from the stored run
    fork = runner.invoke(
        app, ["runs", "fork", runs[1].id, "--step", "0", "--content", "x", "--db", str(db)]
    )
    assert fork.exit_code == 0, fork.output


def test_contains_text_is_still_a_condition_not_a_router() -> None:
    spec = parse_team(
        yaml.safe_load(
            textwrap.dedent(
                """
        name: t
        agents: [{name: a}, {name: b}]
        topology:
          kind: graph
          start: a
          nodes: [{name: a, agent: a}, {name: b, agent: b}]
          edges: [{from: a, to: b, when: "contains:x:y"}]
        """
            )
        )
    )
    edge = spec.topology.edges[0]  # type: ignore[union-attr]
    assert edge.router_path is None and edge.when == "contains:x:y"


BAD_EDGES = [
    (
        '{from: a, when: "nosuchmodule:pick"}',
        ["topology.edges[0].when", "cannot import router", "nosuchmodule"],
    ),
    ('{from: a, router: "routes:missing"}', ["topology.edges[0].router", "routes has no missing"]),
    ('{from: a, to: b, router: "routes:pick"}', ["topology.edges[0].to", "picks its own target"]),
    ('{from: a, router: "routes:pick", when: passed}', ["either router or when"]),
    ('{from: a, router: "not a path"}', ["topology.edges[0].router", "package.module:function"]),
    ("{from: a}", ["topology.edges[0].to: required key is missing"]),
]


@pytest.mark.parametrize(("edge", "needles"), BAD_EDGES)
def test_bad_router_edges_are_one_line_errors_before_anything_runs(
    tmp_path: Path, edge: str, needles: list[str]
) -> None:
    from mascope.cli import app

    (tmp_path / "routes.py").write_text(ROUTES)
    path = tmp_path / "team.yaml"
    path.write_text(
        "name: t\nagents: [{name: a}, {name: b}]\nmodel: local:/nonexistent/model.gguf\n"
        "topology:\n  kind: graph\n  start: a\n  nodes: [{name: a, agent: a}, {name: b, agent: b}]\n"
        f"  edges: [{edge}]\n"
    )
    db = tmp_path / "r.db"
    result = runner.invoke(app, ["run", str(path), "--task", "x", "--db", str(db)])
    assert_one_line_error(result, str(path), *needles)
    assert not db.exists()
    assert_one_line_error(runner.invoke(app, ["team", "check", str(path)]), *needles)


def test_an_edge_after_a_router_would_never_fire_and_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"edges\[1\].*after the router edge edges\[0\]"):
        Team(
            "t",
            [Agent("a", fn=says("x")), Agent("b", fn=says("y"))],
            topology="graph",
            start="a",
            nodes=[{"name": "a", "agent": "a"}, {"name": "b", "agent": "b"}],
            edges=[{"from": "a", "router": by_topic}, {"from": "a", "to": "b"}],
        )


def test_a_python_router_given_as_a_path_is_imported(tmp_path: Path) -> None:
    result = triage_team(tmp_path / "r.db", "tests.graphs.test_routers:by_topic").run("6 * 7")
    assert result.answer == "42"
    with pytest.raises(ConfigError, match=r"edges\[0\].*cannot import router 'nope:pick'"):
        triage_team(tmp_path / "r.db", "nope:pick")


def test_a_fork_whose_replacement_sends_the_router_nowhere_ends_in_error(tmp_path: Path) -> None:
    team = triage_team(tmp_path / "r.db", lambda s: s.last_output.removeprefix("go "))
    team.agents["triage"].model = ScriptedModel(["go calc"])
    parent = team.run("6 * 7")
    assert parent.answer == "42"
    child = team.fork(parent.run_id, step=0, content="go mars")
    assert child.status == "error" and "returned 'mars'" in (child.error or "")
    assert [(s.agent, s.kind) for s in child.steps] == [("triage", "message"), ("runtime", "error")]
    again = team.fork(parent.run_id, step=0, content="go poet")
    assert (again.status, again.answer) == ("succeeded", "roses are red")


def test_a_router_bounds_a_retry_loop_by_its_verifier_s_attempts(tmp_path: Path) -> None:
    def twice(state: RouteState) -> str:
        return "END" if state.attempts.get("check", 0) >= 2 else "write"

    team = Team(
        "loop",
        [Agent("writer", fn=says("draft"))],
        topology="graph",
        start="write",
        nodes=[{"name": "write", "agent": "writer"}, {"name": "check", "verifier": "never"}],
        edges=[{"from": "write", "to": "check"}, {"from": "check", "router": twice}],
        verifiers={"never": lambda c: False},
        store=tmp_path / "r.db",
    )
    assert [s.agent for s in team.run("x").steps] == ["writer", "never"] * 2


def test_a_router_module_that_fails_to_import_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "brokenroutes.py").write_text(
        "def pick(state):\n    return 'a'\nraise RuntimeError('oops')\n"
    )
    path = _routed(tmp_path, "router", [])
    path.write_text(path.read_text().replace("routes:pick", "brokenroutes:pick"))
    from mascope.cli import app

    result = runner.invoke(app, ["team", "check", str(path)])
    assert_one_line_error(
        result, "topology.edges[0].router", "importing brokenroutes raised RuntimeError: oops"
    )
