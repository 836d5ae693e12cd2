"""Test-time strategies inside a pipeline: concurrent drawing, first_finish, adaptive n."""

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
from mascope.models import ChatRequest, ScriptedModel
from mascope.traces import TraceStore

from ..test_cli import assert_one_line_error


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "runs.db"


def selection(db: Path, run_id: str) -> Any:
    return next(s for s in TraceStore(db).steps(run_id) if s.data.get("event") == "selection")


def assert_dense(db: Path, run_id: str) -> None:
    indexes = [s.index for s in TraceStore(db).steps(run_id)]
    assert indexes == list(range(len(indexes)))


async def test_two_scripted_model_calls_that_wait_on_each_other_both_complete(db: Path) -> None:
    first_in, second_in = asyncio.Event(), asyncio.Event()

    async def first(request: ChatRequest) -> str:
        first_in.set()
        await second_in.wait()  # drawn one after another, this would never return
        return "ANSWER: 5"

    async def second(request: ChatRequest) -> str:
        second_in.set()
        await first_in.wait()
        return "ANSWER: 5"

    team = Team(
        "m", [Agent("solver", model=ScriptedModel([first, second]))],
        stages=[{"agent": "solver", "strategy": {"kind": "self_consistency", "n": 2, "concurrency": 2}}], store=db,
    )  # fmt: skip
    result = await asyncio.wait_for(
        team.arun("2+3?"), 60
    )  # a guard against a hang, not a timing check
    assert result.answer == "ANSWER: 5"
    messages = [s for s in TraceStore(db).steps(result.run_id) if s.kind == "message"]
    assert sorted(s.data["sample"] for s in messages) == [0, 1]


def test_no_more_draws_run_at_once_than_the_stage_allows(db: Path) -> None:
    in_flight = peak = 0

    async def solver(ctx: TurnContext) -> str:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        for _ in range(3):
            await asyncio.sleep(0)
        in_flight -= 1
        return f"ANSWER: {ctx.sample % 2}"

    team = Team(
        "m", [Agent("solver", fn=solver)],
        stages=[{"agent": "solver", "strategy": {"kind": "self_consistency", "n": 7, "concurrency": 3}}], store=db,
    )  # fmt: skip
    result = team.run("?")
    assert peak == 3
    assert selection(db, result.run_id).data["samples_used"] == 7
    assert_dense(db, result.run_id)


def test_a_spent_budget_starts_no_new_draw_and_the_running_ones_finish(db: Path) -> None:
    model = ScriptedModel([f"ANSWER: {i}" for i in range(8)])
    team = Team(
        "m", [Agent("solver", model=model)],
        stages=[{"agent": "solver", "strategy": {"kind": "self_consistency", "n": 8, "concurrency": 2, "budget": {"tokens": 10}}}], store=db,
    )  # fmt: skip
    result = team.run("count " * 20)
    assert len(model.calls) == 2  # the two started together; the first to finish spent the budget
    event = selection(db, result.run_id)
    assert "budget ran out" in event.content
    assert event.data["samples_used"] == 2 and event.data["dropped"] == []


async def test_first_finish_takes_the_first_perfect_candidate_and_cancels_the_rest(
    db: Path,
) -> None:
    release = asyncio.Event()

    async def solver(ctx: TurnContext) -> str:
        if ctx.sample != 2:
            await release.wait()  # still drawing when sample 2 passes
        return f"ANSWER: {5 if ctx.sample == 2 else 4}"

    team = Team(
        "m", [Agent("solver", fn=solver)],
        stages=[{"agent": "solver", "verifier": "c", "strategy": {"kind": "best_of_n", "n": 4, "first_finish": True}}],
        verifiers={"c": lambda cand: "5" in cand}, store=db,
    )  # fmt: skip
    result = await team.arun("2+3?")
    # A draw left running would now finish and write into the finished run
    # (asyncio.run would cancel it on exit, so this needs a loop that lives on).
    release.set()
    for _ in range(10):
        await asyncio.sleep(0)
    assert result.answer == "ANSWER: 5" and result.status == "succeeded"
    store = TraceStore(db)
    steps = store.steps(result.run_id)
    assert_dense(db, result.run_id)
    assert [(s.kind, s.data.get("sample")) for s in steps] == [
        ("message", 2),
        ("verdict", 2),
        ("event", None),
    ]
    event = selection(db, result.run_id)
    assert event.data["chosen"] == 2 and event.data["dropped"] == [0, 1, 3]
    assert "samples 1, 2, 4 left out" in event.content
    assert store.get_run(result.run_id).status == "succeeded"


@pytest.mark.parametrize(
    ("kind", "verifier"),
    [("best_of_n", True), ("self_consistency", False), ("best_of_majority", True)],
)
def test_concurrent_drawing_selects_what_sequential_drawing_selects(
    tmp_path: Path, kind: str, verifier: bool
) -> None:
    answers = ["x 4", "y 7", "z 4", "w 7", "v 7", "u 4"]
    scores = [0.2, 0.6, 0.9, 0.6, 0.1, 0.9]

    async def solver(ctx: TurnContext) -> str:
        for _ in range(10 - ctx.sample):  # later samples finish first
            await asyncio.sleep(0)
        return answers[ctx.sample]

    def grade(candidate: str) -> Verdict:
        score = scores[answers.index(candidate)]
        return Verdict(passed=score > 0.5, score=score)

    seen = []
    for concurrency in (1, 6, 4):
        db = tmp_path / f"c{concurrency}.db"
        stage: dict[str, Any] = {
            "agent": "solver",
            "strategy": {
                "kind": kind,
                "n": 6,
                "extract": "last_number",
                "concurrency": concurrency,
            },
        }
        if verifier:
            stage["verifier"] = "c"
        team = Team(
            "m", [Agent("solver", fn=solver)], stages=[stage],
            verifiers={"c": grade} if verifier else {}, store=db,
        )  # fmt: skip
        result = team.run("?")
        event = selection(db, result.run_id)
        seen.append((result.answer, event.data["chosen"], event.data["votes"]))
        by_sample = {
            s.data["sample"]: s.content
            for s in TraceStore(db).steps(result.run_id)
            if s.kind == "message"
        }
        assert by_sample == dict(enumerate(answers))  # every step says whose it is
    assert seen[0] == seen[1] == seen[2]


def vote_team(db: Path, answers: list[int], **strategy: Any) -> Team:
    def solver(ctx: TurnContext) -> str:
        return f"the answer is {answers[ctx.sample]}"

    return Team(
        "m", [Agent("solver", fn=solver)],
        stages=[{"agent": "solver", "strategy": {"kind": "self_consistency", "extract": "last_number", **strategy}}], store=db,
    )  # fmt: skip


@pytest.mark.parametrize("concurrency", [1, 4])
def test_self_consistency_stops_at_the_sample_where_the_vote_settles(
    db: Path, concurrency: int
) -> None:
    # After k samples the split leader:runner-up is 1:0, 2:0, 2:1, 3:1, 4:1, 5:1, 6:1;
    # P(Binomial(a+b+1, 1/2) <= a) is 3/4, 7/8, 11/16, 26/32, 57/64, 120/128 = 0.9375,
    # then 247/256 = 0.965 >= 0.95 at the 7th. The runner-up could still catch up
    # (6 <= 1 + 13 left), so it is the posterior that settles it.
    answers = [5, 5, 7, 5, 5, 5, 5] + [7] * 13
    team = vote_team(db, answers, n=20, stop_confidence=0.95, concurrency=concurrency)
    result = team.run("?")
    assert result.answer == "the answer is 5"
    event = selection(db, result.run_id)
    assert event.data["samples_used"] == 7 and event.data["samples"] == list(range(7))
    assert event.data["votes"] == {"5": 6, "7": 1} and event.data["settled"] is True
    assert "chose candidate 1, 7 of 20 used (settled early)" in event.content
    drawn = {s.data["sample"] for s in TraceStore(db).steps(result.run_id) if s.kind == "message"}
    assert set(range(7)) <= drawn and len(drawn) < 20
    assert event.data["dropped"] == sorted(drawn - set(range(7)))


def test_self_consistency_stops_when_the_runner_up_cannot_catch_up(db: Path) -> None:
    # 3:0 with 2 of 5 left: no way back for any other answer, though 15/16 < 0.99.
    team = vote_team(db, [5, 5, 5, 7, 7], n=5, stop_confidence=0.99, concurrency=1)
    result = team.run("?")
    assert selection(db, result.run_id).data["samples_used"] == 3


def test_without_stop_confidence_every_sample_is_drawn(db: Path) -> None:
    team = vote_team(db, [5] * 6, n=6)
    result = team.run("?")
    event = selection(db, result.run_id)
    assert event.data["samples_used"] == 6 and event.data["settled"] is False


def test_best_of_n_with_graded_scores_stops_at_the_confidence_share_of_n(db: Path) -> None:
    # The best of n exchangeable draws is among the first k with probability k/n.
    def solver(ctx: TurnContext) -> str:
        return f"candidate {ctx.sample}"

    team = Team(
        "m", [Agent("solver", fn=solver)],
        stages=[{"agent": "solver", "verifier": "c", "strategy": {"kind": "best_of_n", "n": 10, "stop_confidence": 0.75, "concurrency": 1}}],
        verifiers={"c": lambda cand: Verdict(passed=True, score=0.5)}, store=db,
    )  # fmt: skip
    result = team.run("?")
    assert selection(db, result.run_id).data["samples_used"] == 8  # ceil(0.75 * 10)


def test_the_best_of_n_share_is_not_thrown_off_by_float_rounding(db: Path) -> None:
    team = Team(
        "m", [Agent("solver", fn=lambda ctx: f"candidate {ctx.sample}")],
        stages=[{"agent": "solver", "verifier": "c", "strategy": {"kind": "best_of_n", "n": 25, "stop_confidence": 0.56, "concurrency": 1}}],
        verifiers={"c": lambda cand: Verdict(passed=False, score=0.3)}, store=db,
    )  # fmt: skip
    result = team.run("?")
    assert selection(db, result.run_id).data["samples_used"] == 14  # 0.56 * 25 = 14 exactly


def test_a_team_file_with_the_new_fields_runs_end_to_end(tmp_path: Path) -> None:
    replies = tmp_path / "replies.json"
    replies.write_text(json.dumps(["so 5"] * 5))
    team_file = tmp_path / "team.yaml"
    team_file.write_text(
        yaml.safe_dump(
            {
                "name": "voters",
                "model": f"scripted:{replies}",
                "agents": [{"name": "solver", "role": "solver", "goal": "answer"}],
                "topology": {
                    "kind": "pipeline",
                    "stages": [
                        {
                            "agent": "solver",
                            "strategy": {
                                "kind": "self_consistency",
                                "n": 5,
                                "extract": "last_number",
                                "concurrency": 2,
                                "stop_confidence": 0.9,
                            },
                        }
                    ],
                },
            }
        )
    )
    db = tmp_path / "r.db"
    team = Team.from_yaml(team_file, store=db)
    result = team.run("2+3?")
    assert result.answer == "so 5" and result.status == "succeeded"
    event = selection(db, result.run_id)
    # 1:0, 2:0 give 3/4 and 7/8; 3:0 gives 15/16 >= 0.9. Samples 0-1 then 2-3 run together.
    assert event.data["samples_used"] == 3 and event.data["dropped"] == [3]
    assert_dense(db, result.run_id)


@pytest.mark.parametrize(
    ("strategy", "needles"),
    [
        (
            {"kind": "best_of_n", "n": 3, "stop_confidence": 1.0},
            ["topology.stages[0].strategy.stop_confidence", "less than 1"],
        ),
        (
            {"kind": "best_of_n", "n": 3, "stop_confidence": 0.5},
            ["topology.stages[0].strategy.stop_confidence", "more than 0.5"],
        ),
        (
            {"kind": "best_of_n", "n": 3, "concurrency": 0},
            ["topology.stages[0].strategy.concurrency", "at least 1"],
        ),
        (
            {"kind": "best_of_majority", "n": 3, "first_finish": True},
            ["topology.stages[0].strategy", "first_finish works only with kind best_of_n"],
        ),
        (
            {"kind": "single", "stop_confidence": 0.9},
            ["topology.stages[0].strategy", "stop_confidence needs several samples"],
        ),
    ],
)
def test_impossible_strategy_settings_are_refused_before_any_model_loads(
    tmp_path: Path, strategy: dict[str, Any], needles: list[str]
) -> None:
    team_file = tmp_path / "bad.yaml"
    team_file.write_text(
        yaml.safe_dump(
            {
                "name": "t",
                "model": "local",  # never loaded: the file is refused first
                "agents": [{"name": "solver", "role": "solver", "goal": "answer"}],
                "verifiers": {"c": {"kind": "answer_match"}},
                "topology": {
                    "kind": "pipeline",
                    "stages": [{"agent": "solver", "verifier": "c", "strategy": strategy}],
                },
            }
        )
    )
    db = tmp_path / "r.db"
    result = CliRunner().invoke(app, ["run", str(team_file), "--task", "x", "--db", str(db)])
    assert_one_line_error(result, *needles)
    assert not db.exists()


async def test_a_draw_that_fails_cancels_the_others_and_the_run_ends_in_error(db: Path) -> None:
    release = asyncio.Event()

    async def solver(ctx: TurnContext) -> str:
        if ctx.sample == 1:
            raise RuntimeError("tool server went away")
        await release.wait()
        return "ANSWER: 5"

    team = Team(
        "m", [Agent("solver", fn=solver)],
        stages=[{"agent": "solver", "strategy": {"kind": "self_consistency", "n": 3}}], store=db,
    )  # fmt: skip
    result = await team.arun("?")
    release.set()  # a draw left running would now finish and record its message
    for _ in range(10):
        await asyncio.sleep(0)
    assert result.status == "error"
    assert TraceStore(db).get_run(result.run_id).status == "error"
    assert_dense(db, result.run_id)
    assert not [s for s in TraceStore(db).steps(result.run_id) if s.kind == "message"]


@pytest.mark.parametrize("concurrency", [1, 3])
def test_each_candidate_sees_the_conversation_from_before_the_draws(
    db: Path, concurrency: int
) -> None:
    def solver(ctx: TurnContext) -> str:
        seen = [e.agent for e in ctx.transcript if e.kind == "message"]
        return f"{ctx.sample} saw {', '.join(seen)}"

    team = Team(
        "m", [Agent("planner", fn=lambda ctx: "plan"), Agent("solver", fn=solver)],
        stages=["planner", {"agent": "solver", "strategy": {"kind": "self_consistency", "n": 3, "concurrency": concurrency}}],
        store=db,
    )  # fmt: skip
    result = team.run("?")
    messages = [s.content for s in TraceStore(db).steps(result.run_id) if s.kind == "message"]
    assert sorted(messages[1:]) == ["0 saw planner", "1 saw planner", "2 saw planner"]
