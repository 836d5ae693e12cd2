"""Scoring a run's final answer against its ground truth: the team chooses how."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from mascope import Agent, Team
from mascope.cli import app
from mascope.errors import ConfigError
from mascope.traces import TraceStore

ERA = "The Eiffel Tower is about 330 m tall. It was finished in 1889."


def solo(db: Path, answer: str, **kwargs: object) -> Team:
    return Team("solo", [Agent("a", fn=lambda ctx: answer)], store=db, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("answer", "truth", "status"),
    [
        (ERA, "330", "succeeded"),
        ("The capital of France is Paris.", "Paris", "succeeded"),
        ("ANSWER: 8.0", "8", "succeeded"),
        ("It is 180 cm.", "18", "failed"),
        ("A Parisian cafe.", "Paris", "failed"),
    ],
)
def test_the_default_scoring_finds_the_ground_truth_in_the_answer(
    tmp_path: Path, answer: str, truth: str, status: str
) -> None:
    db = tmp_path / "s.db"
    result = solo(db, answer).run("q", ground_truth=truth)
    assert result.status == status
    meta = TraceStore(db).get_run(result.run_id).metadata_
    assert meta["answer_correct"] is (status == "succeeded")
    assert meta["scoring"]["matcher"] == "contains"
    if status == "succeeded":
        begin, end = meta["scoring"]["span"]
        assert answer[begin:end] == meta["scoring"]["found"]
        assert meta["scoring"]["found"].replace(".0", "") == truth


def test_a_team_picks_another_matcher(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    exact = solo(db, "Paris.", scoring="exact").run("q", ground_truth="Paris")
    assert exact.status == "failed"
    numeric = solo(
        db, "about 8.0004", scoring={"match": "numeric", "tolerance": 0.01, "extract": "all"}
    )
    assert numeric.run("q", ground_truth="8").status == "succeeded"


def test_a_python_function_scores(tmp_path: Path) -> None:
    db = tmp_path / "f.db"

    def starts_with(answer: str, truth: str) -> tuple[bool, str]:
        return answer.startswith(truth), answer[: len(truth)]

    result = solo(db, "Paris, of course", scoring=starts_with).run("q", ground_truth="Paris")
    meta = TraceStore(db).get_run(result.run_id).metadata_
    assert result.status == "succeeded" and meta["scoring"]["found"] == "Paris"


def test_yaml_scoring_function_and_runs_show(tmp_path: Path) -> None:
    team = tmp_path / "t.yaml"
    team.write_text(
        "name: t\nagents:\n  - name: a\n    function: tests.graphs.helpers:echo_task\n"
        "topology: {kind: pipeline, stages: [a]}\n"
        "scoring: tests.graphs.helpers:same_first_word\n"
    )
    db = tmp_path / "y.db"
    runner = CliRunner()
    ok = runner.invoke(
        app, ["run", str(team), "--task", "Paris is big", "--expect", "paris", "--db", str(db)]
    )
    assert ok.exit_code == 0, ok.output
    bad = runner.invoke(
        app, ["run", str(team), "--task", "Big Paris", "--expect", "paris", "--db", str(db)]
    )
    assert bad.exit_code == 1, bad.output
    run = TraceStore(db).list_runs()[0]
    shown = runner.invoke(app, ["runs", "show", run.id, "--db", str(db)])
    assert "scored by" in shown.stdout and "tests.graphs.helpers:same_first_word" in shown.stdout


def test_runs_show_says_what_matched(tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    result = solo(db, ERA).run("q", ground_truth="330")
    shown = CliRunner().invoke(app, ["runs", "show", result.run_id, "--db", str(db)])
    assert "contains: matched '330' at characters 26-29" in shown.stdout


def test_an_unknown_matcher_is_a_one_line_error(tmp_path: Path) -> None:
    team = tmp_path / "bad.yaml"
    team.write_text(
        "name: t\nagents:\n  - name: a\n    function: tests.graphs.helpers:echo_task\n"
        "topology: {kind: pipeline, stages: [a]}\nscoring: fuzzy\n"
    )
    result = CliRunner().invoke(
        app, ["run", str(team), "--task", "x", "--db", str(tmp_path / "b.db")]
    )
    assert result.exit_code == 2 and "scoring.match" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    with pytest.raises(ConfigError):
        solo(tmp_path / "c.db", "x", scoring="fuzzy")


@pytest.mark.parametrize(
    ("answer", "truth", "status"),
    [
        ("ANSWER: .5", "0.5", "succeeded"),
        ("The probability is 0.5.", ".5", "succeeded"),
        ("The temperature fell to \u22128 degrees.", "-8", "succeeded"),  # the minus sign
        ("ANSWER: -.25", "-0.25", "succeeded"),
        ("She moved to \u0130stanbul.", "istanbul", "succeeded"),  # Turkish dotted capital I
        ("It is 3.5 m.", ".5", "failed"),
        ("ANSWER: 8", "-8", "failed"),
    ],
)
def test_decimals_minus_signs_and_unicode_case_score_as_a_user_expects(
    tmp_path: Path, answer: str, truth: str, status: str
) -> None:
    assert solo(tmp_path / "d.db", answer).run("q", ground_truth=truth).status == status
