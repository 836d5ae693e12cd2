"""Pauses for a person: a run stops `paused` with a question and goes on with the answer."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from mascope.agents import Agent, TurnContext
from mascope.errors import ConfigError, UserError
from mascope.graphs import HumanVerifier, Team, ask_human, load_team_file
from mascope.traces import TraceStore

from .helpers import asks_for_a_name, repeats_human

ROOT = Path(__file__).resolve().parents[2]
HELPERS = "tests.graphs.helpers"


def _writer(ctx: TurnContext) -> str:
    return "a draft"


def _shape(team: Team, run_id: str) -> list[tuple[str, str, str]]:
    return [(s.agent, s.kind, s.content) for s in team.store.steps(run_id)]


def test_pause_after_a_stage_then_the_reply_reaches_the_next_agent(tmp_path: Path) -> None:
    team = Team(
        "review",
        [Agent("writer", fn=_writer), Agent("editor", fn=repeats_human)],
        stages=[
            {"agent": "writer", "interrupt": "after", "prompt": "Approve the draft?"},
            "editor",
        ],
        store=tmp_path / "r.db",
    )
    first = team.run("write it")
    assert (first.status, first.paused, first.prompt, first.answer) == (
        "paused", True, "Approve the draft?", None,
    )  # fmt: skip
    assert _shape(team, first.run_id) == [
        ("writer", "message", "a draft"),
        ("runtime", "event", "Approve the draft?"),
    ]
    assert team.store.steps(first.run_id)[1].data["event"] == "interrupt"

    done = team.resume(first.run_id, input="shorter, please")
    assert done.status == "succeeded" and done.run_id == first.run_id
    assert done.answer == "editor heard 'shorter, please'; last human: shorter, please"
    assert _shape(team, first.run_id) == [
        ("writer", "message", "a draft"),  # the writer's turn is not redone
        ("runtime", "event", "Approve the draft?"),
        ("human", "message", "shorter, please"),
        ("editor", "message", done.answer),
    ]
    assert [s.index for s in done.steps] == [0, 1, 2, 3]


def test_yaml_pause_before_a_graph_node_and_a_human_verifier(tmp_path: Path) -> None:
    spec = {
        "name": "gated",
        "agents": [
            {"name": "solver", "function": f"{HELPERS}:wrong_then_right"},
            {"name": "reporter", "function": f"{HELPERS}:repeats_human"},
        ],
        "verifiers": {"person": {"kind": "human", "prompt": "Is the sum right?"}},
        "topology": {
            "kind": "graph",
            "start": "solve",
            "nodes": [
                {"name": "solve", "agent": "solver"},
                {"name": "check", "verifier": "person"},
                {"name": "report", "agent": "reporter", "interrupt": "before"},
            ],
            "edges": [
                {"from": "solve", "to": "check"},
                {"from": "check", "to": "report", "when": "passed"},
                {"from": "check", "to": "solve", "when": "failed"},
            ],
        },
        "termination": {"max_steps": 10},
    }
    path = tmp_path / "gated.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    team = Team.from_yaml(path, store=tmp_path / "g.db")

    first = team.run("What is 2 + 3?")
    assert first.paused and first.prompt == "Is the sum right?\n\nAnswer to check:\nANSWER: 6"
    second = team.resume(first.run_id, input="no: 2 + 3 is 5")
    assert second.paused and second.prompt.endswith("ANSWER: 5")
    third = team.resume(first.run_id, input="yes")
    assert third.paused and third.prompt.startswith("Paused before reporter.")
    done = team.resume(first.run_id, input="Send it to Ada")
    assert done.status == "succeeded"
    assert done.answer == "reporter heard 'Send it to Ada'; last human: Send it to Ada"
    kinds = [(s.agent, s.kind, s.content.splitlines()[0]) for s in done.steps]
    assert kinds == [
        ("solver", "message", "ANSWER: 6"),
        ("person", "event", "Is the sum right?"),
        ("human", "message", "no: 2 + 3 is 5"),
        ("person", "verdict", "FAILED (score 0.00): 2 + 3 is 5"),
        ("solver", "message", "ANSWER: 5"),  # the person's feedback reached the solver
        ("person", "event", "Is the sum right?"),
        ("human", "message", "yes"),
        ("person", "verdict", "PASSED (score 1.00)"),
        (
            "runtime",
            "event",
            "Paused before reporter. Reply to continue; reporter sees your reply.",
        ),
        ("human", "message", "Send it to Ada"),
        ("reporter", "message", done.answer),
    ]
    # The human verifier round-trips through the stored spec (resume rebuilds the team).
    assert team.spec.verifiers["person"].kind == "human"


def test_a_function_agent_asks_and_a_users_except_does_not_swallow_the_pause(
    tmp_path: Path,
) -> None:
    team = Team("ask", [Agent("clerk", fn=asks_for_a_name)], store=tmp_path / "a.db")
    first = team.run("file the report")
    assert first.paused and first.prompt == "Whose name goes on the report?"
    assert _shape(team, first.run_id) == [("clerk", "event", "Whose name goes on the report?")]
    done = asyncio.run(team.aresume(first.run_id, input="Grace"))
    assert (done.status, done.answer) == ("succeeded", "report by Grace")
    assert _shape(team, first.run_id) == [
        ("clerk", "event", "Whose name goes on the report?"),
        ("human", "message", "Grace"),
        ("clerk", "message", "report by Grace"),
    ]


def test_a_tool_and_a_callable_verifier_can_ask_too(tmp_path: Path) -> None:
    def confirm(candidate: str) -> tuple[bool, str]:
        reply = ask_human(f"Ship {candidate!r}?")
        return reply == "ship", reply

    async def calls_tool(ctx: TurnContext) -> str:
        return await ctx.call_tool("sign")

    def sign() -> str:
        """Asks who signs."""
        return "signed by " + ask_human("Who signs?")

    team = Team(
        "tools",
        [Agent("maker", fn=calls_tool, tools=[sign])],
        stages=[{"agent": "maker", "verifier": "confirm"}],
        verifiers={"confirm": confirm},
        store=tmp_path / "t.db",
    )
    first = team.run("make it")
    assert first.prompt == "Who signs?"
    second = team.resume(first.run_id, input="Lin")
    assert second.prompt == "Ship 'signed by Lin'?"
    done = team.resume(first.run_id, input="ship")
    assert done.status == "succeeded" and done.answer == "signed by Lin"


def test_ask_human_outside_a_run_says_where_it_works() -> None:
    with pytest.raises(UserError, match="only while a mascope team runs"):
        ask_human("hello?")


def test_bad_resumes_are_refused_and_write_nothing(tmp_path: Path) -> None:
    team = Team("ask", [Agent("clerk", fn=asks_for_a_name)], store=tmp_path / "b.db")
    paused = team.run("file it")
    finished = Team("plain", [Agent("w", fn=_writer)], store=team.store).run("write")
    before = {r.id: (r.status, r.step_count) for r in team.store.list_runs()}
    steps_before = _shape(team, paused.run_id)

    with pytest.raises(
        UserError, match=r"is paused for a person's input; continue it with .*--input TEXT"
    ):
        team.resume(paused.run_id)
    with pytest.raises(UserError, match="--input is empty"):
        team.resume(paused.run_id, input="  ")
    with pytest.raises(UserError, match=r"is succeeded, not paused, so it takes no --input"):
        team.resume(finished.run_id, input="hi")
    with pytest.raises(UserError, match="no run"):
        team.resume("01NOSUCHRUN", input="hi")

    assert {r.id: (r.status, r.step_count) for r in team.store.list_runs()} == before
    assert _shape(team, paused.run_id) == steps_before
    assert team.resume(paused.run_id, input="Ada").answer == "report by Ada"


def test_a_prompt_without_a_pause_and_an_agent_named_human_are_refused(tmp_path: Path) -> None:
    base = {"name": "t", "agents": [{"name": "a", "function": f"{HELPERS}:echo_task"}]}
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump({**base, "topology": {"kind": "pipeline", "stages": [{"agent": "a", "prompt": "ok?"}]}}))  # fmt: skip
    with pytest.raises(ConfigError, match=r"topology.stages\[0\].prompt: .*add interrupt: before"):
        load_team_file(path)
    path.write_text(
        yaml.safe_dump({
            "name": "t",
            "agents": [{"name": "human", "function": f"{HELPERS}:echo_task"}],
            "topology": {"kind": "pipeline", "stages": [{"agent": "human", "interrupt": "before"}]},
        })
    )  # fmt: skip
    with pytest.raises(ConfigError, match="the name 'human' is kept"):
        load_team_file(path)


def test_the_reply_goes_through_redaction_like_every_step(tmp_path: Path) -> None:
    secret = "sk-proj-Zq8vX2mN4pL7rT1wY6uB3cD9eF0gH5jK"
    team = Team("ask", [Agent("clerk", fn=asks_for_a_name)], store=tmp_path / "s.db")
    first = team.run("file it")
    done = team.resume(first.run_id, input=f"use key {secret}")
    assert done.status == "succeeded"
    team.store.close()
    leaked = [
        p.name for p in tmp_path.iterdir() if p.is_file() and secret.encode() in p.read_bytes()
    ]
    assert leaked == []
    with TraceStore(tmp_path / "s.db") as store:
        assert "[REDACTED]" in store.steps(first.run_id)[1].content


def test_the_human_verifier_reads_replies() -> None:
    from mascope.agents import human_verdict

    assert human_verdict("Yes").passed and human_verdict("ok, ship it").passed
    assert human_verdict("LGTM").passed and not human_verdict("yesterday was wrong").passed
    no = human_verdict("no: the total is 12")
    assert (no.passed, no.feedback) == (False, "the total is 12")
    assert human_verdict("the total is 12").feedback == "the total is 12"
    assert HumanVerifier("Right?").kind == "human"


KILLED_AT_PAUSE = textwrap.dedent(
    """
    import os, signal, sys
    from mascope.graphs import Team
    result = Team.from_yaml(sys.argv[1], store=sys.argv[2]).run("file it")
    print(result.run_id, result.status, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # no clean shutdown: the pause must already be durable
    """
)


def test_killed_while_paused_then_resumed_with_input_in_a_fresh_team(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "ask.yaml"
    path.write_text(
        yaml.safe_dump({
            "name": "ask",
            "agents": [
                {"name": "clerk", "function": f"{HELPERS}:asks_for_a_name"},
                {"name": "after", "function": f"{HELPERS}:repeats_human"},
            ],
            "topology": {"kind": "pipeline", "stages": ["clerk", "after"]},
        })
    )  # fmt: skip
    db, log = tmp_path / "k.db", tmp_path / "calls.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MASCOPE_TEST_LOG": str(log)}
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_AT_PAUSE, str(path), str(db)],
        env=env, capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    run_id, status = proc.stdout.split()
    assert status == "paused"

    monkeypatch.setenv("MASCOPE_TEST_LOG", str(log))
    team = Team.from_yaml(path, store=db)  # a new process's view: nothing in memory
    assert team.store.get_run(run_id).status == "paused"
    team.store.recover_interrupted()  # a paused run has no owner to lose: left paused
    assert team.store.get_run(run_id).status == "paused"
    done = team.resume(run_id, input="Hopper")
    assert done.status == "succeeded"
    steps = done.steps
    assert [s.index for s in steps] == list(range(4))
    assert [(s.agent, s.kind) for s in steps] == [
        ("clerk", "event"), ("human", "message"), ("clerk", "message"), ("after", "message"),
    ]  # fmt: skip
    assert steps[2].content == "report by Hopper"
    # LangGraph re-runs the node that asked, from its start, with the answer.
    assert log.read_text().split() == ["clerk", "clerk"]


def test_a_fork_before_a_pause_pauses_again_and_a_reply_cannot_be_forked(tmp_path: Path) -> None:
    team = Team(
        "review",
        [Agent("writer", fn=_writer), Agent("editor", fn=repeats_human)],
        stages=[{"agent": "writer", "interrupt": "after"}, "editor"],
        store=tmp_path / "f.db",
    )
    first = team.run("write it")
    done = team.resume(first.run_id, input="fine")
    child = team.fork(done.run_id, step=0, content="another draft")
    assert child.paused and child.parent_run_id == done.run_id
    assert child.prompt == (
        "writer has answered (its last step). Reply to continue; the agents after it see your reply."
    )
    with pytest.raises(
        UserError, match="is a person's reply to a pause; fork at an agent's message"
    ):
        team.fork(done.run_id, step=2, content="other")
    assert team.resume(child.run_id, input="good").answer == (
        "editor heard 'good'; last human: good"
    )


def test_a_model_agent_after_a_pause_is_sent_the_reply_and_called_once(tmp_path: Path) -> None:
    from mascope.testing import ScriptedModel

    model = ScriptedModel(["an outline", "the essay"])  # strict order: a third call would fail
    team = Team(
        "essay",
        [Agent("planner", model=model), Agent("writer", model=model)],
        stages=["planner", {"agent": "writer", "interrupt": "before", "prompt": "Any notes?"}],
        store=tmp_path / "m.db",
    )
    first = team.run("an essay on tides")
    assert first.paused and [s.agent for s in first.steps] == ["planner", "runtime"]
    done = team.resume(first.run_id, input="mention the moon")
    assert (done.status, done.answer) == ("succeeded", "the essay")
    writer = next(s for s in done.steps if s.agent == "writer")
    sent = team.store.step_inputs(done.run_id, writer.index)[-1].content
    assert "planner said:\nan outline" in sent and "human said:\nmention the moon" in sent


def test_two_questions_in_one_turn_of_a_group_chat_are_answered_in_order(tmp_path: Path) -> None:
    def twice(ctx: TurnContext) -> str:
        return ask_human("first?") + "+" + ask_human("second?")

    def closer(ctx: TurnContext) -> str:
        return "DONE " + ctx.outputs.get("asker", "")

    team = Team(
        "chat",
        [Agent("asker", fn=twice), Agent("closer", fn=closer)],
        topology="group_chat",
        termination={"max_rounds": 2, "stop_phrase": "DONE"},
        store=tmp_path / "c.db",
    )
    first = team.run("go")
    second = team.resume(first.run_id, input="A")
    assert (first.prompt, second.prompt) == ("first?", "second?")
    done = team.resume(first.run_id, input="B")
    assert (done.status, done.answer) == ("succeeded", "A+B")
    assert _shape(team, done.run_id) == [
        ("asker", "event", "first?"),
        ("human", "message", "A"),
        ("asker", "event", "second?"),
        ("human", "message", "B"),
        ("asker", "message", "A+B"),
        ("closer", "message", "DONE A+B"),
    ]


def test_ask_human_on_fail_in_python_is_written_into_the_stored_spec(tmp_path: Path) -> None:
    from mascope.graphs import AskHumanOnFail, parse_team

    from .helpers import always_wrong, is_five

    team = Team(
        "checked",
        [Agent("solver", fn=always_wrong)],
        stages=[{"agent": "solver", "verifier": "five", "max_rounds": 1}],
        verifiers={"five": AskHumanOnFail(is_five, prompt="Accept? {feedback}")},
        store=tmp_path / "p.db",
    )
    first = team.run("2 + 3?")
    assert first.prompt == "Accept? 2 + 3 is not 6; recount\n\nAnswer checked:\nANSWER: 6"
    stored = parse_team(team.store.get_run(first.run_id).spec or {})
    assert stored.verifiers["five"].model_dump(exclude_defaults=True) == {
        "kind": "python", "function": "tests.graphs.helpers:is_five",
        "ask_human_on_fail": True, "prompt": "Accept? {feedback}",
    }  # fmt: skip
    rebuilt = Team.from_spec(stored, store=team.store)  # what `runs resume` does
    done = rebuilt.resume(first.run_id, input="no: it is 5")
    assert (done.status, done.termination_reason) == ("failed", "verifier_failed")
    assert done.steps[-1].content == "FAILED (score 0.00): it is 5"


def _claims_after_feedback(ctx: TurnContext) -> str:
    """Claims 6, and 5 once someone has objected."""
    return "DONE 5" if ctx.feedback else "DONE 6"


def test_a_group_chat_asks_for_approval_of_its_final_answer(tmp_path: Path) -> None:
    path = tmp_path / "chat.yaml"
    path.write_text(
        textwrap.dedent(
            f"""
            name: approved
            agents:
              - {{name: solver, function: "{__name__}:_claims_after_feedback"}}
              - {{name: echo, function: "{HELPERS}:repeats_human"}}
            topology: {{kind: group_chat, agents: [solver, echo], interrupt: final}}
            termination: {{stop_phrase: DONE, max_rounds: 3}}
            """
        )
    )
    team = Team.from_yaml(path, store=tmp_path / "a.db")
    first = team.run("What is 2 + 3?")
    assert first.paused and first.prompt.endswith("Final answer:\n6")
    second = team.resume(first.run_id, input="no: 2 + 3 is 5")
    assert second.paused and second.prompt.endswith("Final answer:\n5")
    done = team.resume(first.run_id, input="yes")
    assert (done.status, done.answer, done.termination_reason) == ("succeeded", "5", "stop_phrase")
    shape = [(a, k, c.splitlines()[0]) for a, k, c in _shape(team, done.run_id)]
    assert shape == [
        ("solver", "message", "DONE 6"),
        ("runtime", "event", "Accept this final answer? Reply yes, or no and what to fix."),
        ("human", "message", "no: 2 + 3 is 5"),
        # the chat went on: the next speaker hears the person, the solver gets the feedback
        ("echo", "message", "echo heard 'no: 2 + 3 is 5'; last human: no: 2 + 3 is 5"),
        ("solver", "message", "DONE 5"),
        ("runtime", "event", "Accept this final answer? Reply yes, or no and what to fix."),
        ("human", "message", "yes"),
    ]


def test_a_group_chat_pauses_after_every_round_and_everyone_hears_the_reply(
    tmp_path: Path,
) -> None:
    team = Team(
        "rounds",
        [Agent("a", fn=repeats_human), Agent("b", fn=repeats_human)],
        topology="group_chat",
        chat_interrupt="round",
        chat_prompt="Anything to add?",
        termination={"max_rounds": 2},
        store=tmp_path / "r.db",
    )
    first = team.run("talk")
    assert (first.status, first.prompt) == ("paused", "Anything to add?")
    done = team.resume(first.run_id, input="be brief")
    # two rounds: one pause between them, none after the last (the chat has ended)
    assert (done.status, done.termination_reason) == ("failed", "max_rounds")
    assert [(a, k) for a, k, _ in _shape(team, done.run_id)] == [
        ("a", "message"), ("b", "message"), ("runtime", "event"), ("human", "message"),
        ("a", "message"), ("b", "message"),
    ]  # fmt: skip
    assert done.steps[4].content == "a heard 'be brief'; last human: be brief"
    stored = team.store.get_run(done.run_id).spec or {}
    assert stored["topology"]["interrupt"] == "round"  # `runs resume` rebuilds it from the store


def test_a_chat_prompt_without_a_pause_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"topology.prompt: .*add interrupt: round \(or final\)"):
        Team(
            "chat",
            [Agent("a", fn=_writer)],
            topology="group_chat",
            chat_prompt="hello?",
            store=tmp_path / "x.db",
        )
