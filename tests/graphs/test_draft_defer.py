"""draft_defer: a cheap drafter answers first; below tau the stage's own agent answers instead."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from mascope import Agent, Team
from mascope.agents import Verdict
from mascope.cli import app
from mascope.models import ChatResponse, Message, ScriptedModel, Usage
from mascope.traces import TraceStore

from ..test_cli import assert_one_line_error


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "runs.db"


def deferral(db: Path, run_id: str) -> Any:
    return next(s for s in TraceStore(db).steps(run_id) if s.data.get("event") == "deferral")


def defer_team(db: Path, draft_score: float | None, tau: float, **stage: Any) -> Team:
    """The drafter says 'draft', the strong agent 'strong'; the verifier gives the draft `draft_score`."""

    def grade(candidate: str) -> Verdict:
        if candidate == "strong":
            return Verdict(passed=True, score=1.0)
        if draft_score is None:
            return Verdict(passed=False)  # a verdict without a score counts as 0
        return Verdict(passed=draft_score >= 0.5, score=draft_score)

    return Team(
        "d", [Agent("solver", fn=lambda ctx: "strong"), Agent("cheap", fn=lambda ctx: "draft")],
        stages=[{"agent": "solver", "verifier": "c", "strategy": {"kind": "draft_defer", "drafter": "cheap", "tau": tau}, **stage}],
        verifiers={"c": grade}, store=db,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("score", "tau", "deferred"),
    [
        (0.69, 0.7, True),  # just below tau: defers
        (0.7, 0.7, False),  # equal to tau: the draft is kept
        (0.71, 0.7, False),
        (0.0, 0.0, False),  # tau 0 never defers
        (0.99, 1.0, True),  # tau 1 defers anything short of a full score
        (1.0, 1.0, False),
        (None, 0.01, True),  # no score: failed counts as 0
    ],
)
def test_the_stage_defers_exactly_when_the_draft_scores_below_tau(
    db: Path, score: float | None, tau: float, deferred: bool
) -> None:
    result = defer_team(db, score, tau, max_rounds=1).run(
        "?"
    )  # one round: a kept failing draft ends it
    assert result.answer == ("strong" if deferred else "draft")
    event = deferral(db, result.run_id)
    assert event.data["deferred"] is deferred
    assert event.data["score"] == (score or 0.0) and event.data["tau"] == tau
    said = [s.agent for s in TraceStore(db).steps(result.run_id) if s.kind == "message"]
    assert said == (["cheap", "solver"] if deferred else ["cheap"])


def test_a_passed_verdict_without_a_score_counts_as_a_full_score(db: Path) -> None:
    team = Team(
        "d", [Agent("solver", fn=lambda ctx: "strong"), Agent("cheap", fn=lambda ctx: "draft")],
        stages=[{"agent": "solver", "verifier": "c", "strategy": {"kind": "draft_defer", "drafter": "cheap", "tau": 1.0}}],
        verifiers={"c": lambda cand: True}, store=db,
    )  # fmt: skip
    result = team.run("?")
    assert result.answer == "draft" and deferral(db, result.run_id).data["score"] == 1.0


def reply(text: str, tokens_in: int, tokens_out: int, cost: float) -> ChatResponse:
    return ChatResponse(
        model="x", message=Message.assistant(text), finish_reason="stop",
        usage=Usage(input_tokens=tokens_in, output_tokens=tokens_out), cost_usd=cost,
    )  # fmt: skip


def priced_team(db: Path, strong: ScriptedModel) -> Team:
    return Team(
        "d",
        [Agent("solver", model=strong), Agent("cheap", model=ScriptedModel([reply("ANSWER: 6", 10, 2, 0.001)]))],
        stages=[{"agent": "solver", "verifier": "c", "strategy": {"kind": "draft_defer", "drafter": "cheap", "tau": 0.5}}],
        verifiers={"c": lambda cand: "5" in cand}, store=db,
    )  # fmt: skip


def test_a_deferred_stage_records_both_answers_and_what_the_deferral_cost(db: Path) -> None:
    strong = ScriptedModel([reply("ANSWER: 5", 40, 8, 0.02)])
    result = priced_team(db, strong).run("2+3?")
    assert result.answer == "ANSWER: 5" and result.status == "succeeded"
    steps = TraceStore(db).steps(result.run_id)
    assert [
        (s.kind, s.agent, s.content if s.kind == "message" else s.data["passed"]) for s in steps[:4]
    ] == [
        ("message", "cheap", "ANSWER: 6"),
        ("verdict", "c", False),
        ("message", "solver", "ANSWER: 5"),
        ("verdict", "c", True),
    ]
    event = deferral(db, result.run_id)
    assert event.agent == "solver"
    assert event.data == {
        **event.data,
        "drafter": "cheap", "strong": "solver", "deferred": True, "score": 0.0, "tau": 0.5,
        "draft_tokens": 12, "draft_cost_usd": 0.001, "strong_tokens": 48, "strong_cost_usd": 0.02,
    }  # fmt: skip
    assert (
        event.content
        == "deferred to solver: cheap's draft scored 0 < tau 0.5; extra 48 tokens, $0.020000"
    )
    run = TraceStore(db).get_run(result.run_id)
    assert run.cost_usd == pytest.approx(0.021)  # both answers are paid for


def test_a_kept_draft_never_asks_the_strong_model(db: Path) -> None:
    strong = ScriptedModel([])  # any call would fail the run
    team = Team(
        "d",
        [Agent("solver", model=strong), Agent("cheap", model=ScriptedModel([reply("ANSWER: 5", 10, 2, 0.001)]))],
        stages=[{"agent": "solver", "verifier": "c", "strategy": {"kind": "draft_defer", "drafter": "cheap", "tau": 0.5}}],
        verifiers={"c": lambda cand: "5" in cand}, store=db,
    )  # fmt: skip
    result = team.run("2+3?")
    assert result.answer == "ANSWER: 5" and result.status == "succeeded"
    assert strong.calls == []
    event = deferral(db, result.run_id)
    assert event.data["deferred"] is False and event.data["strong_tokens"] == 0
    assert event.content == "kept cheap's draft: scored 1 >= tau 0.5; solver not asked"


def test_the_deferred_answer_is_verified_and_a_failure_goes_round_the_stage_again(db: Path) -> None:
    # Round 1: draft 6 fails, strong 7 fails; round 2: draft (told why) 5 passes.
    strong = ScriptedModel(["ANSWER: 7"])
    cheap = ScriptedModel(["ANSWER: 6", "ANSWER: 5"])
    team = Team(
        "d", [Agent("solver", model=strong), Agent("cheap", model=cheap)],
        stages=[{"agent": "solver", "verifier": "c", "max_rounds": 2, "strategy": {"kind": "draft_defer", "drafter": "cheap", "tau": 0.5}}],
        verifiers={"c": lambda cand: "5" in cand}, store=db,
    )  # fmt: skip
    result = team.run("2+3?")
    assert result.answer == "ANSWER: 5" and result.status == "succeeded"
    events = [
        s.data for s in TraceStore(db).steps(result.run_id) if s.data.get("event") == "deferral"
    ]
    assert [e["deferred"] for e in events] == [True, False]
    assert "ANSWER: 7" in (
        cheap.calls[1].messages[-1].content or ""
    )  # the feedback names the rejected answer


def test_the_verifier_sees_the_draft_as_the_stage_agents_output(db: Path) -> None:
    seen: list[dict[str, str]] = []

    async def grade(candidate: str, ctx: Any) -> Verdict:
        seen.append(dict(ctx.outputs))
        return Verdict(passed=True, score=1.0)

    team = Team(
        "d", [Agent("solver", fn=lambda ctx: "strong"), Agent("cheap", fn=lambda ctx: "draft")],
        stages=[{"agent": "solver", "verifier": "c", "strategy": {"kind": "draft_defer", "drafter": "cheap", "tau": 0.5}}],
        verifiers={"c": grade}, store=db,
    )  # fmt: skip
    team.run("?")
    assert seen == [{"solver": "draft"}]


def team_file(tmp_path: Path, strategy: dict[str, Any], *, verifier: bool = True) -> Path:
    cheap = tmp_path / "cheap.json"
    cheap.write_text(json.dumps(["ANSWER: 6"]))
    strong = tmp_path / "strong.json"
    strong.write_text(json.dumps(["ANSWER: 5"]))
    stage: dict[str, Any] = {"agent": "solver", "strategy": strategy}
    if verifier:
        stage["verifier"] = "c"
    path = tmp_path / "team.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "deferring",
                "model": f"scripted:{strong}",
                "agents": [
                    {"name": "solver", "role": "solver", "goal": "answer"},
                    {
                        "name": "cheap",
                        "role": "solver",
                        "goal": "answer",
                        "model": f"scripted:{cheap}",
                    },
                ],
                "verifiers": {"c": {"kind": "answer_match", "extract": "last_number"}},
                "topology": {"kind": "pipeline", "stages": [stage]},
            }
        )
    )
    return path


def test_a_team_file_defers_and_runs_show_says_so(tmp_path: Path) -> None:
    path = team_file(tmp_path, {"kind": "draft_defer", "drafter": "cheap", "tau": 0.5})
    db = tmp_path / "r.db"
    runner = CliRunner()
    ran = runner.invoke(app, ["run", str(path), "--task", "2+3?", "--expect", "5", "--db", str(db)])
    assert ran.exit_code == 0, ran.output
    run_id = TraceStore(db).list_runs()[0].id
    shown = runner.invoke(app, ["runs", "show", run_id, "--db", str(db)])
    assert shown.exit_code == 0, shown.output
    assert "deferred to solver: cheap's draft scored 0 < tau 0.5" in shown.output
    assert (
        "deferrals: 1 of 1 draft_defer stage run deferred to the strong agent, extra"
        in shown.output
    )


@pytest.mark.parametrize(
    ("strategy", "verifier", "needles"),
    [
        (
            {"kind": "draft_defer", "drafter": "cheap", "tau": 1.5},
            True,
            ["topology.stages[0].strategy.tau", "at most 1"],
        ),
        (
            {"kind": "draft_defer", "drafter": "cheap", "tau": -0.1},
            True,
            ["topology.stages[0].strategy.tau", "at least 0"],
        ),
        (
            {"kind": "draft_defer", "drafter": "cheep", "tau": 0.5},
            True,
            [
                "topology.stages[0].strategy.drafter",
                "no agent named 'cheep'",
                "did you mean 'cheap'",
            ],
        ),
        (
            {"kind": "draft_defer", "drafter": "solver", "tau": 0.5},
            True,
            ["topology.stages[0].strategy.drafter", "the stage's own agent", "name a different"],
        ),
        (
            {"kind": "draft_defer", "drafter": "cheap", "tau": 0.5},
            False,
            ["topology.stages[0].strategy", "draft_defer needs a verifier", "add verifier"],
        ),
        (
            {"kind": "draft_defer", "drafter": "cheap"},
            True,
            ["topology.stages[0].strategy", "draft_defer needs tau"],
        ),
        (
            {"kind": "draft_defer", "tau": 0.5},
            True,
            ["topology.stages[0].strategy", "draft_defer needs drafter"],
        ),
        (
            {"kind": "best_of_n", "n": 3, "drafter": "cheap"},
            True,
            ["topology.stages[0].strategy", "drafter works only with kind draft_defer"],
        ),
        (
            {"kind": "self_consistency", "tau": 0.5},
            True,
            ["topology.stages[0].strategy", "tau works only with kind draft_defer"],
        ),
        (
            {"kind": "draft_defer", "drafter": "cheap", "tau": 0.5, "n": 4},
            True,
            ["topology.stages[0].strategy", "n does not apply to kind draft_defer", "remove n"],
        ),
    ],
)
def test_impossible_draft_defer_settings_are_refused_before_any_model_loads(
    tmp_path: Path, strategy: dict[str, Any], verifier: bool, needles: list[str]
) -> None:
    path = team_file(tmp_path, strategy, verifier=verifier)
    data = yaml.safe_load(path.read_text())
    data["model"] = "local"  # never loaded: the file is refused first
    path.write_text(yaml.safe_dump(data))
    db = tmp_path / "r.db"
    result = CliRunner().invoke(app, ["run", str(path), "--task", "x", "--db", str(db)])
    assert_one_line_error(result, *needles)
    assert not db.exists()


def test_a_recorded_draft_defer_spec_loads_again(db: Path) -> None:
    # Re-rolls and counterfactual replays rebuild the team from the spec stored with the run.
    from mascope.graphs import parse_team

    result = defer_team(db, 0.9, 0.5).run("?")
    stored = TraceStore(db).get_run(result.run_id).spec
    assert stored is not None
    spec = parse_team(stored)
    strategy = spec.topology.stage_list()[0].strategy  # type: ignore[union-attr]
    assert (strategy.kind, strategy.drafter, strategy.tau) == ("draft_defer", "cheap", 0.5)
