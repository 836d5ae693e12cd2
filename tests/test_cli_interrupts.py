"""`mascope run` on a team that pauses for a person, and `mascope runs resume --input`."""

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

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()

TEAM = {
    "name": "approval",
    "agents": [
        {"name": "writer", "function": "tests.graphs.helpers:echo_task"},
        {"name": "editor", "function": "tests.graphs.helpers:repeats_human"},
    ],
    "topology": {
        "kind": "pipeline",
        "stages": [
            {"agent": "writer", "interrupt": "after", "prompt": "Approve the draft?"},
            "editor",
        ],
    },
}


@pytest.fixture
def team_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(ROOT))
    path = tmp_path / "approval.yaml"
    path.write_text(yaml.safe_dump(TEAM, sort_keys=False))
    return path


def test_run_prints_the_question_and_how_to_continue_then_resume_finishes(
    team_file: Path, tmp_path: Path
) -> None:
    db = str(tmp_path / "p.db")
    paused = runner.invoke(app, ["run", str(team_file), "--task", "a poem", "--db", db])
    assert paused.exit_code == 4, paused.output
    (run,) = TraceStore(db).list_runs()
    assert run.status == "paused" and run.termination_reason == "paused"
    assert "paused for a person's input:" in paused.stdout
    # The pause shows as it happens, as a question, not as one more runtime event.
    (live,) = [line for line in paused.stdout.splitlines() if line.startswith("   1 ")]
    assert "paused" in live and "waiting for a person: Approve the draft?" in live
    assert "Approve the draft?" in paused.stdout
    assert f"continue: mascope runs resume {run.id} --db {db} --input TEXT" in paused.stdout

    listed = runner.invoke(app, ["runs", "list", "--status", "paused", "--db", db])
    assert listed.exit_code == 0 and run.id in listed.stdout

    done = runner.invoke(
        app, ["runs", "resume", run.id, "--input", "approved", "--db", db, "--json"]
    )
    assert done.exit_code == 0, done.output
    data = json.loads(done.stdout)
    assert (data["status"], data["prompt"]) == ("succeeded", None)
    assert data["answer"] == "editor heard 'approved'; last human: approved"
    with TraceStore(db) as store:
        assert [(s.agent, s.kind) for s in store.steps(run.id)] == [
            ("writer", "message"), ("runtime", "event"), ("human", "message"), ("editor", "message"),
        ]  # fmt: skip


def test_run_json_says_paused_with_the_prompt(team_file: Path, tmp_path: Path) -> None:
    db = str(tmp_path / "j.db")
    result = runner.invoke(app, ["run", str(team_file), "--task", "t", "--db", db, "--json"])
    assert result.exit_code == 4
    data = json.loads(result.stdout)
    assert (data["status"], data["prompt"], data["answer"]) == (
        "paused",
        "Approve the draft?",
        None,
    )


def test_bad_resumes_exit_2_on_one_line_and_write_nothing(team_file: Path, tmp_path: Path) -> None:
    db = str(tmp_path / "b.db")
    assert runner.invoke(app, ["run", str(team_file), "--task", "t", "--db", db]).exit_code == 4
    plain = tmp_path / "plain.yaml"
    plain.write_text(
        yaml.safe_dump({**TEAM, "topology": {"kind": "pipeline", "stages": ["writer"]}})
    )
    assert runner.invoke(app, ["run", str(plain), "--task", "t", "--db", db]).exit_code == 0
    with TraceStore(db) as store:
        paused, finished = sorted(store.list_runs(), key=lambda r: r.status)
        assert (paused.status, finished.status) == ("paused", "succeeded")
        before = [
            (r.id, r.status, r.step_count, store.count_steps(r.id)) for r in store.list_runs()
        ]

    cases = {
        "without input": (["runs", "resume", paused.id], "--input TEXT"),
        "empty input": (["runs", "resume", paused.id, "--input", " "], "--input is empty"),
        "input for a finished run": (
            ["runs", "resume", finished.id, "--input", "hi"], "not paused, so it takes no --input",
        ),
        "unknown run": (["runs", "resume", "01ZZZZZZZZ", "--input", "hi"], "no run"),
    }  # fmt: skip
    for name, (args, says) in cases.items():
        result = runner.invoke(app, [*args, "--db", db])
        assert result.exit_code == 2, (name, result.output)
        assert says in result.stderr, (name, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, (name, result.stderr)
        assert "Traceback" not in result.output

    # Measuring where a paused run failed makes no sense yet: it has not ended.
    reroll = runner.invoke(app, ["attribute", paused.id, "--method", "reroll", "--db", db])
    assert reroll.exit_code == 2 and "is paused for a person's input" in reroll.stderr

    with TraceStore(db) as store:
        after = [(r.id, r.status, r.step_count, store.count_steps(r.id)) for r in store.list_runs()]
    assert after == before


def test_a_real_process_pauses_and_another_continues_it(team_file: Path, tmp_path: Path) -> None:
    db = str(tmp_path / "s.db")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cli = [sys.executable, "-m", "mascope.cli"]
    first = subprocess.run(
        [*cli, "run", str(team_file), "--task", "t", "--db", db, "--json"],
        env=env, capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert first.returncode == 4, first.stderr
    rid = json.loads(first.stdout)["run_id"]
    second = subprocess.run(
        [*cli, "runs", "resume", rid, "--input", "go", "--db", db, "--json"],
        env=env, capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["answer"] == "editor heard 'go'; last human: go"


def test_a_failed_check_asks_a_person_who_can_accept_the_answer(
    team_file: Path, tmp_path: Path
) -> None:
    path = tmp_path / "check.yaml"
    path.write_text(
        yaml.safe_dump({
            "name": "checked",
            "agents": [{"name": "solver", "function": "tests.graphs.helpers:always_wrong"}],
            "verifiers": {
                "five": {
                    "kind": "python", "function": "tests.graphs.helpers:is_five",
                    "ask_human_on_fail": True, "prompt": "Failed ({feedback}); accept?",
                },
            },
            "topology": {"kind": "pipeline", "stages": [{"agent": "solver", "verifier": "five", "max_rounds": 2}]},
        })
    )  # fmt: skip
    db = str(tmp_path / "c.db")
    first = runner.invoke(app, ["run", str(path), "--task", "2 + 3?", "--db", db, "--json"])
    assert first.exit_code == 4, first.output
    data = json.loads(first.stdout)
    assert (
        data["prompt"] == "Failed (2 + 3 is not 6; recount); accept?\n\nAnswer checked:\nANSWER: 6"
    )
    rid = data["run_id"]
    bare = runner.invoke(app, ["runs", "resume", rid, "--db", db])  # a question of three lines
    assert bare.exit_code == 2 and len(bare.stderr.strip().splitlines()) == 1, bare.stderr
    assert (
        "(the question: Failed (2 + 3 is not 6; recount); accept? Answer checked: ANSWER: 6)"
        in bare.stderr
    )
    # A bare no keeps the check's reason as the feedback: the solver tries again, fails again.
    again = runner.invoke(app, ["runs", "resume", rid, "--input", "no", "--db", db, "--json"])
    assert again.exit_code == 4, again.output
    done = runner.invoke(app, ["runs", "resume", rid, "--input", "pass", "--db", db, "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["answer"] == "ANSWER: 6"
    with TraceStore(db) as store:
        verdicts = [s for s in store.steps(rid) if s.kind == "verdict"]
        assert [v.content for v in verdicts] == [
            "FAILED (score 0.00): 2 + 3 is not 6; recount",
            "PASSED (score 1.00)",
        ]
        assert verdicts[1].data["evidence"]["verifier_verdict"]["passed"] is False
        assert store.get_run(rid).spec["verifiers"]["five"]["ask_human_on_fail"] is True


def test_a_run_paused_on_postgres_is_continued_by_another_process(
    team_file: Path, tmp_path: Path, postgres_url: str
) -> None:
    paused = runner.invoke(
        app, ["run", str(team_file), "--task", "t", "--db", postgres_url, "--json"]
    )
    assert paused.exit_code == 4, paused.output
    rid = json.loads(paused.stdout)["run_id"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "mascope.cli", "runs", "resume", rid, "--input", "ok", "--db", postgres_url, "--json"],
        env=env, capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["answer"] == "editor heard 'ok'; last human: ok"
    with TraceStore(postgres_url) as store:
        assert [s.agent for s in store.steps(rid)] == ["writer", "runtime", "human", "editor"]


def test_resume_streams_the_answers_after_the_pause(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(ROOT))
    replies = tmp_path / "replies.json"
    replies.write_text(json.dumps(["The editor approves the poem as it stands."]))
    team = {
        "name": "streamed",
        "agents": [
            {"name": "writer", "function": "tests.graphs.helpers:echo_task"},
            {"name": "editor", "role": "Edit the draft."},
        ],
        "topology": {
            "kind": "pipeline",
            "stages": [{"agent": "writer", "interrupt": "after"}, "editor"],
        },
    }
    path = tmp_path / "streamed.yaml"
    path.write_text(yaml.safe_dump(team, sort_keys=False))
    db = str(tmp_path / "s.db")
    model = f"scripted:{replies}"
    paused = runner.invoke(app, ["run", str(path), "-t", "a poem", "--db", db, "--model", model])
    assert paused.exit_code == 4, paused.output
    (run,) = TraceStore(db).list_runs()
    args = ["runs", "resume", run.id, "--input", "go on", "--db", db, "--model", model]

    done = runner.invoke(app, [*args, "--stream"])
    assert done.exit_code == 0, done.output
    lines = done.stdout.splitlines()
    # the editor's answer as it is generated, then its step
    streamed = next(i for i, line in enumerate(lines) if line.split()[:2] == ["editor", ">"])
    assert " ".join(lines[streamed].split()[2:]) == "The editor approves the poem as it stands."
    assert lines[streamed + 1].split()[1:3] == ["editor", "message"]
