"""`mascope eval run`: a team over a task file, with scripted models; bad task files; a killed eval resumes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mascope.cli import app
from mascope.diagnosis._metrics import wilson
from mascope.evals import load_tasks
from mascope.jobs import JobQueue
from mascope.traces import TraceStore

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]

SCRIPTED_TEAM = """
name: adder
model: scripted:{script}
agents:
  - name: solver
    role: arithmetic solver
    goal: Add the numbers.
topology:
  kind: pipeline
  stages: [solver]
"""

SLOW_TEAM = """
name: slow-adder
agents:
  - name: solver
    function: slowmath:solve
topology:
  kind: pipeline
  stages: [solver]
"""

SLOWMATH = """
import asyncio


async def solve(ctx):
    await asyncio.sleep(0.4)
    return "ANSWER: 4"
"""


def write_tasks(path: Path, truths: list[str]) -> Path:
    lines = [
        json.dumps({"id": f"t{i:02d}", "task": f"What is {t} minus nothing?", "ground_truth": t})
        for i, t in enumerate(truths)
    ]
    path.write_text("".join(line + "\n" for line in lines))
    return path


def scripted_team(tmp_path: Path, replies: int) -> Path:
    script = tmp_path / "replies.json"
    script.write_text(json.dumps(["ANSWER: 4"] * replies))
    team = tmp_path / "team.yaml"
    team.write_text(SCRIPTED_TEAM.format(script=script))
    return team


def test_eval_run_records_every_task_and_reports_the_success_rate_with_its_interval(
    tmp_path: Path,
) -> None:
    team = scripted_team(tmp_path, 10)
    tasks = write_tasks(
        tmp_path / "tasks.jsonl", ["4", "5", "4", "4", "7", "4", "9", "4", "1", "2"]
    )
    db = tmp_path / "eval.db"
    args = ["eval", "run", str(team), "--tasks", str(tasks), "--db", str(db), "--concurrency", "3"]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["tasks"], report["runs"], report["succeeded"], report["ran_now"]) == (
        10,
        10,
        5,
        10,
    )
    assert report["interval"] == [round(x, 4) for x in wilson(5, 10)]
    assert report["input_tokens"] > 0 and report["output_tokens"] > 0 and report["cost_usd"] == 0.0
    with TraceStore(db) as store:
        runs = store.list_runs(team="adder", limit=100)
        assert len(runs) == 10
        assert sorted(r.ground_truth or "" for r in runs) == sorted(
            ["4", "5", "4", "4", "7", "4", "9", "4", "1", "2"]
        )
        assert sum(r.status == "succeeded" for r in runs) == 5
        assert {r.metadata_["eval"]["task_id"] for r in runs} == {f"t{i:02d}" for i in range(10)}
    # The same command again runs nothing: every task has its run.
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert "0 run now" in again.stdout and "10 task(s) already run" in again.stdout
    assert "0.50 [0.24, 0.76]" in again.stdout


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"task": "x", "ground_truth": "1"', "line 3: not valid JSON"),
        ('["x"]', "line 3: expected a JSON object, got a list"),
        ('{"ground_truth": "1"}', 'line 3: no "task" field'),
        ('{"task": "x", "ground_truht": "1"}', "line 3: unknown field 'ground_truht' (did you mean 'ground_truth'?)"),
        ('{"task": "", "ground_truth": "1"}', 'line 3: "task" must be a non-empty string'),
        ('{"task": "x", "ground_truth": [1]}', 'line 3: "ground_truth" must be a string or a number, not a list'),
        ('{"task": "x", "expect": "1", "ground_truth": "1"}', "line 3: both 'ground_truth' and 'expect'"),
        ('{"id": "a", "task": "x"}', "line 3: id 'a' repeats the id of line 1"),
    ],
)  # fmt: skip
def test_a_malformed_task_line_is_named_and_nothing_runs(
    tmp_path: Path, line: str, message: str
) -> None:
    team = scripted_team(tmp_path, 5)
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(f'{{"id": "a", "task": "2 + 2", "expect": 4}}\n\n{line}\n')
    db = tmp_path / "eval.db"
    result = runner.invoke(app, ["eval", "run", str(team), "--tasks", str(tasks), "--db", str(db)])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and f"{tasks} {message}" in lines[0]
    assert "Traceback" not in result.output
    assert not db.exists()  # nothing created


def test_a_deeply_nested_task_line_is_refused_in_one_line(tmp_path: Path) -> None:
    team = scripted_team(tmp_path, 1)
    tasks = tmp_path / "tasks.jsonl"
    deep = "[" * 100_000 + "]" * 100_000  # past Python's recursion limit in json.loads
    tasks.write_text(f'{{"task": "2 + 2"}}\n{{"task": "x", "metadata": {{"a": {deep}}}}}\n')
    db = tmp_path / "eval.db"
    result = runner.invoke(app, ["eval", "run", str(team), "--tasks", str(tasks), "--db", str(db)])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"{tasks} line 2: nests too deeply" in lines[0]
    assert not db.exists()


def test_an_empty_task_file_and_a_missing_one_are_refused(tmp_path: Path) -> None:
    team = scripted_team(tmp_path, 1)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    for path, message in ((empty, "holds no tasks"), (tmp_path / "nope.jsonl", "does not exist")):
        result = runner.invoke(app, ["eval", "run", str(team), "--tasks", str(path), "--db", str(tmp_path / "x.db")])  # fmt: skip
        assert result.exit_code == 2 and message in result.stderr, result.output
    assert not (tmp_path / "x.db").exists()


def test_tasks_accept_the_usual_field_names(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{"input": "a", "target": 3}\n{"task": "b", "expect": "x", "id": 7}\n')
    first, second = load_tasks(path)
    assert (first.key, first.task, first.ground_truth) == ("line-000001", "a", "3")
    assert (second.key, second.ground_truth) == ("7", "x")


def test_a_killed_eval_resumes_without_running_finished_tasks_again(tmp_path: Path) -> None:
    (tmp_path / "slowmath.py").write_text(SLOWMATH)
    team = tmp_path / "team.yaml"
    team.write_text(SLOW_TEAM)
    tasks = write_tasks(tmp_path / "tasks.jsonl", ["4", "5"] * 6)
    db = tmp_path / "eval.db"
    cmd = [sys.executable, "-m", "mascope.cli", "eval", "run", str(team), "--tasks", str(tasks),
           "--db", str(db), "--concurrency", "2", "--json"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    first = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    done_before: dict[str, str] = {}
    while len(done_before) < 4:
        assert first.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
        if db.exists():
            with TraceStore(db) as store:
                states = next(iter([JobQueue(store).states(j) for j in _eval_jobs(store)]), {})
                done_before = {k: s.result["run_id"] for k, s in states.items() if s.result}
    first.send_signal(signal.SIGKILL)
    first.wait()
    with TraceStore(db) as store:
        (job,) = _eval_jobs(store)
        done_before = {k: s.result["run_id"] for k, s in JobQueue(store).states(job).items() if s.result}  # fmt: skip
    second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    report = json.loads(second.stdout)
    assert report["runs"] == 12 and report["succeeded"] == 6
    assert report["ran_now"] == 12 - len(done_before)  # finished tasks were not run again
    with TraceStore(db) as store:
        states = JobQueue(store).states(job)
        assert all(states[k].result["run_id"] == rid for k, rid in done_before.items())  # type: ignore[index]
        finished = [r for r in store.list_runs(limit=100) if r.status in ("succeeded", "failed")]
        assert len(finished) == 12  # one finished run per task; the killed ones are interrupted
        assert all(
            r.status == "interrupted" for r in store.list_runs(limit=100) if r not in finished
        )


def _eval_jobs(store: TraceStore) -> list[str]:
    from sqlalchemy import select

    from mascope.traces import Job

    with store.engine.read.connect() as conn:
        return [
            j for j in conn.execute(select(Job.__table__.c.id)).scalars() if j.startswith("eval-")
        ]  # type: ignore[attr-defined]


FLAKY = """
from pathlib import Path

from mascope.errors import ConfigError


def solve(ctx):
    if Path(__file__).with_name("broken").exists():
        raise ConfigError("the calculator is down")
    return "ANSWER: 4"
"""


def test_tasks_that_could_not_run_are_named_and_tried_again_by_the_next_eval(
    tmp_path: Path,
) -> None:
    (tmp_path / "flaky.py").write_text(FLAKY)
    (tmp_path / "broken").write_text("")
    team = tmp_path / "team.yaml"
    team.write_text(SLOW_TEAM.replace("slow-adder", "flaky").replace("slowmath", "flaky"))
    tasks = write_tasks(tmp_path / "tasks.jsonl", ["4", "5", "4"])
    args = ["eval", "run", str(team), "--tasks", str(tasks), "--db", str(tmp_path / "e.db"), "--json"]  # fmt: skip
    first = runner.invoke(app, args)
    assert first.exit_code == 1, first.output
    report = json.loads(first.stdout)
    assert report["runs"] == 0 and report["not_run"] == dict.fromkeys(["t00", "t01", "t02"], "the calculator is down")  # fmt: skip
    (tmp_path / "broken").unlink()
    second = runner.invoke(app, args)
    assert second.exit_code == 0, second.output
    report = json.loads(second.stdout)
    assert (report["runs"], report["succeeded"], report["not_run"]) == (3, 2, {})


def test_runs_that_pause_for_a_person_are_not_answered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(ROOT))
    team = tmp_path / "ask.yaml"
    team.write_text(
        "name: asker\n"
        "agents: [{name: clerk, function: 'tests.graphs.helpers:asks_for_a_name'}]\n"
        "topology: {kind: pipeline, stages: [clerk]}\n"
    )
    tasks = write_tasks(tmp_path / "tasks.jsonl", ["4", "5"])
    db = tmp_path / "eval.db"
    args = ["eval", "run", str(team), "--tasks", str(tasks), "--db", str(db), "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["runs"], report["paused"], report["answered"], report["succeeded"]) == (
        2,
        2,
        0,
        0,
    )
    assert report["statuses"] == {"paused": 2} and report["success_rate"] is None
