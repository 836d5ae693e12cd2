"""`mascope verifiers calibrate` and calibrated strategies, with scripted models whose answers are known."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mascope.cli import app
from mascope.diagnosis._metrics import wilson
from mascope.traces import TraceStore

from ..test_cli import assert_one_line_error

runner = CliRunner()

# Passes "ANSWER: 4" and "ANSWER: 5" exactly: with ground truth 4 it accepts one
# wrong answer (5) and rejects a right one written differently ("The answer is 4").
CHECK = """
def check(candidate, ctx=None):
    return candidate.strip() in ("ANSWER: 4", "ANSWER: 5")
"""

TEAM = """
name: adder
model: scripted:{script}
agents:
  - name: solver
    role: arithmetic solver
    goal: Add the numbers.
verifiers:
  lenient:
    kind: python
    function: lenient:check
topology:
  kind: pipeline
  stages:
    - agent: solver
      verifier: lenient
      max_rounds: 1
{strategy}
"""


def team_file(
    tmp_path: Path, replies: list[str], *, strategy: str = "", name: str = "team.yaml"
) -> Path:
    (tmp_path / "lenient.py").write_text(CHECK)
    # One replies file for every team here: the model string is part of the team a
    # calibration belongs to, so a team and its calibration must name the same one.
    script = tmp_path / "replies.json"
    script.write_text(json.dumps(replies))
    path = tmp_path / name
    path.write_text(TEAM.format(script=script, strategy=strategy))
    return path


def tasks_file(tmp_path: Path, count: int, truth: str = "4", name: str = "tasks.jsonl") -> Path:
    path = tmp_path / name
    path.write_text(
        "".join(
            json.dumps(
                {"id": f"t{i:02d}", "task": f"What is {i} + {4 - i}?", "ground_truth": truth}
            )
            + "\n"
            for i in range(count)
        )
    )
    return path


def calibrate(*args: str) -> object:
    return runner.invoke(app, ["verifiers", "calibrate", *args])


def test_calibration_counts_a_verifier_that_accepts_one_wrong_answer(tmp_path: Path) -> None:
    replies = ["ANSWER: 4", "ANSWER: 5", "ANSWER: 3", "ANSWER: 4", "The answer is 4", "ANSWER: 7"]
    team = team_file(tmp_path, replies)
    tasks = tasks_file(tmp_path, 6)
    db = tmp_path / "cal.db"
    result = calibrate(str(team), "--tasks", str(tasks), "--db", str(db), "--concurrency", "1")
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    out = result.stdout  # type: ignore[attr-defined]
    low, high = wilson(1, 3)
    # FPR: 1 of 3 wrong accepted (5); FNR: 1 of 3 right rejected ("The answer is 4").
    assert f"0.33 [{low:.2f}, {high:.2f}] (1)" in out
    assert "too few labelled candidates to drive a stopping rule" in out
    written = json.loads((tmp_path / "team.calibration.json").read_text())
    lenient = written["verifiers"]["lenient"]
    assert (lenient["candidates"], lenient["right"], lenient["wrong"]) == (6, 3, 3)
    assert (lenient["accepted_wrong"], lenient["rejected_right"]) == (1, 1)
    assert lenient["fpr"] == pytest.approx(1 / 3, abs=1e-6)
    assert lenient["fnr"] == pytest.approx(1 / 3, abs=1e-6)
    assert lenient["fpr_interval"] == pytest.approx([low, high], abs=1e-6)
    assert lenient["base_rate"] == pytest.approx(0.5, abs=1e-6)
    assert (written["team"], written["runs"], written["tasks"]) == ("adder", 6, 6)

    # The same numbers from the stored runs alone, without running anything.
    again = calibrate(str(team), "--from-db", "--db", str(db), "--out", str(tmp_path / "b.json"), "--json")  # fmt: skip
    assert again.exit_code == 0, again.output  # type: ignore[attr-defined]
    from_db = json.loads(again.stdout)["verifiers"]["lenient"]  # type: ignore[attr-defined]
    assert from_db == lenient


def test_candidates_drawn_concurrently_are_each_labelled_against_their_own_verdict(
    tmp_path: Path,
) -> None:
    # best_of_n draws 3 per task; each verdict is paired with its own sample's answer.
    team = team_file(
        tmp_path, ["ANSWER: 3", "ANSWER: 5", "ANSWER: 4"] * 2,
        strategy="      strategy: {kind: best_of_n, n: 3, concurrency: 3}",
    )  # fmt: skip
    tasks = tasks_file(tmp_path, 2)
    result = calibrate(str(team), "--tasks", str(tasks), "--db", str(tmp_path / "c.db"), "--concurrency", "1", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    lenient = json.loads(result.stdout)["verifiers"]["lenient"]  # type: ignore[attr-defined]
    assert (lenient["right"], lenient["wrong"], lenient["accepted_wrong"]) == (2, 4, 2)
    assert lenient["rejected_right"] == 0


def sufficient_calibration(tmp_path: Path) -> Path:
    """A calibration of the adder over 20 tasks: 10 right (all passed), 2 wrong passed, 8 wrong failed."""
    replies = ["ANSWER: 4"] * 10 + ["ANSWER: 5"] * 2 + ["ANSWER: 3"] * 8
    team = team_file(tmp_path, replies, name="calib.yaml")
    tasks = tasks_file(tmp_path, 20, name="calib.jsonl")
    out = tmp_path / "adder.calibration.json"
    result = calibrate(str(team), "--tasks", str(tasks), "--db", str(tmp_path / "calib.db"), "--out", str(out), "--concurrency", "1")  # fmt: skip
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert "too few" not in result.stdout  # type: ignore[attr-defined]
    return out


def test_a_calibrated_best_of_n_draws_the_n_a_hand_computation_gives_and_abstains_when_none_passes(
    tmp_path: Path,
) -> None:
    cal = sufficient_calibration(tmp_path)
    # Every task is either always right (p=1) or always wrong (p=0); FPR 0.2, FNR 0.
    # EU(n) = (1 + (-1) * (1 - 0.8**n)) / 2 at penalty 1: 0.4, 0.32, ... so n = 1.
    strategy = f"      strategy: {{kind: best_of_n, n: 3, penalty: 1.0, calibration: {cal.name}}}"
    team = team_file(tmp_path, ["ANSWER: 4", "ANSWER: 5", "ANSWER: 3", "ANSWER: 3"], strategy=strategy)  # fmt: skip
    tasks = tasks_file(tmp_path, 4)
    db = tmp_path / "eval.db"
    args = ["eval", "run", str(team), "--tasks", str(tasks), "--db", str(db), "--concurrency", "1"]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    # One right, one wrong accepted, two abstained: neither success nor failure.
    assert (report["runs"], report["abstained"], report["answered"], report["succeeded"]) == (4, 2, 2, 1)  # fmt: skip
    assert (report["coverage"], report["risk"], report["success_rate"]) == (0.5, 0.5, 0.5)
    with TraceStore(db) as store:
        runs = store.list_runs(team="adder", limit=10)
        abstained = [r for r in runs if r.status == "abstained"]
        assert len(abstained) == 2
        for run in abstained:
            assert run.termination_reason == "abstained" and run.final_answer is None
            assert "answer_correct" not in run.metadata_
            events = [s.data for s in store.steps(run.id) if s.kind == "event"]
            plan = next(e for e in events if e["event"] == "draw_plan")
            assert plan["n"] == 1 and plan["expected_utility"] == pytest.approx(0.4, abs=1e-4)
            why = next(e for e in events if e["event"] == "abstained")
            assert why["reason"] == "no_candidate_passed"
        assert len(store.all_run_ids(status="abstained", team="adder")) == 2
    table = runner.invoke(app, args)
    assert "coverage" in table.stdout and "risk" in table.stdout and "2 abstained" in table.stdout

    listed = runner.invoke(app, ["runs", "list", "--status", "abstained", "--db", str(db)])
    assert listed.exit_code == 0, listed.output
    assert listed.stdout.count("abstained") >= 2


def test_when_answering_does_not_pay_the_run_abstains_before_drawing(tmp_path: Path) -> None:
    cal = sufficient_calibration(tmp_path)
    # Penalty 6: EU(1) = (1 - 6 * 0.2) / 2 = -0.1, and lower for more draws.
    strategy = f"      strategy: {{kind: best_of_n, n: 3, penalty: 6.0, calibration: {cal.name}}}"
    team = team_file(tmp_path, [], strategy=strategy)  # no reply is ever asked for
    db = tmp_path / "run.db"
    result = runner.invoke(app, ["run", str(team), "--task", "What is 2 + 2?", "--db", str(db)])
    assert result.exit_code == 1, result.output
    assert "abstained" in result.stdout
    with TraceStore(db) as store:
        (run,) = store.list_runs(team="adder", limit=5)
        assert (run.status, run.termination_reason, run.final_answer) == ("abstained", "abstained", None)  # fmt: skip
        (step,) = store.steps(run.id)
        assert step.data["event"] == "abstained" and step.data["reason"] == "negative_utility"
        assert step.data["expected_utility"] == pytest.approx(-0.1)


def test_a_calibration_file_for_another_team_is_refused_before_any_model_loads(
    tmp_path: Path,
) -> None:
    cal = sufficient_calibration(tmp_path)
    other = team_file(tmp_path, [], name="other.yaml")
    other.write_text(other.read_text().replace("name: adder", "name: subtractor"))
    made = calibrate(str(other), "--from-db", "--db", str(tmp_path / "calib.db"), "--out", str(tmp_path / "x.json"))  # fmt: skip
    assert_one_line_error(made, "no verdict of team 'subtractor' could be labelled")
    # Control: without the calibration, the missing model file is what stops the run.
    control = runner.invoke(app, ["run", str(other), "--task", "2 + 2?", "--db", str(tmp_path / "n.db"), "--model", f"local:{tmp_path}/missing.gguf"])  # fmt: skip
    assert_one_line_error(control, "missing.gguf")
    # The adder's calibration named by another team's strategy.
    other.write_text(
        other.read_text()
        + f"      strategy: {{kind: best_of_n, n: 3, penalty: 1.0, calibration: {cal.name}}}\n"
    )
    db = tmp_path / "never.db"
    for cmd in (["run", str(other), "--task", "2 + 2?"], ["eval", "run", str(other), "--tasks", str(tasks_file(tmp_path, 2))]):  # fmt: skip
        result = runner.invoke(
            app, [*cmd, "--db", str(db), "--model", f"local:{tmp_path}/missing.gguf"]
        )
        # The calibration is checked first: the missing model file is never looked for.
        assert_one_line_error(
            result,
            "topology.stages[0].strategy.calibration",
            "was made for team 'adder'",
            "mascope verifiers calibrate",
        )
        assert not db.exists()


def test_a_thin_calibration_reports_its_interval_and_refuses_to_drive_a_stopping_rule(
    tmp_path: Path,
) -> None:
    team = team_file(tmp_path, ["ANSWER: 4", "ANSWER: 5", "ANSWER: 3"])
    made = calibrate(str(team), "--tasks", str(tasks_file(tmp_path, 3)), "--db", str(tmp_path / "c.db"))  # fmt: skip
    assert made.exit_code == 0 and "calibrate on more tasks" in made.stdout  # type: ignore[attr-defined]
    team.write_text(
        team.read_text()
        + "      strategy: {kind: best_of_n, n: 3, penalty: 4.0, calibration: team.calibration.json}\n"
    )
    result = runner.invoke(app, ["run", str(team), "--task", "2 + 2?", "--db", str(tmp_path / "r.db")])  # fmt: skip
    assert_one_line_error(
        result, "too few labelled candidates to drive a stopping rule", "FPR 0.50 [", "calibrate on more tasks"
    )  # fmt: skip
    assert not (tmp_path / "r.db").exists()
    checked = runner.invoke(app, ["team", "check", str(team)])
    assert_one_line_error(checked, "too few labelled candidates")


def test_bad_calibrate_input_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    team = team_file(tmp_path, ["ANSWER: 4"])
    tasks = tasks_file(tmp_path, 1)
    db = tmp_path / "c.db"
    out = tmp_path / "team.calibration.json"
    both = calibrate(str(team), "--tasks", str(tasks), "--from-db", "--db", str(db))
    assert_one_line_error(both, "give --tasks to run the team, or --from-db")
    no_truth = tmp_path / "nt.jsonl"
    no_truth.write_text('{"task": "2 + 2?"}\n')
    assert_one_line_error(
        calibrate(str(team), "--tasks", str(no_truth), "--db", str(db)), "no task in the task file has a ground truth"
    )  # fmt: skip
    plain = tmp_path / "plain.yaml"
    plain.write_text("name: p\nagents: [{name: a, role: r, goal: g}]\ntopology: {kind: pipeline, stages: [a]}\n")  # fmt: skip
    assert_one_line_error(
        calibrate(str(plain), "--tasks", str(tasks), "--db", str(db)),
        "has no verifiers to calibrate",
    )
    notes = tmp_path / "notes.txt"
    notes.write_text("keep me")
    clobber = calibrate(str(team), "--tasks", str(tasks), "--db", str(db), "--out", str(notes))
    assert_one_line_error(clobber, "exists and is not a calibration file")
    assert notes.read_text() == "keep me"
    nowhere = calibrate(str(team), "--tasks", str(tasks), "--db", str(db), "--out", str(tmp_path / "no" / "c.json"))  # fmt: skip
    assert_one_line_error(nowhere, "does not exist")
    assert not db.exists() and not out.exists()
    missing = calibrate(str(team), "--from-db", "--db", str(tmp_path / "none.db"))
    assert missing.exit_code == 2  # type: ignore[attr-defined]


def test_a_calibration_measured_with_another_model_is_refused(tmp_path: Path) -> None:
    cal = sufficient_calibration(tmp_path)
    strategy = f"      strategy: {{kind: best_of_n, n: 3, penalty: 1.0, calibration: {cal.name}}}"
    team = team_file(tmp_path, ["ANSWER: 4"], strategy=strategy)
    other = tmp_path / "other.json"
    other.write_text(json.dumps(["ANSWER: 4"]))
    result = runner.invoke(app, ["run", str(team), "--task", "2 + 2?", "--db", str(tmp_path / "r.db"), "--model", f"scripted:{other}"])  # fmt: skip
    assert_one_line_error(
        result,
        "measured the verifiers with the team's own models",
        "calibrate with the same --model",
    )
    assert not (tmp_path / "r.db").exists()


def test_a_calibrated_best_of_majority_votes_among_the_passing_and_abstains_when_none_passes(
    tmp_path: Path,
) -> None:
    from mascope.agents import Calibration, VerifierRates
    from mascope.graphs import calibration_digest, load_team_file

    team = team_file(tmp_path, ["ANSWER: 4", "ANSWER: 5", "ANSWER: 4"])
    rates = VerifierRates(
        candidates=40, right=20, wrong=20, accepted_wrong=4, rejected_right=0,
        fpr=0.2, fpr_interval=(0.08, 0.42), fnr=0.0, fnr_interval=(0.0, 0.16),
        base_rate=0.5, base_rate_interval=(0.35, 0.65), task_rates=[0.5],
    )  # fmt: skip
    Calibration(
        team="adder", team_digest=calibration_digest(load_team_file(team)), created_at="now",
        runs=40, tasks=1, verifiers={"lenient": rates},
    ).write(tmp_path / "hand.json")  # fmt: skip
    # p = 0.5, FPR 0.2, FNR 0, penalty 0.1: each stop gains 0.5 - 0.1 * 0.5 * 0.2 = 0.49 and a
    # draw fails with q = 1 - 0.5 - 0.1 = 0.4, so EU(n) = 0.49 * (1 + 0.4 + ...) grows: n = 3.
    strategy = "      strategy: {kind: best_of_majority, n: 3, concurrency: 1, penalty: 0.1, calibration: hand.json}"
    team.write_text(team.read_text() + strategy + "\n")
    db = tmp_path / "maj.db"
    voted = runner.invoke(app, ["run", str(team), "--task", "2 + 2?", "--db", str(db), "--expect", "4"])  # fmt: skip
    assert voted.exit_code == 0, voted.output
    (tmp_path / "replies.json").write_text(json.dumps(["ANSWER: 3"] * 3))  # each run reads it anew
    none = runner.invoke(app, ["run", str(team), "--task", "2 + 2?", "--db", str(db), "--expect", "4"])  # fmt: skip
    assert none.exit_code == 1, none.output
    with TraceStore(db) as store:
        first, second = sorted(store.list_runs(team="adder", limit=5), key=lambda r: r.id)
        assert (first.status, first.final_answer) == ("succeeded", "ANSWER: 4")
        assert (second.status, second.termination_reason) == ("abstained", "abstained")
        for run in (first, second):
            plan = next(s.data for s in store.steps(run.id) if s.data.get("event") == "draw_plan")
            assert plan["n"] == 3
            assert plan["expected_utility"] == pytest.approx(0.49 * 1.56)
        why = next(s.data for s in store.steps(second.id) if s.data.get("event") == "abstained")
        assert why["reason"] == "no_candidate_passed"


def test_from_python_an_abstained_run_is_neither_a_success_nor_a_failure(tmp_path: Path) -> None:
    from mascope.graphs import Team

    cal = sufficient_calibration(tmp_path)
    strategy = f"      strategy: {{kind: best_of_n, n: 3, penalty: 1.0, calibration: {cal.name}}}"
    team = Team.from_yaml(team_file(tmp_path, ["ANSWER: 3"], strategy=strategy), store=tmp_path / "py.db")  # fmt: skip
    result = team.run("What is 2 + 2?", ground_truth="4")
    assert result.abstained and not result.succeeded
    assert (result.answer, result.termination_reason) == (None, "abstained")
