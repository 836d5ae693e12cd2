"""review_refine inside a pipeline: refine the best candidates on their verifier feedback."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from mascope import Agent, Team
from mascope.agents import TurnContext, Verdict
from mascope.cli import app
from mascope.graphs import TeamSpec
from mascope.models import ChatRequest, ScriptedModel
from mascope.traces import TraceStore

from ..test_cli import assert_one_line_error

FEEDBACK = "2 + 3 is not 4; add again"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "runs.db"


def steps(db: Path, run_id: str, kind: str) -> list[Any]:
    return [s for s in TraceStore(db).steps(run_id) if s.kind == kind]


def selection(db: Path, run_id: str) -> Any:
    return next(s for s in steps(db, run_id, "event") if s.data.get("event") == "selection")


def lineage(db: Path, run_id: str, kind: str) -> list[tuple[int, int, int | None]]:
    """(sample, round, parent) of each step of `kind`, in sample order."""
    return sorted(
        (s.data["sample"], s.data["round"], s.data.get("parent")) for s in steps(db, run_id, kind)
    )


def sum_checker(candidate: str) -> tuple[bool, str]:
    return ("5" in candidate, "" if "5" in candidate else FEEDBACK)


@pytest.mark.parametrize("concurrency", [1, 2])
def test_a_rejected_draft_is_refined_on_its_feedback_and_the_run_succeeds(
    db: Path, concurrency: int
) -> None:
    def reply(request: ChatRequest) -> str:
        prompt = request.messages[-1].content or ""
        # Only an agent shown the candidate and what was wrong with it gets it right.
        if "ANSWER: 4" in prompt and FEEDBACK in prompt:
            return "ANSWER: 5"
        return "ANSWER: 4"

    model = ScriptedModel([reply] * 6)
    team = Team(
        "m", [Agent("solver", model=model)],
        stages=[{"agent": "solver", "verifier": "sum", "strategy": {"kind": "review_refine", "n": 3, "concurrency": concurrency}}],
        verifiers={"sum": sum_checker}, store=db,
    )  # fmt: skip
    result = team.run("What is 2 + 3?")
    assert result.status == "succeeded" and result.answer == "ANSWER: 5"
    # Three first drafts, all rejected; the best two (a tie: the earliest) are
    # refined, and the first refinement passes with full score.
    refinement = next(c.messages[-1].content or "" for c in model.calls if c.seed == 3)
    assert refinement.startswith("Task: What is 2 + 3?")
    assert f"Your previous answer was:\nANSWER: 4\n\nIt was rejected: {FEEDBACK}\n" in refinement
    assert "Your previous answer" not in (model.calls[0].messages[-1].content or "")
    drawn = [(0, 0, None), (1, 0, None), (2, 0, None), (3, 1, 0)]
    left_out = [] if concurrency == 1 else [(4, 1, 1)]  # recorded if it finished before the cut
    assert lineage(db, result.run_id, "message") in (drawn, drawn + left_out)
    assert lineage(db, result.run_id, "verdict") in (drawn, drawn + left_out)
    event = selection(db, result.run_id)
    assert event.data["strategy"] == "review_refine" and event.data["rounds"] == 1
    assert event.data["chosen"] == 3 and event.data["settled"] is True
    assert event.data["winner"] == {
        "sample": 3, "round": 1, "parent": 0, "passed": True, "score": 1.0,
    }  # fmt: skip
    # Drawn one at a time, sample 4 (refining candidate 2) never starts; drawn
    # beside sample 3, it is left out: it comes after the winner in index order.
    assert event.data["dropped"] == ([] if concurrency == 1 else [4])
    assert len(model.calls) == (4 if concurrency == 1 else 5)
    assert "chose candidate 4 (round 1, refining candidate 1) after 1 of 2 round(s)" in (
        event.content
    )
    indexes = [s.index for s in TraceStore(db).steps(result.run_id)]
    assert indexes == list(range(len(indexes)))


def plus_solver(ctx: TurnContext) -> str:
    """A first draft names its sample; a refinement adds a '+' to the candidate it was shown."""
    if ctx.feedback is None:
        return f"d{ctx.sample}"
    return ctx.outputs["solver"] + "+"


def refine_team(db: Path, grade: Any, **strategy: Any) -> Team:
    return Team(
        "m", [Agent("solver", fn=plus_solver)],
        # One attempt at the stage: a failed verdict does not start the whole search again.
        stages=[{"agent": "solver", "verifier": "g", "max_rounds": 1, "strategy": {"kind": "review_refine", **strategy}}],
        verifiers={"g": grade}, store=db,
    )  # fmt: skip


def never_enough(candidate: str) -> Verdict:
    # d2 starts ahead; each '+' is worth 0.2; nothing ever passes.
    score = 0.1 * (candidate.startswith("d2")) + 0.2 * candidate.count("+")
    return Verdict(passed=False, score=round(score, 3), feedback="add a plus")


@pytest.mark.parametrize("concurrency", [1, 4])
def test_the_best_kept_are_refined_each_round_up_to_the_rounds_cap(
    db: Path, concurrency: int
) -> None:
    team = refine_team(db, never_enough, n=3, keep=2, rounds=3, concurrency=concurrency)
    result = team.run("?")
    # Drafts d0 d1 d2: d2 is best, then d0 (ties go to the earliest). Each round
    # refines the two best of the kept plus their refinements.
    assert lineage(db, result.run_id, "message") == [
        (0, 0, None), (1, 0, None), (2, 0, None),
        (3, 1, 2), (4, 1, 0),
        (5, 2, 3), (6, 2, 4),
        (7, 3, 5), (8, 3, 6),
    ]  # fmt: skip
    assert [s.content for s in steps(db, result.run_id, "message")][-2:] in (
        ["d2+++", "d0+++"],
        ["d0+++", "d2+++"],
    )
    assert len(steps(db, result.run_id, "verdict")) == 9
    assert result.answer == "d2+++"
    assert result.status == "failed"  # the stage's verifier never passed it
    event = selection(db, result.run_id)
    assert event.data["rounds"] == 3 and event.data["chosen"] == 7
    assert event.data["settled"] is False and event.data["samples_used"] == 9
    assert event.data["winner"]["parent"] == 5
    assert "after 3 of 3 round(s), 9 candidates" in event.content


def test_the_search_stops_as_soon_as_a_refinement_passes_with_full_score(db: Path) -> None:
    def two_plus(candidate: str) -> Verdict:
        if candidate.count("+") >= 2:
            return Verdict(passed=True, score=1.0)
        return Verdict(passed=False, score=0.3 * candidate.count("+"), feedback="more")

    team = refine_team(db, two_plus, n=2, keep=1, rounds=5, concurrency=1)
    result = team.run("?")
    assert result.status == "succeeded" and result.answer == "d0++"
    assert lineage(db, result.run_id, "message") == [
        (0, 0, None), (1, 0, None), (2, 1, 0), (3, 2, 2),
    ]  # fmt: skip
    event = selection(db, result.run_id)
    assert event.data["rounds"] == 2 and event.data["settled"] is True


def test_a_passing_draft_with_full_score_needs_no_refinement(db: Path) -> None:
    team = refine_team(db, lambda c: c == "d1", n=3, concurrency=1)
    result = team.run("?")
    assert result.answer == "d1" and result.status == "succeeded"
    assert lineage(db, result.run_id, "message") == [(0, 0, None), (1, 0, None)]
    assert selection(db, result.run_id).data["rounds"] == 0


def test_a_partial_pass_is_refined_and_told_its_score(db: Path) -> None:
    prompts: list[str] = []

    def solver(ctx: TurnContext) -> str:
        prompts.append(ctx.prompt)
        return "draft" if ctx.feedback is None else "final"

    team = Team(
        "m", [Agent("solver", fn=solver)],
        stages=[{"agent": "solver", "verifier": "g", "strategy": {"kind": "review_refine", "n": 1, "rounds": 1}}],
        verifiers={"g": lambda c: Verdict(passed=True, score=1.0 if c == "final" else 0.5, feedback="terse")},
        store=db,
    )  # fmt: skip
    result = team.run("?")
    assert result.answer == "final"
    assert "It was rejected: it scored 0.5 of 1, short of full marks; terse\n" in prompts[1]


def test_the_best_candidate_of_all_wins_even_when_refinements_get_worse(db: Path) -> None:
    def fewer_plus_better(candidate: str) -> Verdict:
        return Verdict(passed=False, score=0.5 - 0.1 * candidate.count("+"), feedback="no")

    team = refine_team(db, fewer_plus_better, n=2, keep=1, rounds=2, concurrency=1)
    result = team.run("?")
    # d0 stays the best kept candidate, so both rounds refine it again.
    assert lineage(db, result.run_id, "message") == [
        (0, 0, None), (1, 0, None), (2, 1, 0), (3, 2, 0),
    ]  # fmt: skip
    assert result.answer == "d0"
    assert selection(db, result.run_id).data["winner"] == {
        "sample": 0, "round": 0, "parent": None, "passed": False, "score": 0.5,
    }  # fmt: skip


def test_the_search_does_not_depend_on_which_draw_finishes_first(tmp_path: Path) -> None:
    async def solver(ctx: TurnContext) -> str:
        for _ in range(12 - ctx.sample):  # later candidates finish first
            await asyncio.sleep(0)
        return plus_solver(ctx)

    def grade(candidate: str) -> Verdict:
        # d1 and d3 lead; three pluses on d3 pass with full score (in round 3).
        score = {"d1": 0.3, "d3": 0.3}.get(candidate[:2], 0.0) + 0.2 * candidate.count("+")
        if candidate == "d3+++":
            return Verdict(passed=True, score=1.0)
        return Verdict(passed=False, score=round(score, 3), feedback="more")

    seen = []
    for concurrency in (1, 3, 6):
        db = tmp_path / f"c{concurrency}.db"
        team = Team(
            "m", [Agent("solver", fn=solver)],
            stages=[{"agent": "solver", "verifier": "g", "max_rounds": 1,
                     "strategy": {"kind": "review_refine", "n": 5, "keep": 2, "rounds": 4, "concurrency": concurrency}}],
            verifiers={"g": grade}, store=db,
        )  # fmt: skip
        result = team.run("?")
        event = selection(db, result.run_id)
        seen.append((result.answer, event.data["winner"], event.data["candidates"]))
    assert seen[0] == seen[1] == seen[2]
    answer, winner, candidates = seen[0]
    assert answer == "d3+++" and winner["round"] == 3
    # Kept each round: d1, d3 (ties go to the earliest), then their refinements.
    assert [(c["sample"], c["parent"]) for c in candidates[5:]] == [
        (5, 1), (6, 3), (7, 5), (8, 6), (9, 7), (10, 8),
    ]  # fmt: skip


async def test_a_refinement_that_fails_ends_the_run_in_error(db: Path) -> None:
    release = asyncio.Event()

    async def solver(ctx: TurnContext) -> str:
        if ctx.feedback is None:
            return f"d{ctx.sample}"
        if ctx.sample == 2:
            raise RuntimeError("tool server went away")
        await release.wait()
        return "late"

    team = Team(
        "m", [Agent("solver", fn=solver)],
        stages=[{"agent": "solver", "verifier": "g", "strategy": {"kind": "review_refine", "n": 2}}],
        verifiers={"g": lambda c: False}, store=db,
    )  # fmt: skip
    result = await team.arun("?")
    release.set()  # a refinement left running would now finish and record its message
    for _ in range(10):
        await asyncio.sleep(0)
    assert result.status == "error"
    messages = steps(db, result.run_id, "message")
    assert [m.content for m in messages] == ["d0", "d1"]
    indexes = [s.index for s in TraceStore(db).steps(result.run_id)]
    assert indexes == list(range(len(indexes)))


def test_a_spent_budget_starts_no_refinement_round(db: Path) -> None:
    model = ScriptedModel(["ANSWER: 4"] * 6)
    team = Team(
        "m", [Agent("solver", model=model)],
        stages=[{"agent": "solver", "verifier": "sum", "max_rounds": 1, "strategy": {"kind": "review_refine", "n": 2, "concurrency": 2, "budget": {"tokens": 10}}}],
        verifiers={"sum": sum_checker}, store=db,
    )  # fmt: skip
    result = team.run("count " * 20)
    assert len(model.calls) == 2  # both drafts started together; then the budget was spent
    event = selection(db, result.run_id)
    assert event.data["rounds"] == 0 and "budget ran out" in event.content


def test_a_team_file_with_review_refine_runs_from_the_cli(tmp_path: Path) -> None:
    replies = tmp_path / "replies.json"
    replies.write_text(json.dumps(["ANSWER: 4", "ANSWER: 6", "ANSWER: 5"]))
    team_file = tmp_path / "team.yaml"
    team_file.write_text(
        yaml.safe_dump(
            {
                "name": "refiners",
                "model": f"scripted:{replies}",
                "agents": [{"name": "solver", "role": "solver", "goal": "answer"}],
                "verifiers": {"match": {"kind": "answer_match", "extract": "last_number"}},
                "topology": {
                    "kind": "pipeline",
                    "stages": [
                        {
                            "agent": "solver",
                            "verifier": "match",
                            "strategy": {"kind": "review_refine", "n": 2, "keep": 1, "rounds": 3, "concurrency": 1},
                        }
                    ],
                },
            }
        )
    )  # fmt: skip
    db = tmp_path / "r.db"
    args = ["run", str(team_file), "--task", "2+3?", "--expect", "5", "--db", str(db)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    store = TraceStore(db)
    (run,) = store.list_runs()
    assert run.final_answer == "ANSWER: 5" and run.status == "succeeded"
    assert lineage(db, run.id, "message") == [(0, 0, None), (1, 0, None), (2, 1, 0)]
    assert selection(db, run.id).data["rounds"] == 1


BAD = {
    "keep > n": (
        {"kind": "review_refine", "n": 2, "keep": 3},
        ["topology.stages[0].strategy", "keep (3) is more than n (2)", "set keep to 2 or less"],
    ),
    "rounds 0": (
        {"kind": "review_refine", "rounds": 0},
        ["topology.stages[0].strategy.rounds", "at least 1"],
    ),
    "keep 0": (
        {"kind": "review_refine", "keep": 0},
        ["topology.stages[0].strategy.keep", "at least 1"],
    ),
    "keep elsewhere": (
        {"kind": "best_of_n", "keep": 2},
        ["topology.stages[0].strategy", "keep works only with kind review_refine, not best_of_n"],
    ),
    "both elsewhere": (
        {"kind": "self_consistency", "keep": 1, "rounds": 2},
        ["keep and rounds work only with kind review_refine"],
    ),
    "stop_confidence": (
        {"kind": "review_refine", "stop_confidence": 0.9},
        ["stop_confidence does not apply to review_refine"],
    ),
}


def bad_team(tmp_path: Path, strategy: dict[str, Any], *, verifier: bool = True) -> Path:
    stage: dict[str, Any] = {"agent": "solver", "strategy": strategy}
    if verifier:
        stage["verifier"] = "c"
    team_file = tmp_path / "bad.yaml"
    team_file.write_text(
        yaml.safe_dump(
            {
                "name": "t",
                "model": "local",  # never loaded: the file is refused first
                "agents": [{"name": "solver", "role": "solver", "goal": "answer"}],
                "verifiers": {"c": {"kind": "answer_match"}},
                "topology": {"kind": "pipeline", "stages": [stage]},
            }
        )
    )
    return team_file


@pytest.mark.parametrize("case", list(BAD))
def test_impossible_review_refine_settings_are_refused_before_any_model_loads(
    tmp_path: Path, case: str
) -> None:
    strategy, needles = BAD[case]
    db = tmp_path / "r.db"
    team_file = bad_team(tmp_path, strategy)
    result = CliRunner().invoke(app, ["run", str(team_file), "--task", "x", "--db", str(db)])
    assert_one_line_error(result, *needles)
    assert not db.exists()
    assert_one_line_error(CliRunner().invoke(app, ["team", "check", str(team_file)]), *needles)


def test_review_refine_without_a_verifier_is_refused(tmp_path: Path) -> None:
    team_file = bad_team(tmp_path, {"kind": "review_refine"}, verifier=False)
    result = CliRunner().invoke(app, ["team", "check", str(team_file)])
    assert_one_line_error(
        result, "topology.stages[0].strategy", "review_refine needs a verifier on the stage"
    )


@pytest.mark.parametrize(
    "strategy", [{"kind": "best_of_n"}, {"kind": "review_refine", "keep": 1, "rounds": 3}]
)
def test_a_stored_team_spec_reloads_as_written(strategy: dict[str, Any]) -> None:
    # A run stores its spec with every field written out; re-runs and forks read it back.
    spec = TeamSpec.model_validate(
        {
            "name": "t",
            "agents": [{"name": "solver", "role": "solver", "goal": "answer"}],
            "verifiers": {"c": {"kind": "answer_match"}},
            "topology": {
                "kind": "pipeline",
                "stages": [{"agent": "solver", "verifier": "c", "strategy": strategy}],
            },
        }
    )
    assert TeamSpec.model_validate(spec.dump()).dump() == spec.dump()
