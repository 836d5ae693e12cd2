"""Team YAML: mistakes are one line naming the file, the path and the fix, before any model loads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from mascope.cli import app
from mascope.errors import ConfigError
from mascope.graphs import Team, load_team_file

from ..test_cli import assert_one_line_error

runner = CliRunner()

GOOD = {
    "name": "t",
    "model": "local",
    "agents": [
        {"name": "a", "function": "tests.graphs.helpers:counter"},
        {"name": "b", "role": "checker"},
    ],
    "verifiers": {"v": {"kind": "answer_match", "expected": "5"}},
    "topology": {"kind": "pipeline", "stages": ["a", {"agent": "b", "verifier": "v"}]},
}


def write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "team.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_the_examples_are_valid() -> None:
    root = Path(__file__).resolve().parents[2] / "examples"
    names = sorted(p.name for p in root.glob("*.yaml"))
    assert names == [
        "group_chat.yaml",
        "humaneval_coder.yaml",
        "planner_coder_tester.yaml",
        "research_graph.yaml",
        "solver_checker.yaml",
    ]
    for path in root.glob("*.yaml"):
        assert load_team_file(path).agents


@pytest.mark.parametrize(
    ("change", "needles"),
    [
        (
            lambda d: d["agents"][0].update(nmae="x"),
            ["agents[0].nmae: unknown key (did you mean 'name'?)"],
        ),
        (lambda d: d.update(agnets=[]), ["agnets: unknown key (did you mean 'agents'?)"]),
        (
            lambda d: d["topology"]["stages"].append("coder"),
            ["topology.stages[2].agent: no agent named 'coder'"],
        ),
        (
            lambda d: d["topology"]["stages"][1].update(verifier="vv"),
            ["topology.stages[1].verifier: no verifier named 'vv' (did you mean 'v'?)"],
        ),
        (
            lambda d: d["verifiers"].update(t={"kind": "code_tests", "tests_from": "tster"}),
            ["verifiers.t.tests_from: no agent named 'tster'"],
        ),
        (lambda d: d.pop("topology"), ["topology: required key is missing"]),
        (
            lambda d: d["topology"].update(kind="tree"),
            ["topology: kind must be one of pipeline, group_chat, graph"],
        ),
        (lambda d: d["agents"].append({"name": "a"}), ["names must be unique; 'a' appears twice"]),
        (
            lambda d: d.update(
                topology={
                    "kind": "graph",
                    "start": "n1",
                    "nodes": [{"name": "n1", "agent": "a"}],
                    "edges": [{"from": "n1", "to": "n2"}],
                }
            ),
            ["topology.edges[0].to: no node named 'n2'", "use END"],
        ),
        (
            lambda d: d.update(
                topology={
                    "kind": "graph",
                    "start": "n1",
                    "nodes": [{"name": "n1", "agent": "a"}, {"name": "n2", "agent": "b"}],
                    "edges": [{"from": "n1", "to": "n2"}, {"from": "n2", "to": "n1"}],
                }
            ),
            ["the graph has a cycle (n1 -> n2 -> n1)", "termination.max_steps"],
        ),
        (
            lambda d: d.update(topology={"kind": "group_chat", "agents": ["a", "b"]}),
            ["group chat goes round forever", "max_rounds"],
        ),
    ],
)
def test_bad_team_files(tmp_path: Path, change, needles: list[str]) -> None:
    data = yaml.safe_load(yaml.safe_dump(GOOD))
    change(data)
    path = write(tmp_path, data)
    with pytest.raises(ConfigError) as info:
        load_team_file(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    for needle in needles:
        assert needle in message, message
    assert not INTERNAL_NAME.search(message.removeprefix(str(path))), message
    db = tmp_path / "never.db"
    result = runner.invoke(app, ["run", str(path), "--task", "x", "--db", str(db)])
    assert_one_line_error(result, *needles)
    assert not db.exists(), "nothing may be written for a bad team file"


GRAPH = {
    "kind": "graph",
    "start": "a",
    "nodes": [{"name": "a", "agent": "a"}, {"name": "b", "agent": "b"}],
    "edges": [{"from": "a", "to": "b"}],
}

# A class name (NodeSpec, StageSpec, BaseModel) or a private name (_Strict) in a message
# sends the user to the source; the messages must speak YAML.
INTERNAL_NAME = re.compile(r"\b[A-Z][A-Za-z0-9]*(?:Spec|Model)\b|(?<![\w.\[])_[A-Za-z]\w*")


def _graph(**changes: object) -> dict:
    return {**GRAPH, **changes}


@pytest.mark.parametrize(
    ("change", "needles"),
    [
        (
            lambda d: d.update(topology=_graph(nodes=["a"])),
            [
                "topology.nodes[0]: expected a mapping like {name: researcher, agent: researcher}, "
                'got the string "a"'
            ],
        ),
        (
            lambda d: d.update(topology={k: v for k, v in GRAPH.items() if k != "start"}),
            ["topology.start: required key is missing", "add it, e.g. start: researcher"],
        ),
        (
            lambda d: d.update(topology=_graph(edges=[{"from": "a"}])),
            ["topology.edges[0].to: required key is missing", "e.g. to: "],
        ),
        (
            lambda d: d.update(topology=_graph(edges="a -> b")),
            ["topology.edges: expected a list like [{from: ", 'got the string "a -> b"'],
        ),
        (
            lambda d: d.pop("topology"),
            ["topology: required key is missing", "e.g. topology: {kind: pipeline, stages: ["],
        ),
        (
            lambda d: d.update(topology="pipeline"),
            ["topology: expected a mapping with kind: pipeline | group_chat | graph, like {kind:"],
        ),
        (
            lambda d: d.update(topology={"stages": ["a"]}),
            ["topology: kind is missing", "one of pipeline, group_chat, graph"],
        ),
        (
            lambda d: d["topology"].update(kind="pipelin"),
            ["got the string \"pipelin\" (did you mean 'pipeline'?)"],
        ),
        (
            lambda d: d["topology"]["stages"].append(5),
            [
                "topology.stages[2]: expected a mapping like {agent: writer, verifier: check} "
                "or a string like researcher, got the number 5"
            ],
        ),
        (
            lambda d: d["topology"]["stages"][1].update(verfier="v"),
            ["topology.stages[1].verfier: unknown key (did you mean 'verifier'?)"],
        ),
        (
            lambda d: d["topology"]["stages"][1].update(strategy={"budget": {"secs": 3}}),
            ["topology.stages[1].strategy.budget.secs: unknown key (did you mean 'seconds'?)"],
        ),
        (
            lambda d: d["topology"]["stages"][1].update(max_rounds=0),
            ["topology.stages[1].max_rounds: must be at least 1, got the number 0"],
        ),
        (
            lambda d: d["topology"].update(stages=[]),
            ["topology.stages: needs at least 1 item, e.g. stages: ["],
        ),
        (
            lambda d: d["verifiers"]["v"].update(mode="fuzzy"),
            [
                'verifiers.v.mode: expected one of contains, exact, normalised, numeric, regex, got the string "fuzzy"'
            ],
        ),
        (
            lambda d: d["verifiers"].update(w="answer_match"),
            [
                "verifiers.w: expected a mapping like {kind: answer_match",
                'got the string "answer_match"',
            ],
        ),
        (
            lambda d: d.update(agents=["a"]),
            ["agents[0]: expected a mapping like {name: researcher", 'got the string "a"'],
        ),
        (
            lambda d: d.update(agents={"name": "a"}),
            ["agents: expected a list like [{name: researcher", "got a mapping"],
        ),
        (
            lambda d: d["agents"][0].update(name="1 x"),
            ["agents[0].name: expected a unique name of letters", 'got the string "1 x"'],
        ),
        (
            lambda d: d["agents"][0].update(constraints="be nice"),
            ["agents[0].constraints: expected a list like [", 'got the string "be nice"'],
        ),
        (
            lambda d: d.update(termination={"max_steps": "many"}),
            ['termination.max_steps: expected a whole number, got the string "many"'],
        ),
        (
            lambda d: d.update(termination={"budget": 300}),
            ["termination.budget: expected a mapping like {seconds: 300}, got the number 300"],
        ),
        (
            lambda d: d.update(tools=["x"]),
            ["tools: expected a mapping like {", "got a list"],
        ),
        (lambda d: d.pop("name"), ["name: required key is missing", "e.g. name: "]),
        (
            lambda d: d["agents"][0].update({1: "x"}),
            ["agents[0].1: keys must be text, got the number 1 as a key"],
        ),
    ],
)
def test_validation_errors_show_the_expected_shape(
    tmp_path: Path, change, needles: list[str]
) -> None:
    data = yaml.safe_load(yaml.safe_dump(GOOD))
    change(data)
    path = write(tmp_path, data)
    with pytest.raises(ConfigError) as info:
        load_team_file(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    for needle in needles:
        assert needle in message, message
    assert not INTERNAL_NAME.search(message.removeprefix(str(path))), message
    assert "Input should be" not in message, message


def test_not_yaml_and_missing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    assert_one_line_error(
        runner.invoke(app, ["run", str(bad), "--task", "x"]), "not valid YAML (line"
    )
    assert_one_line_error(
        runner.invoke(app, ["run", str(tmp_path / "none.yaml"), "--task", "x"]), "does not exist"
    )


def test_bad_model_fails_before_anything_is_recorded(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    db = tmp_path / "m.db"
    result = runner.invoke(
        app, ["run", str(path), "--task", "x", "--model", "openai:gpt-4o", "--db", str(db)]
    )
    assert_one_line_error(result, "OPENAI_API_KEY is not set")
    from mascope.traces import TraceStore

    assert not db.exists() or TraceStore(db).count_runs() == 0


@pytest.mark.parametrize(
    ("agent", "needles"),
    [
        ("temperature: .nan", ["agents[0].temperature", "finite"]),
        ("temperature: -1", ["agents[0].temperature", "at least 0"]),
        ("max_tokens: 0", ["agents[0].max_tokens", "at least 1"]),
        ("max_tokens: 99999999999999999999999", ["agents[0].max_tokens", "at most"]),
        ("max_tool_calls: -1", ["agents[0].max_tool_calls", "at least 0"]),
    ],
)
def test_agent_numbers_out_of_range_are_refused(
    tmp_path: Path, agent: str, needles: list[str]
) -> None:
    path = tmp_path / "team.yaml"
    path.write_text(
        f"name: t\nagents:\n  - name: a\n    role: r\n    {agent}\n"
        "topology: {kind: pipeline, stages: [a]}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_team_file(path)
    message = str(info.value)
    assert "\n" not in message and all(n in message for n in needles), message


def test_an_answer_match_regex_that_does_not_compile_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "team.yaml"
    path.write_text(
        "name: t\nagents:\n  - {name: a, role: r}\n"
        'verifiers: {v: {kind: answer_match, mode: regex, expected: "(("}}\n'
        "topology: {kind: pipeline, stages: [{agent: a, verifier: v}]}\n"
    )
    with pytest.raises(ConfigError) as info:
        Team.from_yaml(path, store=tmp_path / "s.db")
    assert "verifier v" in str(info.value) and "regular expression" in str(info.value)
    assert list(tmp_path.iterdir()) == [path]
