"""Killed runs resume from their last checkpoint; forks re-run from a corrected step."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from mascope.cli import app
from mascope.traces import TraceStore

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()

LETTERS = "abcdefgh"


def eight_stage_team(path: Path) -> Path:
    spec = {
        "name": "eight",
        "agents": [{"name": n, "function": "tests.graphs.helpers:counter"} for n in LETTERS],
        "topology": {"kind": "pipeline", "stages": list(LETTERS)},
    }
    path.write_text(yaml.safe_dump(spec))
    return path


def test_sigkill_then_resume_finishes_without_redoing_or_duplicating(tmp_path: Path) -> None:
    team = eight_stage_team(tmp_path / "team.yaml")
    db, log, paused = tmp_path / "k.db", tmp_path / "calls.log", tmp_path / "paused"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "MASCOPE_TEST_LOG": str(log),
        "MASCOPE_TEST_PAUSE_AT": "5",
        "MASCOPE_TEST_PAUSED": str(paused),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "mascope.cli", "run", str(team), "--task", "count", "--db", str(db)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp_path,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not paused.exists():
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline, "the run never reached the pause"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    with TraceStore(db) as store:
        (run,) = store.list_runs()
        assert run.status == "running"
        assert [s.agent for s in store.steps(run.id)] == list("abcde")

    done = subprocess.run(
        [sys.executable, "-m", "mascope.cli", "runs", "resume", run.id, "--db", str(db), "--json"],
        env=env, capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "succeeded"
    with TraceStore(db) as store:
        steps = store.steps(run.id)
        assert [s.index for s in steps] == list(range(9))
        assert [s.agent for s in steps] == [*"abcde", "runtime", *"fgh"]
        assert steps[5].kind == "event" and "resumed" in steps[5].content
        assert store.get_run(run.id).status == "succeeded"
    calls = [line.split()[0] for line in log.read_text().splitlines()]
    assert calls == [*"abcde", "f", *"fgh"]  # a-e ran once; f was cut off and ran again


def test_resume_refuses_finished_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT))
    team = eight_stage_team(tmp_path / "team.yaml")
    db = tmp_path / "f.db"
    assert runner.invoke(app, ["run", str(team), "--task", "t", "--db", str(db)]).exit_code == 0
    rid = TraceStore(db).list_runs()[0].id
    result = runner.invoke(app, ["runs", "resume", rid, "--db", str(db)])
    assert (
        result.exit_code == 2
        and "already finished (succeeded)" in result.stderr
        and "runs fork" in result.stderr
    )


SOLVER = {
    "name": "fix-me",
    "agents": [{"name": "solver", "function": "tests.graphs.helpers:always_wrong"}],
    "verifiers": {"five": {"kind": "python", "function": "tests.graphs.helpers:is_five"}},
    "topology": {
        "kind": "pipeline",
        "stages": [{"agent": "solver", "verifier": "five", "max_rounds": 1}],
    },
}


def test_fork_with_a_corrected_step_succeeds_where_the_parent_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(ROOT))
    team = tmp_path / "t.yaml"
    team.write_text(yaml.safe_dump(SOLVER))
    db = tmp_path / "fork.db"
    parent = runner.invoke(
        app, ["run", str(team), "--task", "What is 2 + 3?", "--db", str(db), "--json"]
    )
    assert parent.exit_code == 1
    parent_id = json.loads(parent.stdout)["run_id"]
    child = runner.invoke(
        app,
        [
            "runs",
            "fork",
            parent_id,
            "--step",
            "0",
            "--content",
            "ANSWER: 5",
            "--db",
            str(db),
            "--json",
        ],
    )
    assert child.exit_code == 0, child.output
    data = json.loads(child.stdout)
    assert (data["status"], data["parent_run_id"], data["fork_step"]) == ("succeeded", parent_id, 0)
    with TraceStore(db) as store:
        row = store.get_run(data["run_id"])
        assert row.intervention == {
            "step": 0, "agent": "solver", "kind": "message", "node": "stage0.solver", "original": "ANSWER: 6", "replacement": "ANSWER: 5",
        }  # fmt: skip
        steps = store.steps(row.id)
        assert [(s.agent, s.kind, s.content[:9]) for s in steps] == [
            ("solver", "message", "ANSWER: 5"),
            ("five", "verdict", "PASSED (s"),
        ]
        assert steps[0].data["intervention"] is True
        # the parent is untouched
        assert next(s.content for s in store.steps(parent_id)) == "ANSWER: 6"


def test_fork_at_a_verdict_and_then_fork_the_child(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(ROOT))
    team = tmp_path / "t.yaml"
    team.write_text(yaml.safe_dump(SOLVER))
    db = tmp_path / "v.db"
    parent_id = json.loads(
        runner.invoke(app, ["run", str(team), "--task", "2+3", "--db", str(db), "--json"]).stdout
    )["run_id"]
    # the verifier said no; pretend it had said yes
    child = json.loads(
        runner.invoke(
            app,
            [
                "runs",
                "fork",
                parent_id,
                "--step",
                "1",
                "--content",
                "pass",
                "--db",
                str(db),
                "--json",
            ],
        ).stdout
    )
    assert (child["status"], child["termination_reason"]) == ("succeeded", "verifier_passed")
    with TraceStore(db) as store:
        assert [s.kind for s in store.steps(child["run_id"])] == ["message", "verdict"]
    grandchild = runner.invoke(
        app,
        [
            "runs",
            "fork",
            child["run_id"],
            "--step",
            "0",
            "--content",
            "ANSWER: 5",
            "--db",
            str(db),
            "--json",
        ],
    )
    assert grandchild.exit_code == 0, grandchild.output


def test_fork_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, datasets: Path) -> None:
    monkeypatch.syspath_prepend(str(ROOT))
    team = tmp_path / "t.yaml"
    team.write_text(yaml.safe_dump(SOLVER))
    db = tmp_path / "e.db"
    rid = json.loads(
        runner.invoke(app, ["run", str(team), "--task", "2+3", "--db", str(db), "--json"]).stdout
    )["run_id"]
    bad_step = runner.invoke(
        app, ["runs", "fork", rid, "--step", "9", "--content", "x", "--db", str(db)]
    )
    assert bad_step.exit_code == 2 and "has no step 9 (it has steps 0..1)" in bad_step.stderr
    bad_verdict = runner.invoke(
        app, ["runs", "fork", rid, "--step", "1", "--content", "maybe", "--db", str(db)]
    )
    assert bad_verdict.exit_code == 2 and "replacement verdict" in bad_verdict.stderr
    runner.invoke(
        app,
        [
            "runs",
            "import",
            "whowhen",
            str(datasets / "who_and_when" / "Hand-Crafted" / "1.json"),
            "--db",
            str(db),
        ],
    )
    imported = TraceStore(db).list_runs(source="whowhen")[0].id
    result = runner.invoke(
        app, ["runs", "fork", imported, "--step", "0", "--content", "x", "--db", str(db)]
    )
    assert result.exit_code == 2 and "was imported (whowhen)" in result.stderr


def test_a_killed_fan_out_resumes_the_branch_it_was_in(tmp_path: Path) -> None:
    spec = {
        "name": "fan",
        "agents": [{"name": n, "function": "tests.graphs.helpers:counter"} for n in "abcd"],
        "topology": {
            "kind": "graph",
            "start": "a",
            "nodes": [{"name": n, "agent": n} for n in "abcd"],
            "edges": [{"from": x, "to": y} for x, y in ("ab", "ac", "bd", "cd")],
        },
    }
    team = tmp_path / "fan.yaml"
    team.write_text(yaml.safe_dump(spec))
    db, log, paused = tmp_path / "f.db", tmp_path / "calls.log", tmp_path / "paused"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "MASCOPE_TEST_LOG": str(log),
        "MASCOPE_TEST_PAUSE_AT": "2",  # c, the second branch, has seen a and b
        "MASCOPE_TEST_PAUSED": str(paused),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "mascope.cli", "run", str(team), "--task", "count", "--db", str(db)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp_path,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not paused.exists():
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline, "the run never reached the pause"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with TraceStore(db) as store:
        (run,) = store.list_runs()
    done = subprocess.run(
        [sys.executable, "-m", "mascope.cli", "runs", "resume", run.id, "--db", str(db), "--json"],
        env=env, capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    with TraceStore(db) as store:
        steps = store.steps(run.id)
    assert [s.agent for s in steps] == ["a", "b", "runtime", "c", "d"]
    assert [s.index for s in steps] == list(range(5))
    calls = [line.split()[0] for line in log.read_text().splitlines()]
    assert calls == ["a", "b", "c", "c", "d"]  # only the cut-off branch ran again
