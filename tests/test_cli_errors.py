"""Every CLI mistake is one line and a documented exit code; --db takes URLs; nothing half-written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from mascope.cli import app
from mascope.traces import TraceStore

from .graphs.test_spec import GOOD
from .test_cli import assert_one_line_error

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A store with three runs."""
    path = tmp_path / "s.db"
    with TraceStore(path) as store:
        for i in range(3):
            rid = store.start_run(team="t", task=f"task {i}")
            store.append_step(rid, agent="a", content="hi")
            store.finish_run(rid, status="failed")
    return path


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["runs", "list", "--limit", "-1"], ["--limit", "at least 1", "runs list --help"]),
        (["runs", "list", "--limit", "99999999999999999999"], ["--limit"]),
        (["runs", "list", "--limit", "many"], ["--limit", "many"]),
        (["runs", "show", "X", "--offset", "99999999999999999999"], ["--offset"]),
        (["runs", "fork", "X", "--step", "-1", "-c", "y"], ["--step", "at least 0"]),
        (["runs", "fork", "X", "-c", "y"], ["--step"]),
        (["runs", "list", "--nope"], ["--nope"]),
        (["runs", "lst"], ["lst"]),
        (["nope"], ["nope"]),
        (["run"], ["TEAM.yaml"]),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(
    args: list[str], needles: list[str], db: Path
) -> None:
    before = db.read_bytes()
    result = runner.invoke(app, [*args, "--db", str(db)] if args[0] == "runs" else args)
    assert_one_line_error(result, *needles)
    assert "╭" not in result.output and "Usage:" not in result.output
    assert db.read_bytes() == before


def test_before_must_name_a_run(db: Path) -> None:
    assert_one_line_error(
        runner.invoke(app, ["runs", "list", "--before", "garbage", "--db", str(db)]),
        "no run 'garbage'",
    )
    with TraceStore(db) as store:
        newest = store.list_runs(limit=1)[0].id
    ok = runner.invoke(app, ["runs", "list", "--before", newest, "--db", str(db), "--json"])
    assert ok.exit_code == 0 and json.loads(ok.stdout)["runs"][0]["id"] < newest


def test_db_takes_urls_like_mascope_db(db: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{db.resolve()}"  # sqlite:////abs/path: four slashes
    assert url.startswith("sqlite:////")
    listed = runner.invoke(app, ["runs", "list", "--db", url, "--json"])
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.stdout)["total"] == 3
    out = tmp_path / "e.jsonl"
    exported = runner.invoke(app, ["runs", "export", "--all", "--db", url, "--out", str(out)])
    assert exported.exit_code == 0 and len(out.read_text().splitlines()) == 3
    result = runner.invoke(app, ["runs", "list", "--db", "postgresql://127.0.0.1:1/nothing"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "postgresql://127.0.0.1:1/nothing" in result.stderr  # the URL as given, not mangled


def test_export_to_an_unwritable_place_is_one_line(db: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert_one_line_error(
        runner.invoke(
            app, ["runs", "export", "--all", "--db", str(db), "--out", str(blocker / "o.jsonl")]
        ),
        "cannot write",
    )
    assert_one_line_error(
        runner.invoke(app, ["runs", "export", "--all", "--db", str(db), "--out", str(tmp_path)]),
        "is a folder",
    )


@pytest.mark.parametrize(
    ("agent", "needle"),
    [
        ({"name": "a", "function": "no_such_module_xyz:f"}, "no_such_module_xyz"),
        ({"name": "a", "model": "openai:gpt@not a url"}, "not an http(s) URL"),
        ({"name": "a", "model": "nobackend:x"}, "nobackend"),
    ],
)
def test_a_run_that_cannot_start_leaves_no_files(tmp_path: Path, agent: dict, needle: str) -> None:
    team = dict(GOOD, agents=[agent, {"name": "b", "role": "checker"}], model="scripted:none.yaml")
    team["topology"] = {"kind": "pipeline", "stages": ["a", "b"]}
    team.pop("verifiers")
    path = tmp_path / "team.yaml"
    path.write_text(yaml.safe_dump(team))
    result = runner.invoke(app, ["run", str(path), "--task", "x", "--db", str(tmp_path / "r.db")])
    assert_one_line_error(result, needle)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["team.yaml"]


def test_tool_module_missing_leaves_no_files(tmp_path: Path) -> None:
    team = dict(GOOD, tools={"t": "no_such_tools_mod:fn"})
    path = tmp_path / "team.yaml"
    path.write_text(yaml.safe_dump(team))
    result = runner.invoke(app, ["run", str(path), "--task", "x", "--db", str(tmp_path / "r.db")])
    assert_one_line_error(result, "no_such_tools_mod")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["team.yaml"]


def test_an_internal_error_is_one_line_with_exit_3(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A bug cannot be provoked through input once the inputs are checked, so plant one.
    def broken(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("planted bug")

    monkeypatch.setattr(TraceStore, "page_runs", broken)
    result = runner.invoke(app, ["runs", "list", "--db", str(db)])
    assert result.exit_code == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert "ZeroDivisionError: planted bug" in lines[0] and "MASCOPE_DEBUG=1" in lines[0]
    monkeypatch.setenv("MASCOPE_DEBUG", "1")
    debug = runner.invoke(app, ["runs", "list", "--db", str(db)])
    assert debug.exit_code == 3 and "Traceback" in debug.stderr


def test_help_documents_the_exit_codes() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "Exit codes: 0 ok; 1 the run or task failed; 2 bad input" in text
    assert "3 mascope itself failed" in text
    readme = (ROOT / "README.md").read_text()
    assert "### Exit codes" in readme and "MASCOPE_DEBUG=1" in readme


def test_real_process_usage_error_is_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mascope.cli",
            "runs",
            "list",
            "--limit",
            "-1",
            "--db",
            str(tmp_path / "n.db"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: "), done.stderr
    assert list(tmp_path.iterdir()) == []


_TEAM_WITH_SCHEMA = """
name: t
agents:
  - name: a
    role: r
{agent_extra}
{verifiers}
topology:
  kind: pipeline
  stages:
    - agent: a
{stage_extra}
"""


@pytest.mark.parametrize(
    "ref", ["#/$defs/Missing", "#/definitions/X", "https://example.com/schema.json"]
)
@pytest.mark.parametrize("where", ["verifier", "output_schema"])
def test_a_schema_ref_that_points_nowhere_is_refused_before_the_run(
    tmp_path: Path, ref: str, where: str
) -> None:
    schema = json.dumps({"type": "object", "properties": {"x": {"$ref": ref}}})
    team = tmp_path / "team.yaml"
    if where == "verifier":
        text = _TEAM_WITH_SCHEMA.format(
            agent_extra="",
            verifiers=f"verifiers:\n  v:\n    kind: json_schema\n    schema: {schema}",
            stage_extra="      verifier: v",
        )
    else:
        text = _TEAM_WITH_SCHEMA.format(
            agent_extra=f"    output_schema: {schema}", verifiers="", stage_extra=""
        )
    team.write_text(text)
    replies = tmp_path / "r.json"
    replies.write_text(json.dumps(['{"x": 1}']))
    for args in (["team", "check", str(team)],
                 ["run", str(team), "--task", "x", "-m", f"scripted:{replies}",
                  "--db", str(tmp_path / "s.db")]):  # fmt: skip
        result = runner.invoke(app, args)
        assert_one_line_error(result, ref)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json", "team.yaml"]


def test_chat_schema_with_a_dangling_ref_is_a_user_error(tmp_path: Path) -> None:
    schema = tmp_path / "s.json"
    schema.write_text(json.dumps({"$ref": "#/nope"}))
    replies = tmp_path / "r.json"
    replies.write_text(json.dumps(['{"x": 1}']))
    result = runner.invoke(
        app, ["chat", "hi", "--schema", str(schema), "-m", f"scripted:{replies}"]
    )
    assert_one_line_error(result, "#/nope")


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_run_refuses_an_in_memory_store_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.chdir(tmp_path)
    replies = tmp_path / "r.json"
    replies.write_text(json.dumps(["ANSWER: 8", '{"passed": true, "score": 1.0}']))
    team = ROOT / "examples" / "solver_checker.yaml"
    result = runner.invoke(
        app, ["run", str(team), "--task", "x", "-m", f"scripted:{replies}", "--db", url]
    )
    assert_one_line_error(result, "in-memory", "file path")
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]
