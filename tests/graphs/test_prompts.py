"""What an agent is told on its turn, and how it says it is done, in every topology."""

from __future__ import annotations

from pathlib import Path

import pytest

from mascope import Agent, Team
from mascope._vocabulary import EVENT_NAMES, STEP_KINDS, TERMINATION_REASONS
from mascope.agents import TurnContext
from mascope.traces import TraceStore


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "prompts.db"


def recording(prompts: list[str], *answers: str):  # type: ignore[no-untyped-def]
    """A function agent that notes each prompt and gives `answers` in turn (the last repeats)."""

    def agent(ctx: TurnContext) -> str:
        prompts.append(ctx.prompt)
        return answers[min(len(prompts), len(answers)) - 1]

    return agent


def test_pipeline_prompt_shows_earlier_stages_and_the_rejection(db: Path) -> None:
    prompts: list[str] = []
    team = Team(
        "p", [Agent("reader", fn=lambda ctx: "2 and 3"), Agent("solver", fn=recording(prompts, "6", "5"))],
        stages=["reader", {"agent": "solver", "verifier": "five", "max_rounds": 2}],
        verifiers={"five": lambda c: (c.strip() == "5", "")}, store=db,
    )  # fmt: skip
    result = team.run("add them")
    assert (result.answer, result.termination_reason) == ("5", "verifier_passed")
    assert prompts == [
        "Task: add them\n\nreader said:\n2 and 3\n\nNow do your part as solver.",
        "Task: add them\n\nreader said:\n2 and 3\n\nYour previous answer was:\n6\n\n"
        "It was rejected: it did not pass verification\nWrite a corrected answer.\n\n"
        "Now do your part as solver.",
    ]


def test_a_pipeline_ends_after_its_last_stage_not_on_the_stop_phrase(db: Path) -> None:
    team = Team(
        "p", [Agent("a", fn=lambda ctx: "DONE: early"), Agent("b", fn=lambda ctx: "late")],
        stages=["a", "b"], termination={"stop_phrase": "DONE:"}, store=db,
    )  # fmt: skip
    result = team.run("t")
    assert (result.answer, result.termination_reason) == ("late", "end")


def test_group_chat_prompt_and_a_failed_verdict_without_feedback(db: Path) -> None:
    prompts: list[str] = []
    team = Team(
        "chat", [Agent("a", fn=recording(prompts, "FINAL: 6", "FINAL: 5"))], topology="group_chat",
        chat_verifier="v", verifiers={"v": lambda c: (c == "5", "")},
        termination={"max_rounds": 3, "stop_phrase": "FINAL:"}, store=db,
    )  # fmt: skip
    result = team.run("2+3")
    assert (result.answer, result.termination_reason) == ("5", "verifier_passed")
    # The chat passes on what the verifier said, and this one said nothing.
    assert prompts == [
        "Task: 2+3\n\nConversation so far:\n(you speak first)\n\nYour turn, a.",
        "Task: 2+3\n\nConversation so far:\na: FINAL: 6\n\nv: FAILED (score 0.00)\n\nYour turn, a.",
    ]


def test_group_chat_without_a_verifier_ends_on_the_stop_phrase(db: Path) -> None:
    team = Team(
        "chat", [Agent("a", fn=lambda ctx: "thinking"), Agent("b", fn=lambda ctx: "so FINAL: 42")],
        topology="group_chat", termination={"max_rounds": 3, "stop_phrase": "final:"}, store=db,
    )  # fmt: skip
    result = team.run("t")
    assert (result.answer, result.termination_reason, result.step_count) == ("42", "stop_phrase", 2)


def test_graph_prompt_shows_the_conversation_and_the_rejection(db: Path) -> None:
    prompts: list[str] = []
    team = Team(
        "g", [Agent("solver", fn=recording(prompts, "ANSWER: 6", "ANSWER: 5"))], topology="graph", start="solve",
        nodes=[{"name": "solve", "agent": "solver"}, {"name": "check", "verifier": "five", "candidate_from": "solver"}],
        edges=[{"from": "solve", "to": "check"}, {"from": "check", "when": "passed", "to": "END"}, {"from": "check", "when": "failed", "to": "solve"}],
        verifiers={"five": lambda c: ("5" in c, "" if "5" in c else "recount")}, termination={"max_steps": 10}, store=db,
    )  # fmt: skip
    result = team.run("2+3")
    assert (result.answer, result.termination_reason) == ("ANSWER: 5", "end")
    assert prompts == [
        "Task: 2+3\n\nNow do your part as solver.",
        "Task: 2+3\n\nConversation so far:\nsolver: ANSWER: 6\n\nfive: FAILED (score 0.00): recount\n\n"
        "Your previous answer was:\nANSWER: 6\n\nIt was rejected: recount\n"
        "Write a corrected answer.\n\nNow do your part as solver.",
    ]


def test_graph_ends_on_the_stop_phrase(db: Path) -> None:
    team = Team(
        "g", [Agent("a", fn=lambda ctx: "STOP here it is")], topology="graph", start="n",
        nodes=[{"name": "n", "agent": "a"}], edges=[{"from": "n", "to": "n"}],
        termination={"max_steps": 5, "stop_phrase": "STOP"}, store=db,
    )  # fmt: skip
    result = team.run("t")
    assert (result.answer, result.termination_reason, result.step_count) == (
        "here it is",
        "stop_phrase",
        1,
    )


def test_what_runs_record_is_in_the_vocabulary(db: Path) -> None:
    """Termination reasons, step kinds and event names a run writes are the declared ones."""
    teams = [
        Team(
            "p", [Agent("s", fn=lambda ctx: "6")],
            stages=[{"agent": "s", "verifier": "v", "max_rounds": 2, "strategy": {"kind": "best_of_n", "n": 2}}],
            verifiers={"v": lambda c: c == "5"}, store=db,
        ),
        Team(
            "chat", [Agent("a", fn=lambda ctx: "x" * 400)], topology="group_chat", context_chars=500,
            termination={"max_rounds": 4}, store=db,
        ),
    ]  # fmt: skip
    for team in teams:
        result = team.run("t")
        assert result.termination_reason in TERMINATION_REASONS
        steps = TraceStore(db).steps(result.run_id)
        assert {s.kind for s in steps} <= set(STEP_KINDS)
        events = {(s.data or {}).get("event") for s in steps if s.kind == "event"}
        assert events and events <= set(EVENT_NAMES)
