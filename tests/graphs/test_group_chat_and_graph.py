"""Group chats (round robin, manager), explicit graphs, and their termination rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from mascope import Agent, Team
from mascope.agents import TurnContext
from mascope.models import ScriptedModel
from mascope.traces import TraceStore


def says(text: str):  # type: ignore[no-untyped-def]
    return lambda ctx: text


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "chat.db"


def test_round_robin_until_max_rounds(db: Path) -> None:
    team = Team(
        "chat",
        [Agent("a", fn=says("hi from a")), Agent("b", fn=says("hi from b"))],
        topology="group_chat",
        termination={"max_rounds": 3},
        store=db,
    )
    result = team.run("chat")
    assert (result.status, result.termination_reason) == ("failed", "max_rounds")
    assert [s.agent for s in TraceStore(db).steps(result.run_id)] == ["a", "b"] * 3


def test_stop_phrase_ends_the_chat_with_the_answer(db: Path) -> None:
    def closer(ctx: TurnContext) -> str:
        return "FINAL ANSWER: 42" if len(ctx.transcript) >= 2 else "thinking"

    team = Team(
        "chat",
        [Agent("a", fn=says("idea")), Agent("b", fn=closer)],
        topology="group_chat",
        termination={"max_rounds": 5, "stop_phrase": "FINAL ANSWER:"},
        store=db,
    )
    result = team.run("chat")
    assert (result.status, result.answer, result.termination_reason) == (
        "succeeded",
        "42",
        "stop_phrase",
    )
    assert result.step_count == 4


def test_agents_see_the_conversation(db: Path) -> None:
    seen: list[list[str]] = []

    def listener(ctx: TurnContext) -> str:
        seen.append([f"{e.agent}:{e.content}" for e in ctx.transcript])
        return "ok"

    Team(
        "chat",
        [Agent("a", fn=says("one")), Agent("b", fn=listener)],
        topology="group_chat",
        termination={"max_rounds": 2},
        store=db,
    ).run("t")
    assert seen == [["a:one"], ["a:one", "b:ok", "a:one"]]


def test_function_manager_picks_speakers(db: Path) -> None:
    order = iter(["b", "b", "nobody", "a"])
    team = Team(
        "chat", [Agent("boss", fn=lambda ctx: next(order)), Agent("a", fn=says("from a")), Agent("b", fn=says("from b"))],
        topology="group_chat", speaker_selection="manager", manager="boss", termination={"max_steps": 4}, store=db,
    )  # fmt: skip
    result = team.run("t")
    steps = TraceStore(db).steps(result.run_id)
    speakers = [s.agent for s in steps if s.kind == "message" and s.agent != "boss"]
    assert speakers == ["b", "b", "a", "a"]  # 'nobody' falls back to round robin, and says so
    assert any(s.kind == "event" and "not a speaker" in s.content for s in steps)
    assert result.termination_reason == "max_steps"


def test_llm_manager_chooses_among_valid_names(db: Path) -> None:
    manager_model = ScriptedModel(['{"next_speaker": "critic", "reason": "needs review"}'])
    team = Team(
        "chat", [Agent("mgr", model=manager_model), Agent("writer", fn=says("draft")), Agent("critic", fn=says("FINAL ANSWER: fine"))],
        topology="group_chat", speaker_selection="manager", manager="mgr", termination={"max_rounds": 2, "stop_phrase": "FINAL ANSWER:"}, store=db,
    )  # fmt: skip
    result = team.run("write")
    assert result.answer == "fine"
    schema = manager_model.calls[0].response_schema
    assert schema is not None and schema["properties"]["next_speaker"]["enum"] == [
        "writer",
        "critic",
    ]
    first = TraceStore(db).steps(result.run_id)[0]
    assert first.agent == "mgr" and first.content == "next speaker: critic (needs review)"


def test_chat_verifier_rejects_then_accepts(db: Path) -> None:
    answers = iter(["FINAL ANSWER: 6", "FINAL ANSWER: 5"])
    team = Team(
        "chat", [Agent("a", fn=lambda ctx: next(answers))], topology="group_chat", chat_verifier="v",
        verifiers={"v": lambda c: c.strip() == "5"}, termination={"max_rounds": 5, "stop_phrase": "FINAL ANSWER:"}, store=db,
    )  # fmt: skip
    result = team.run("2+3")
    assert (result.answer, result.termination_reason) == ("5", "verifier_passed")
    assert [s.kind for s in TraceStore(db).steps(result.run_id)] == [
        "message",
        "verdict",
        "message",
        "verdict",
    ]


def test_explicit_graph_with_conditional_edges(db: Path) -> None:
    drafts = iter(["draft 1", "draft 2 APPROVED"])
    team = Team(
        "g", [Agent("writer", fn=lambda ctx: next(drafts)), Agent("editor", fn=lambda ctx: ctx.last_output or "")],
        topology="graph", start="write",
        nodes=[{"name": "write", "agent": "writer"}, {"name": "edit", "agent": "editor"}],
        edges=[{"from": "write", "to": "edit"}, {"from": "edit", "when": "contains:APPROVED", "to": "END"}, {"from": "edit", "to": "write"}],
        termination={"max_steps": 10}, store=db,
    )  # fmt: skip
    result = team.run("write")
    assert (result.status, result.termination_reason, result.answer) == (
        "succeeded",
        "end",
        "draft 2 APPROVED",
    )
    assert [s.agent for s in TraceStore(db).steps(result.run_id)] == [
        "writer",
        "editor",
        "writer",
        "editor",
    ]


def test_graph_verifier_node_routes_on_the_verdict(db: Path) -> None:
    attempts = iter(["ANSWER: 6", "ANSWER: 5"])
    team = Team(
        "g", [Agent("solver", fn=lambda ctx: next(attempts))], topology="graph", start="solve",
        nodes=[{"name": "solve", "agent": "solver"}, {"name": "check", "verifier": "five", "candidate_from": "solver"}],
        edges=[{"from": "solve", "to": "check"}, {"from": "check", "when": "passed", "to": "END"}, {"from": "check", "when": "failed", "to": "solve"}],
        verifiers={"five": lambda c: "5" in c}, termination={"max_steps": 10}, store=db,
    )  # fmt: skip
    result = team.run("2+3")
    assert result.answer == "ANSWER: 5" and result.step_count == 4


def test_unbounded_cycle_is_stopped_by_max_steps(db: Path) -> None:
    team = Team(
        "loop", [Agent("a", fn=says("again"))], topology="graph", start="n",
        nodes=[{"name": "n", "agent": "a"}], edges=[{"from": "n", "to": "n"}], termination={"max_steps": 7}, store=db,
    )  # fmt: skip
    result = team.run("loop")
    assert (result.termination_reason, result.step_count, result.status) == (
        "max_steps",
        7,
        "failed",
    )


def test_seconds_budget(db: Path) -> None:
    import time

    def slow(ctx: TurnContext) -> str:
        time.sleep(0.05)
        return "tick"

    team = Team(
        "slow",
        [Agent("a", fn=slow)],
        topology="group_chat",
        termination={"max_rounds": 1000, "budget": {"seconds": 0.2}},
        store=db,
    )
    result = team.run("t")
    assert result.termination_reason == "budget_seconds" and 3 <= result.step_count <= 6


def test_a_yaml_group_chat_speaks_in_its_topologys_order_and_only_those_agents(
    tmp_path: Path,
) -> None:
    # The team file lists three agents; the chat names two of them, in another order.
    (tmp_path / "team.yaml").write_text(
        """
name: chat
agents:
  - {name: a, function: "tests.graphs.helpers:echo_task"}
  - {name: b, function: "tests.graphs.helpers:echo_task"}
  - {name: c, function: "tests.graphs.helpers:echo_task"}
topology: {kind: group_chat, agents: [c, a]}
termination: {max_rounds: 2}
"""
    )
    team = Team.from_yaml(tmp_path / "team.yaml", store=tmp_path / "chat.db")
    result = team.run("chat")
    steps = TraceStore(tmp_path / "chat.db").steps(result.run_id)
    assert [s.agent for s in steps if s.kind == "message"] == ["c", "a", "c", "a"]
