"""Choosing draft_defer's tau from recorded runs, against a hand computation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from mascope.agents import TurnContext, Verdict, VerifyContext
from mascope.cli import app
from mascope.evals import calibrate_tau
from mascope.graphs import Team
from mascope.traces import TraceStore

from ..test_cli import assert_one_line_error

# task: (the draft's score, whether the draft is right); the strong agent is always right.
DRAFTS = {
    "t1": (0.9, True),
    "t2": (0.8, True),
    "t3": (0.6, False),
    "t4": (0.4, True),
    "t5": (0.2, False),
    "t6": (1.0, True),
}


def draft(ctx: TurnContext) -> str:
    return "ANSWER: 7" if DRAFTS[ctx.task][1] else "ANSWER: 3"


def strong(ctx: TurnContext) -> str:
    return "ANSWER: 7 (strong)"


def grade(candidate: str, ctx: VerifyContext) -> Verdict:
    score = 1.0 if "strong" in candidate else DRAFTS[ctx.task][0]
    return Verdict(passed=score >= 0.5, score=score)


def record_runs(tmp_path: Path, tau: float) -> tuple[Path, Path]:
    """A team file using this module's functions, and a store of one run per task at `tau`."""
    path = tmp_path / "team.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "deferring",
                "agents": [
                    {"name": "solver", "function": f"{__name__}:strong"},
                    {"name": "cheap", "function": f"{__name__}:draft"},
                ],
                "verifiers": {"c": {"kind": "python", "function": f"{__name__}:grade"}},
                "topology": {
                    "kind": "pipeline",
                    "stages": [
                        {
                            "agent": "solver",
                            "verifier": "c",
                            "max_rounds": 1,
                            "strategy": {"kind": "draft_defer", "drafter": "cheap", "tau": tau},
                        }
                    ],
                },
            }
        )
    )
    db = tmp_path / "runs.db"
    team = Team.from_yaml(path, store=db)
    for task in DRAFTS:
        team.run(task, ground_truth="7")
    team.run("t1")  # no ground truth: left out
    return path, db


@pytest.mark.parametrize(
    ("max_rate", "tau", "correct"),
    [
        # Deferring below 0.8 sends t3, t4, t5 to the strong agent: all 6 right.
        (1.0, 0.8, 6),
        # At most 40% (2 of 6): below 0.4 defers t5 only, 5 right (0.6 also gets 5 but defers 2).
        (0.4, 0.4, 5),
        # No deferral: the drafts alone, 4 right (t3 and t5 wrong).
        (0.0, 0.0, 4),
    ],
)
def test_the_chosen_tau_is_the_most_accurate_within_the_deferral_rate(
    tmp_path: Path, max_rate: float, tau: float, correct: int
) -> None:
    path, db = record_runs(tmp_path, tau=1.0)
    got = calibrate_tau(TraceStore(db), Team.from_yaml(path), max_deferral_rate=max_rate)
    assert len(got.records) == 6 and got.skipped == {"run has no ground truth": 1}
    assert got.chosen is not None
    assert (got.chosen.tau, got.chosen.correct) == (tau, correct)
    by_tau = {p.tau: (p.deferred, p.correct) for p in got.points}
    # tau 0.2 would defer nothing, as 0 does, so it is not listed.
    assert by_tau == {
        0.0: (0, 4), 0.4: (1, 5), 0.6: (2, 5), 0.8: (3, 6), 0.9: (4, 6), 1.0: (5, 6),
    }  # fmt: skip
    assert not got.reliable  # 6 records are too few to trust


def test_a_tau_that_needs_strong_answers_never_recorded_is_not_evaluable(tmp_path: Path) -> None:
    path, db = record_runs(tmp_path, tau=0.5)  # t3 (0.6) and up kept their drafts
    got = calibrate_tau(TraceStore(db), Team.from_yaml(path))
    evaluable = {p.tau for p in got.points if p.correct is not None}
    assert evaluable == {0.0, 0.4, 0.6}
    assert got.chosen is not None and got.chosen.tau == 0.4  # 5 right, 1 deferral


def test_the_cli_prints_the_table_and_the_tau_to_set(tmp_path: Path) -> None:
    path, db = record_runs(tmp_path, tau=1.0)
    runner = CliRunner()
    result = runner.invoke(
        app, ["team", "calibrate-tau", str(path), "--db", str(db), "--max-deferral-rate", "0.4"]
    )
    assert result.exit_code == 0, result.output
    assert "set strategy.tau: 0.4 on topology.stages[0]" in result.output
    assert "fewer than 10" in result.stderr
    as_json = runner.invoke(app, ["team", "calibrate-tau", str(path), "--db", str(db), "--json"])
    data: dict[str, Any] = json.loads(as_json.stdout)
    assert data["chosen"] == 0.8 and data["records"] == 6 and data["reliable"] is False


def test_calibrating_a_team_without_a_draft_defer_stage_is_refused(tmp_path: Path) -> None:
    path, db = record_runs(tmp_path, tau=1.0)
    data = yaml.safe_load(path.read_text())
    data["topology"]["stages"] = ["solver"]
    path.write_text(yaml.safe_dump(data))
    result = CliRunner().invoke(app, ["team", "calibrate-tau", str(path), "--db", str(db)])
    assert_one_line_error(result, "no pipeline stage has strategy kind draft_defer")


def test_a_deferral_rate_outside_0_1_is_refused(tmp_path: Path) -> None:
    path, db = record_runs(tmp_path, tau=1.0)
    result = CliRunner().invoke(
        app,
        ["team", "calibrate-tau", str(path), "--db", str(db), "--max-deferral-rate", "1.5"],
    )
    assert_one_line_error(result, "--max-deferral-rate", "between 0 and 1")


def test_calibrating_without_recorded_runs_says_how_to_record_them(tmp_path: Path) -> None:
    path, _ = record_runs(tmp_path, tau=1.0)
    empty = tmp_path / "empty.db"
    TraceStore(empty, create=True).close()
    result = CliRunner().invoke(app, ["team", "calibrate-tau", str(path), "--db", str(empty)])
    assert_one_line_error(result, "no recorded draft_defer runs of team 'deferring'", "tau: 1")
