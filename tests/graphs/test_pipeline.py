"""Pipelines: self-correction, strategies, termination reasons, recording."""

from __future__ import annotations

from pathlib import Path

import pytest

from mascope import Agent, Team
from mascope.agents import AnswerMatch, TurnContext, Verdict
from mascope.models import ScriptedModel
from mascope.traces import TraceStore

from .helpers import always_wrong, is_five, wrong_then_right


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "runs.db"


def test_self_correction_fixes_the_answer_on_round_two(db: Path) -> None:
    team = Team(
        "math", [Agent("solver", fn=wrong_then_right)],
        stages=[{"agent": "solver", "verifier": "check", "max_rounds": 3}], verifiers={"check": is_five}, store=db,
    )  # fmt: skip
    result = team.run("What is 2 + 3?", ground_truth="5")
    assert (result.status, result.answer, result.termination_reason) == (
        "succeeded",
        "ANSWER: 5",
        "verifier_passed",
    )
    steps = TraceStore(db).steps(result.run_id)
    assert [(s.agent, s.kind) for s in steps] == [
        ("solver", "message"),
        ("check", "verdict"),
        ("solver", "message"),
        ("check", "verdict"),
    ]
    assert steps[1].content.startswith("FAILED") and "recount" in steps[1].content
    assert all(s.checkpoint_id for s in steps)
    assert len({s.checkpoint_id for s in steps}) == 4  # one checkpoint before each node


def test_the_feedback_reaches_the_agent(db: Path) -> None:
    seen: list[str | None] = []

    def solver(ctx: TurnContext) -> str:
        seen.append(ctx.feedback)
        return wrong_then_right(ctx)

    Team(
        "m",
        [Agent("solver", fn=solver)],
        stages=[{"agent": "solver", "verifier": "c"}],
        verifiers={"c": is_five},
        store=db,
    ).run("2+3?")
    assert seen == [None, "2 + 3 is not 6; recount"]


def test_verifier_that_never_passes_ends_the_run_failed(db: Path) -> None:
    team = Team(
        "m",
        [Agent("solver", fn=always_wrong)],
        stages=[{"agent": "solver", "verifier": "c", "max_rounds": 2}],
        verifiers={"c": is_five},
        store=db,
    )
    result = team.run("2+3?")
    assert (result.status, result.termination_reason, result.step_count) == (
        "failed",
        "verifier_failed",
        4,
    )


def test_wrong_answer_against_ground_truth_fails_a_normal_run(db: Path) -> None:
    team = Team("m", [Agent("solver", fn=always_wrong)], store=db)
    assert team.run("2+3?").status == "succeeded"  # no ground truth: ended normally
    result = team.run("2+3?", ground_truth="5")
    assert (result.status, result.termination_reason) == ("failed", "end")
    assert TraceStore(db).get_run(result.run_id).metadata_["answer_correct"] is False


def test_retry_from_an_earlier_stage(db: Path) -> None:
    calls: list[str] = []

    def coder(ctx: TurnContext) -> str:
        calls.append("coder")
        return "def f():\n    return 2" if ctx.feedback else "def f():\n    return 1"

    team = Team(
        "code", [Agent("coder", fn=coder), Agent("tester", fn=lambda ctx: "def test_f():\n    assert f() == 2")],
        stages=["coder", {"agent": "tester", "verifier": "tests", "retry_from": "coder"}],
        verifiers={"tests": __import__("mascope.agents", fromlist=["CodeTests"]).CodeTests(code_from="coder", tests_from="tester")},
        store=db,
    )  # fmt: skip
    result = team.run("write f returning 2")
    assert result.status == "succeeded"
    assert calls == ["coder", "coder"]
    verdicts = [s for s in TraceStore(db).steps(result.run_id) if s.kind == "verdict"]
    assert [v.data["passed"] for v in verdicts] == [False, True]
    assert "assert f() == 2" in verdicts[0].content or "test_f failed" in verdicts[0].content


def test_best_of_n_keeps_the_passing_candidate(db: Path) -> None:
    answers = iter(["ANSWER: 4", "ANSWER: 5", "ANSWER: 9"])
    # One draw at a time: the third is never started.
    team = Team(
        "m", [Agent("solver", fn=lambda ctx: next(answers))],
        stages=[{"agent": "solver", "verifier": "c", "strategy": {"kind": "best_of_n", "n": 3, "concurrency": 1}}], verifiers={"c": is_five}, store=db,
    )  # fmt: skip
    result = team.run("2+3?")
    assert result.answer == "ANSWER: 5" and result.status == "succeeded"
    kinds = [s.kind for s in TraceStore(db).steps(result.run_id)]
    assert kinds == [
        "message",
        "verdict",
        "message",
        "verdict",
        "event",
    ]  # stopped at the perfect one


def test_self_consistency_takes_the_majority(db: Path) -> None:
    answers = iter(["so 7", "I think 5", "it is 5", "5!", "3"])
    team = Team(
        "m", [Agent("solver", fn=lambda ctx: next(answers))],
        stages=[{"agent": "solver", "strategy": {"kind": "self_consistency", "n": 5, "extract": "last_number"}}], store=db,
    )  # fmt: skip
    result = team.run("2+3?")
    assert result.answer == "I think 5"
    event = next(s for s in TraceStore(db).steps(result.run_id) if s.kind == "event")
    assert event.data["votes"] == {"7": 1, "5": 3, "3": 1}


def test_best_of_majority_votes_among_verified(db: Path) -> None:
    answers = iter(["x 4", "y 5", "z 4", "w 4"])
    team = Team(
        "m", [Agent("solver", fn=lambda ctx: next(answers))],
        stages=[{"agent": "solver", "verifier": "c", "strategy": {"kind": "best_of_majority", "n": 4, "extract": "last_number"}}],
        verifiers={"c": lambda cand: "5" in cand or "x" in cand}, store=db,
    )  # fmt: skip
    result = team.run("2+3?")
    assert result.answer in (
        "x 4",
        "y 5",
    )  # only these two passed; 4 and 5 tie 1-1 and the earlier wins
    assert result.answer == "x 4"


def test_strategy_budget_stops_sampling(db: Path) -> None:
    model = ScriptedModel(["ANSWER: 1", "ANSWER: 2", "ANSWER: 3", "ANSWER: 4"])
    team = Team(
        "m", [Agent("solver", model=model)],
        stages=[{"agent": "solver", "strategy": {"kind": "self_consistency", "n": 4, "budget": {"tokens": 10}, "concurrency": 1}}], store=db,
    )  # fmt: skip
    result = team.run("count " * 20)
    assert len(model.calls) < 4
    event = next(s for s in TraceStore(db).steps(result.run_id) if s.kind == "event")
    assert "budget ran out" in event.content


def test_max_steps_and_token_budget(db: Path) -> None:
    team = Team(
        "m",
        [Agent("solver", fn=always_wrong)],
        stages=[{"agent": "solver", "verifier": "c", "max_rounds": 50}],
        verifiers={"c": is_five},
        termination={"max_steps": 5},
        store=db,
    )
    result = team.run("2+3?")
    assert (result.status, result.termination_reason) == ("failed", "max_steps")
    model = ScriptedModel(["long answer " * 30] * 10)
    team = Team(
        "m",
        [Agent("solver", model=model)],
        stages=[{"agent": "solver", "verifier": "c", "max_rounds": 10}],
        verifiers={"c": is_five},
        termination={"budget": {"tokens": 200}},
        store=db,
    )
    result = team.run("2+3?")
    assert (result.status, result.termination_reason) == ("failed", "budget_tokens")
    assert result.total_tokens >= 200


def test_final_answer_tool_ends_the_run(db: Path) -> None:
    from mascope.models import ScriptedReply, ToolCall

    model = ScriptedModel(
        [
            ScriptedReply(
                tool_calls=[ToolCall(id="1", name="final_answer", arguments={"answer": "5"})]
            )
        ]
    )
    team = Team(
        "m",
        [Agent("solver", model=model), Agent("never", fn=always_wrong)],
        termination={"final_answer_tool": True},
        store=db,
    )
    result = team.run("2+3?")
    assert (result.status, result.answer, result.termination_reason) == (
        "succeeded",
        "5",
        "final_answer",
    )
    assert [s.kind for s in TraceStore(db).steps(result.run_id)] == ["model_call", "message"]


def test_llm_agents_record_model_details(db: Path) -> None:
    model = ScriptedModel(["The answer is 5."])
    result = Team("m", [Agent("solver", role="solver", model=model)], store=db).run("2+3?")
    (step,) = TraceStore(db).steps(result.run_id)
    assert step.model == "scripted" and step.input_tokens and step.output_tokens
    system, user = model.calls[0].messages
    assert "You are solver, the solver" in (system.content or "")
    assert user.content is not None and "Task: 2+3?" in user.content
    assert result.input_tokens == step.input_tokens


def test_a_model_error_mid_run_ends_in_error_keeping_steps(db: Path) -> None:
    from mascope.errors import EndpointError

    model = ScriptedModel(
        ["first", EndpointError("http://x/v1 kept failing after 5 attempts (HTTP 500: boom)")]
    )
    team = Team("m", [Agent("a", model=model), Agent("b", model=model)], store=db)
    result = team.run("go")
    assert result.status == "error" and "kept failing" in (result.error or "")
    store = TraceStore(db)
    steps = store.steps(result.run_id)
    assert [s.kind for s in steps] == ["message", "error"] and steps[0].content == "first"
    assert store.get_run(result.run_id).metadata_["error"] == result.error


def test_verifier_kinds_inside_a_team(db: Path) -> None:
    team = Team(
        "m", [Agent("solver", fn=lambda ctx: "The total is 1,000.")],
        stages=[{"agent": "solver", "verifier": "v"}], verifiers={"v": AnswerMatch(extract="last_number")}, store=db,
    )  # fmt: skip
    assert team.run("sum", ground_truth="1000").status == "succeeded"
    assert team.run("sum", ground_truth="999").termination_reason == "verifier_failed"


async def test_async_run(db: Path) -> None:
    team = Team(
        "m",
        [Agent("solver", fn=wrong_then_right)],
        stages=[{"agent": "solver", "verifier": "c"}],
        verifiers={"c": is_five},
        store=db,
    )
    result = await team.arun("2+3?")
    assert result.succeeded
    with pytest.raises(Exception, match="await arun"):
        team.run("2+3?")


def test_verdict_objects_from_functions(db: Path) -> None:
    team = Team(
        "m",
        [Agent("s", fn=lambda ctx: "x")],
        stages=[{"agent": "s", "verifier": "v"}],
        verifiers={"v": lambda c, ctx: Verdict(passed=True, score=0.7, feedback="ok")},
        store=db,
    )
    result = team.run("t")
    verdict = next(s for s in TraceStore(db).steps(result.run_id) if s.kind == "verdict")
    assert verdict.data["score"] == 0.7 and verdict.content == "PASSED (score 0.70): ok"


def test_an_in_memory_store_keeps_the_run_and_writes_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = TraceStore("sqlite://")
    team = Team(
        "math", [Agent("solver", fn=wrong_then_right)],
        stages=[{"agent": "solver", "verifier": "check", "max_rounds": 3}], verifiers={"check": is_five}, store=store,
    )  # fmt: skip
    result = team.run("What is 2 + 3?", ground_truth="5")
    assert result.status == "succeeded"
    assert [r.id for r in store.list_runs()] == [result.run_id]
    assert len(store.steps(result.run_id)) == 4
    assert list(tmp_path.iterdir()) == []
