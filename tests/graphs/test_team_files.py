"""Team files as a user meets them: the reference page, the editor schema, `mascope team`,
modules next to the team file, and the graph example."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from mascope.cli import app
from mascope.graphs import parse_team, team_json_schema, team_reference, team_schema_text
from mascope.traces import TraceStore

from ..test_cli import assert_one_line_error

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def test_docs_teams_md_is_up_to_date() -> None:
    page = (ROOT / "docs" / "teams.md").read_text()
    assert page == team_reference(), (
        "docs/teams.md is out of date; regenerate it with: make docs "
        "(or .venv/bin/mascope team docs > docs/teams.md)"
    )


def test_published_schema_is_up_to_date() -> None:
    published = (ROOT / "docs" / "team.schema.json").read_text()
    assert published == team_schema_text(), (
        "docs/team.schema.json is out of date; regenerate it with: make docs "
        "(or .venv/bin/mascope team schema > docs/team.schema.json)"
    )


def test_reference_covers_every_key_of_every_part() -> None:
    page = team_reference()
    for key in ("context_chars", "candidate_from", "retry_from", "speaker_selection", "cost_usd"):
        assert f"| `{key}` |" in page
    assert "| `from` |" in page and "| `schema` |" in page  # YAML names, not Python ones
    # every key has a description, and no Python class name leaks into the page
    assert not re.search(r"\| `\w+` \|[^\n]*\|\s*\|\n", page)
    assert not re.search(r"\b[A-Z]\w*(Spec|Model)\b", page)


def test_every_yaml_team_in_the_page_is_valid() -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", team_reference(), re.S)
    teams = [yaml.safe_load(b) for b in blocks]
    teams = [t for t in teams if isinstance(t, dict) and "topology" in t]
    assert len(teams) >= 2
    for team in teams:
        parse_team(team, source="docs/teams.md")


def test_the_page_s_small_team_runs_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = team_reference()
    team_yaml = re.findall(r"```yaml\n(.*?)```", page, re.S)[0]
    checks_py = re.findall(r"```python\n(.*?)```", page, re.S)[0]
    (tmp_path / "team.yaml").write_text(team_yaml)
    (tmp_path / "checks.py").write_text(checks_py)
    monkeypatch.delitem(sys.modules, "checks", raising=False)  # imported afresh, and not kept
    long_answer = "The sky looks blue " + "because of scattering " * 12
    replies = _script(tmp_path / "replies.json", [long_answer, "Air scatters blue light most."])
    db = tmp_path / "small.db"
    result = runner.invoke(
        app,
        [
            "run",
            str(tmp_path / "team.yaml"),
            "--task",
            "Why is the sky",
            "-m",
            replies,
            "--db",
            str(db),
        ],
    )
    assert result.exit_code == 0, result.output
    run = TraceStore(db).list_runs()[0]
    assert run.final_answer == "Air scatters blue light most."
    kinds = [(s.agent, s.kind) for s in TraceStore(db).steps(run.id)]
    assert kinds == [("writer", "message"), ("short", "verdict")] * 2


def test_schema_accepts_the_examples_and_refuses_mistakes() -> None:
    schema = team_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for path in EXAMPLES.glob("*.yaml"):
        assert not list(validator.iter_errors(yaml.safe_load(path.read_text()))), path
    bad = yaml.safe_load((EXAMPLES / "research_graph.yaml").read_text())
    bad["topology"]["nodes"][0] = "researcher"
    assert list(validator.iter_errors(bad))
    assert not any(
        re.search(r"Spec$", str(d.get("title", ""))) for d in schema["$defs"].values()
    ), "editors show titles: they must be YAML paths, not class names"


def test_team_schema_command_prints_the_schema() -> None:
    result = runner.invoke(app, ["team", "schema"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == team_json_schema()


def test_team_docs_command_prints_the_page() -> None:
    result = runner.invoke(app, ["team", "docs"])
    assert result.exit_code == 0, result.output
    assert result.stdout == team_reference()


def test_team_check_ok_and_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["team", "check", str(EXAMPLES / "research_graph.yaml")])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().endswith("research_graph.yaml: OK (2 agents, graph)")
    assert not list(tmp_path.iterdir()), "checking a team writes nothing"
    bad = tmp_path / "team.yaml"
    data = yaml.safe_load((EXAMPLES / "research_graph.yaml").read_text())
    data["topology"]["nodes"][0] = "researcher"
    bad.write_text(yaml.safe_dump(data))
    assert_one_line_error(
        runner.invoke(app, ["team", "check", str(bad)]),
        f"{bad}: topology.nodes[0]: expected a mapping like {{name: researcher, agent: researcher}}, "
        'got the string "researcher"',
    )
    data = yaml.safe_load((EXAMPLES / "research_graph.yaml").read_text())
    data["agents"][0]["model"] = "nosuch:model"
    bad.write_text(yaml.safe_dump(data))
    assert_one_line_error(runner.invoke(app, ["team", "check", str(bad)]), "agents[0].model")


TEAM_WITH_MODULES = """
name: local-modules
agents:
  - name: writer
    function: mytools:write
verifiers:
  check:
    kind: python
    function: mytools:is_done
topology:
  kind: pipeline
  stages:
    - agent: writer
      verifier: check
      max_rounds: 1
"""

MYTOOLS = """
def write(ctx):
    return "done: " + ctx.task


def is_done(candidate):
    return candidate.startswith("done"), "start with done"
"""


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # only mascope itself on the path, never the team's folder
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "mascope.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_modules_next_to_the_team_file_are_found_from_another_folder(tmp_path: Path) -> None:
    team_dir = tmp_path / "team"
    team_dir.mkdir()
    (team_dir / "team.yaml").write_text(TEAM_WITH_MODULES)
    (team_dir / "mytools.py").write_text(MYTOOLS)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    db = elsewhere / "runs.db"
    result = _cli("run", str(team_dir / "team.yaml"), "--task", "x", "--db", str(db), cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    assert "done: x" in result.stdout
    assert TraceStore(db).list_runs()[0].status == "succeeded"
    check = _cli("team", "check", str(team_dir / "team.yaml"), cwd=elsewhere)
    assert check.returncode == 0, check.stderr
    assert "OK" in check.stdout
    # a fork rebuilds the team from the stored run: its folder is remembered with the run
    run_id = TraceStore(db).list_runs()[0].id
    fork = _cli(
        "runs",
        "fork",
        run_id,
        "--step",
        "0",
        "--content",
        "done: y",
        "--db",
        str(db),
        cwd=elsewhere,
    )
    assert fork.returncode == 0, fork.stderr
    assert TraceStore(db).count_runs() == 2


def test_a_missing_module_names_the_file_and_the_folders_searched(tmp_path: Path) -> None:
    (tmp_path / "team.yaml").write_text(TEAM_WITH_MODULES)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    db = elsewhere / "runs.db"
    result = _cli("run", str(tmp_path / "team.yaml"), "--task", "x", "--db", str(db), cwd=elsewhere)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    line = lines[0]
    assert str(tmp_path / "team.yaml") in line and "agents[0].function" in line
    assert "no module named 'mytools'" in line and str(tmp_path) in line
    assert not db.exists() or TraceStore(db).count_runs() == 0


def test_the_team_folder_leaves_sys_path_after_the_import(tmp_path: Path) -> None:
    from mascope.graphs import Team

    (tmp_path / "team.yaml").write_text(TEAM_WITH_MODULES.replace("mytools", "mytools_scoped"))
    (tmp_path / "mytools_scoped.py").write_text(MYTOOLS)
    before = list(sys.path)
    try:
        team = Team.from_yaml(tmp_path / "team.yaml", store=tmp_path / "r.db")
        assert sys.path == before
        assert team.run("x").answer == "done: x"
    finally:
        sys.modules.pop("mytools_scoped", None)


def _script(path: Path, replies: list[str]) -> str:
    path.write_text(json.dumps(replies))
    return f"scripted:{path}"


def test_the_graph_example_loops_on_a_failed_review(tmp_path: Path) -> None:
    team = yaml.safe_load((EXAMPLES / "research_graph.yaml").read_text())
    # one script per role, so each reply goes to the role it is written for
    team["agents"][0]["model"] = _script(
        tmp_path / "researcher.json",
        ["- Air molecules scatter short (blue) wavelengths more than long ones."],
    )
    team["agents"][1]["model"] = _script(
        tmp_path / "writer.json",
        [
            "The sky is blue because air scatters sunlight. Also the sea reflects it.",
            "The sky is blue because air molecules scatter blue light more than red light.",
        ],
    )
    team["verifiers"]["review"]["model"] = _script(
        tmp_path / "review.json",
        [
            '{"passed": false, "score": 0.3, "feedback": "the sea claim is not in the facts"}',
            '{"passed": true, "score": 0.9, "feedback": "supported and short"}',
        ],
    )
    path = tmp_path / "research_graph.yaml"
    path.write_text(yaml.safe_dump(team, sort_keys=False))
    db = tmp_path / "g.db"
    result = runner.invoke(
        app, ["run", str(path), "--task", "Why is the sky blue?", "--db", str(db)]
    )
    assert result.exit_code == 0, result.output
    store = TraceStore(db)
    run = store.list_runs()[0]
    assert run.status == "succeeded"
    assert run.final_answer == (
        "The sky is blue because air molecules scatter blue light more than red light."
    )
    steps = [(s.agent, s.kind) for s in store.steps(run.id)]
    assert steps == [
        ("researcher", "message"),
        ("writer", "message"),
        ("review", "verdict"),
        ("writer", "message"),
        ("review", "verdict"),
    ]


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.yaml")))
def test_every_example_is_in_the_readme_and_the_page(name: str) -> None:
    assert f"examples/{name}" in (ROOT / "README.md").read_text()
    assert f"examples/{name}" in team_reference()
