"""`mascope run` and `mascope demo` as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mascope.cli import app
from mascope.traces import TraceStore

from .models.servers import Fault, FaultServer, LlamaServer, ok

runner = CliRunner()
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def script(tmp_path: Path, replies: list[str]) -> str:
    path = tmp_path / "replies.json"
    path.write_text(json.dumps(replies))
    return f"scripted:{path}"


def test_run_streams_steps_and_exits_0_on_success(tmp_path: Path) -> None:
    model = script(
        tmp_path,
        [
            "Step: 24 - 9 - 7 = 8\nANSWER: 8",
            '{"passed": true, "score": 1.0, "feedback": "correct"}',
        ],
    )
    db = tmp_path / "r.db"
    task = "24 muffins, 9 and 7 sold; how many left?"
    result = runner.invoke(
        app,
        [
            "run",
            str(EXAMPLES / "solver_checker.yaml"),
            "--task",
            task,
            "--model",
            model,
            "--expect",
            "8",
            "--db",
            str(db),
        ],
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["0", "solver", "message"]
    assert lines[1].split()[:4] == ["1", "checker", "verdict", "PASSED"]
    assert "outcome: succeeded (verifier_passed)" in result.stdout
    assert "mascope runs show" in result.stdout
    run = TraceStore(db).list_runs()[0]
    assert run.ground_truth == "8" and run.final_answer == "Step: 24 - 9 - 7 = 8\nANSWER: 8"


def test_run_exits_1_when_the_run_fails(tmp_path: Path) -> None:
    # the checker (wrongly) approves a wrong answer: the ground truth catches it
    model = script(
        tmp_path, ["ANSWER: 10", '{"passed": true, "score": 0.9, "feedback": "looks right"}']
    )
    result = runner.invoke(
        app,
        [
            "run",
            str(EXAMPLES / "solver_checker.yaml"),
            "--task",
            "24-9-7?",
            "--model",
            model,
            "--expect",
            "8",
            "--db",
            str(tmp_path / "f.db"),
            "--json",
        ],
    )
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert (data["status"], data["termination_reason"], data["answer"]) == (
        "failed",
        "verifier_passed",
        "ANSWER: 10",
    )


def test_planner_coder_tester_runs_real_tests(tmp_path: Path) -> None:
    code = "```python\ndef is_palindrome(s):\n    t = [c.lower() for c in s if c.isalpha()]\n    return t == t[::-1]\n```"
    tests = "```python\ndef test_simple():\n    assert is_palindrome('Never odd or even')\n\ndef test_not():\n    assert not is_palindrome('abc')\n```"
    model = script(tmp_path, ["1. write is_palindrome", code, tests])
    db = tmp_path / "c.db"
    result = runner.invoke(
        app,
        [
            "run",
            str(EXAMPLES / "planner_coder_tester.yaml"),
            "--task",
            "palindromes",
            "--model",
            model,
            "--db",
            str(db),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    verdict = next(
        s for s in TraceStore(db).steps(json.loads(result.stdout)["run_id"]) if s.kind == "verdict"
    )
    assert (
        verdict.data["evidence"]["passed"] == 2
        and verdict.content == "PASSED (score 1.00): all tests passed"
    )


def test_empty_task_is_a_user_error(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "run",
            str(EXAMPLES / "solver_checker.yaml"),
            "--task",
            " ",
            "--db",
            str(tmp_path / "e.db"),
        ],
    )
    assert result.exit_code == 2 and "task is empty" in result.stderr


@pytest.mark.slow
@pytest.mark.timeout(
    900
)  # the embedded judge's grammar-bound answer takes minutes on a busy machine
def test_demo_end_to_end_on_the_embedded_model(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mascope.cli", "demo", "--db", str(tmp_path / "demo.db")],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "solver" in done.stdout and "checker" in done.stdout and "outcome:" in done.stdout
    with TraceStore(tmp_path / "demo.db") as store:
        tops = [r for r in store.list_runs() if r.parent_run_id is None]
        # it runs the team again (at most 3 times in all) only while the runs succeed
        assert 1 <= len(tops) <= 3 and all(r.ground_truth == "37" for r in tops)
        assert all(r.status == "succeeded" for r in tops[1:])  # list_runs: newest first
        run = tops[0]
        assert run.status in ("succeeded", "failed")
        if run.status == "failed":  # the re-roll search measured where it failed
            assert "S(k)" in done.stdout, done.stdout
            replays = [r for r in store.list_runs() if r.parent_run_id == run.id]
            assert replays and all(
                r.fork_step is not None and (r.intervention or {}).get("kind") == "re-roll"
                for r in replays
            )
            shown = " ".join(done.stdout.split())  # rich wraps at the terminal's width
            assert f"{len(replays)} re-runs" in shown
        steps = store.steps(run.id)
        assert steps[0].agent == "solver" and steps[0].model == "local" and steps[0].output_tokens
        assert any(s.kind == "verdict" and s.agent == "checker" for s in steps)


@pytest.mark.slow
def test_group_chat_example_on_the_embedded_model(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "run",
            str(EXAMPLES / "group_chat.yaml"),
            "--task",
            "Name a bakery that sells only bread.",
            "--db",
            str(tmp_path / "g.db"),
            "--json",
        ],
    )
    assert result.exit_code in (0, 1), result.output
    data = json.loads(result.stdout)
    assert data["termination_reason"] in ("stop_phrase", "max_rounds")
    steps = TraceStore(tmp_path / "g.db").steps(data["run_id"])
    managers = [s for s in steps if s.agent == "manager"]
    assert managers and all(
        s.data["selected"] in ("brainstormer", "critic", "decider")
        for s in managers
        if s.kind == "message"
    )


@pytest.mark.slow
def test_an_example_against_an_openai_compatible_server(
    tmp_path: Path, llama_server: LlamaServer
) -> None:
    model = f"openai:{llama_server.model}@{llama_server.url}"
    db = tmp_path / "o.db"
    result = runner.invoke(
        app,
        [
            "run",
            str(EXAMPLES / "solver_checker.yaml"),
            "--task",
            "What is 2 + 3?",
            "--expect",
            "5",
            "--model",
            model,
            "--db",
            str(db),
            "--json",
        ],
    )
    assert result.exit_code in (0, 1), result.output
    data = json.loads(result.stdout)
    assert data["status"] in ("succeeded", "failed") and data["error"] is None
    steps = TraceStore(db).steps(data["run_id"])
    assert steps[0].model == model and steps[0].output_tokens
    assert any(s.kind == "verdict" and s.model == model for s in steps)


@pytest.mark.slow
def test_the_embedding_example_runs(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "embed.py")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[0] in ("succeeded", "failed")


def test_the_step_stream_keeps_its_columns_apart(tmp_path: Path) -> None:
    team = tmp_path / "tool.yaml"
    team.write_text(
        "name: tooly\ntools: {lookup: 'tests.graphs.helpers:lookup'}\n"
        "agents:\n  - name: a\n    function: tests.graphs.helpers:uses_lookup\n    tools: [lookup]\n"
        "topology: {kind: pipeline, stages: [a]}\n"
    )
    result = runner.invoke(app, ["run", str(team), "--task", "t", "--db", str(tmp_path / "t.db")])
    assert result.exit_code == 0, result.output
    line = next(x for x in result.stdout.splitlines() if "tool_result" in x)
    assert line.split()[:4] == ["1", "a", "tool_result", "Paris"]


@pytest.mark.slow
def test_readme_solver_checker_example_completes_on_the_embedded_model(tmp_path: Path) -> None:
    db = tmp_path / "readme.db"
    task = (
        "A baker made 24 muffins, sold 9 in the morning and 7 in the afternoon. How many are left?"
    )
    result = runner.invoke(
        app,
        ["run", str(EXAMPLES / "solver_checker.yaml"), "--expect", "8", "--task", task, "--db", str(db), "--json"],
    )  # fmt: skip
    assert result.exit_code in (0, 1), result.output
    data = json.loads(result.stdout)
    assert data["status"] in ("succeeded", "failed") and data["error"] is None, data
    steps = TraceStore(db).steps(data["run_id"])
    verdicts = [s for s in steps if s.kind == "verdict" and s.agent == "checker"]
    assert verdicts and all(s.kind != "error" for s in steps)


def test_the_demo_hints_name_the_real_run(tmp_path: Path) -> None:
    from mascope.taxonomy import MAST

    # every answer is a judgement marking every mode: the demo's judge then prints its hint
    marks_all = {
        "summary": "bad",
        "task_completed": False,
        "modes": {
            m: {"present": True, "evidence_steps": [0], "rationale": "step 0"}
            for m in MAST.mode_ids
        },
    }
    model = script(tmp_path, [json.dumps(marks_all)] * 60)
    db = tmp_path / "d.db"
    result = runner.invoke(app, ["demo", "-m", model, "--db", str(db)])
    assert result.exit_code == 0, result.output
    run = next(r for r in TraceStore(db).list_runs() if r.parent_run_id is None)
    shown = " ".join(result.stdout.split())
    assert f"mascope judge {run.id} --db {db} -m openai:gpt-4o-mini" in shown
    assert "RUN_ID" not in shown


def test_run_stream_shows_the_answer_as_it_is_generated_and_json_stays_clean(
    tmp_path: Path,
) -> None:
    answer = "Step: 24 - 9 - 7 = 8, with key sk-abcdefghijklmnopqrstuvwx\nANSWER: 8"
    model = script(tmp_path, [answer, '{"passed": true, "score": 1.0, "feedback": "ok"}'] * 2)
    base = ["run", str(EXAMPLES / "solver_checker.yaml"), "--task", "24-9-7?", "--model", model]

    shown = runner.invoke(app, [*base, "--db", str(tmp_path / "a.db"), "--stream"])
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    # the answer, masked, on its own lines before the solver's step
    assert lines[0].split() == ["solver", ">", "Step:", "24", "-", "9", "-", "7", "=", "8,", "with", "key", "[REDACTED]"]  # fmt: skip
    assert lines[1] == "ANSWER: 8"
    assert lines[2].split()[:3] == ["0", "solver", "message"]
    assert "sk-abc" not in shown.stdout

    as_json = runner.invoke(app, [*base, "--db", str(tmp_path / "b.db"), "--json", "--stream"])
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.stdout)  # nothing but the JSON on stdout
    assert data["status"] == "succeeded"
    assert "solver > Step: 24" in as_json.stderr and "ANSWER: 8" in as_json.stderr


def test_run_does_not_stream_when_not_on_a_terminal(tmp_path: Path) -> None:
    model = script(tmp_path, ["ANSWER: 8", '{"passed": true, "score": 1.0, "feedback": "ok"}'])
    result = runner.invoke(
        app,
        ["run", str(EXAMPLES / "solver_checker.yaml"), "--task", "24-9-7?", "--model", model,
         "--db", str(tmp_path / "c.db")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert " > " not in result.stdout
    assert result.stdout.splitlines()[0].split()[:3] == ["0", "solver", "message"]


def test_run_stream_marks_an_answer_that_starts_again_after_a_retry(tmp_path: Path) -> None:
    answer = "Twenty four take nine take seven leaves eight.\nANSWER: 8"
    verdict = '{"passed": true, "score": 1.0, "feedback": "ok"}'
    with FaultServer([Fault(answer=answer, cut_after=6), ok(answer), ok(verdict)]) as server:
        result = runner.invoke(
            app,
            ["run", str(EXAMPLES / "solver_checker.yaml"), "--task", "24-9-7?", "--model",
             f"openai:fault-model@{server.url}", "--db", str(tmp_path / "r.db"), "--stream"],
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    first = next(i for i, line in enumerate(lines) if "solver > Twenty four" in line)
    assert "solver's answer starts again (attempt 2): retry 1 after connection" in lines[first + 1]
    assert "the text above is void" in lines[first + 1]
    assert lines[first + 2].split()[:4] == ["0", "solver", "retry", "retry"]
    assert lines[first + 3].strip() == "solver > " + answer.splitlines()[0]
