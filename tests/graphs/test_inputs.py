"""Each model call's input messages are recorded with its step, once per distinct text."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from mascope import Agent, Team
from mascope.models import ChatRequest, ScriptedModel, ScriptedReply, ToolCall
from mascope.traces import InputMessage, TraceStore

from .helpers import is_five


def sent(request: ChatRequest) -> list[InputMessage]:
    """What the scripted model received, in the shape the store gives back."""
    return [
        InputMessage(
            role=m.role,
            content=m.content,
            name=m.name,
            tool_calls=[c.model_dump() for c in m.tool_calls],
            tool_call_id=m.tool_call_id,
        )
        for m in request.messages
    ]


def test_each_turn_records_the_exact_messages_including_the_verifiers_feedback(
    tmp_path: Path,
) -> None:
    model = ScriptedModel(["ANSWER: 6", "ANSWER: 5"])
    solver = Agent(
        "solver", role="careful arithmetic solver", goal="add numbers exactly", model=model
    )
    team = Team(
        "math",
        [solver],
        stages=[{"agent": "solver", "verifier": "check", "max_rounds": 3}],
        verifiers={"check": is_five},
        store=tmp_path / "r.db",
    )
    result = team.run("What is 2 + 3?")
    assert result.status == "succeeded"
    store = TraceStore(tmp_path / "r.db")
    steps = store.steps(result.run_id)
    assert [(s.agent, s.kind) for s in steps] == [
        ("solver", "message"),
        ("check", "verdict"),
        ("solver", "message"),
        ("check", "verdict"),
    ]
    first, second = store.step_inputs(result.run_id, 0), store.step_inputs(result.run_id, 2)
    assert first == sent(model.calls[0]) and second == sent(model.calls[1])
    system, user = second
    assert system.role == "system" and "careful arithmetic solver" in (system.content or "")
    assert "add numbers exactly" in (system.content or "")
    # The verdict's feedback reached the agent's next turn, and the store shows it.
    assert "2 + 3 is not 6; recount" in (user.content or "")
    assert "recount" not in (first[1].content or "")
    # A verifier's verdict and a function agent's turn called no model.
    assert store.step_inputs(result.run_id, 1) == []
    assert steps[1].inputs is None


def test_tool_calls_and_results_are_part_of_the_next_calls_input(tmp_path: Path) -> None:
    def lookup(city: str) -> str:
        """The weather in a city."""
        return f"sunny in {city}"

    model = ScriptedModel(
        [
            ScriptedReply(
                tool_calls=[ToolCall(id="c1", name="lookup", arguments={"city": "Oslo"})]
            ),
            "It is sunny in Oslo.",
        ]
    )
    team = Team("w", [Agent("forecaster", model=model, tools=[lookup])], store=tmp_path / "w.db")
    result = team.run("Weather in Oslo?")
    store = TraceStore(tmp_path / "w.db")
    kinds = [s.kind for s in store.steps(result.run_id)]
    assert kinds == ["model_call", "tool_call", "tool_result", "message"]
    assert store.step_inputs(result.run_id, 0) == sent(model.calls[0])
    final = store.step_inputs(result.run_id, 3)
    assert final == sent(model.calls[1])
    assert [m.role for m in final] == ["system", "user", "assistant", "tool"]
    assert final[2].tool_calls[0]["arguments"] == {"city": "Oslo"}
    assert final[3].content == "sunny in Oslo" and final[3].tool_call_id == "c1"


def chat(db: Path, turns: int) -> tuple[str, ScriptedModel]:
    """A round-robin chat of two model agents whose prompts carry the whole conversation."""
    model = ScriptedModel([f"turn {i}: I think the answer is {i * 7}." for i in range(turns)])
    agents = [Agent(n, role=f"{n} the debater", model=model) for n in ("ann", "bob")]
    team = Team(
        "debate",
        agents,
        topology="group_chat",
        termination={"max_rounds": turns // 2},
        store=db,
        context_chars=1_000_000,  # nothing left out: every turn resends all before it
    )
    return team.run("Settle it.").run_id, model


def stored_text(db: Path) -> tuple[int, int]:
    """How many input parts the store holds, and their total characters."""
    con = sqlite3.connect(db)
    count, size = con.execute(
        "SELECT COUNT(*), COALESCE(SUM(LENGTH(text)), 0) FROM blobs"
    ).fetchone()
    con.close()
    return int(count), int(size)


def test_a_long_chat_stores_distinct_text_once(tmp_path: Path) -> None:
    sizes = {}
    for turns in (25, 50):
        db = tmp_path / f"chat{turns}.db"
        rid, model = chat(db, turns)
        store = TraceStore(db)
        # Every turn's input is there, exactly as sent...
        for i, call in enumerate(model.calls):
            assert store.step_inputs(rid, i) == sent(call)
        # ...each step holding a few references however long its prompt...
        assert max(len(s.inputs[1]["parts"]) for s in store.steps(rid) if s.inputs) <= 24
        store.close()
        # ...while what was sent grows with turns squared.
        sent_chars = sum(len(m.content or "") for c in model.calls for m in c.messages)
        said_chars = sum(len(s.content) for s in TraceStore(db).steps(rid))
        sizes[turns] = (*stored_text(db), sent_chars, said_chars)
    (_, chars25, sent25, _), (blobs50, chars50, sent50, said50) = sizes[25], sizes[50]
    assert sent50 > 3.5 * sent25  # quadratic without deduplication
    assert chars50 < 2.6 * chars25  # linear with it
    # Within a constant factor of the distinct text: what was said, plus each turn's
    # fixed lines ("Your turn, ann.") and the two system prompts.
    assert blobs50 <= 3 * 50
    assert chars50 <= 3 * said50 + 50 * 20 + 2000
    assert chars50 * 5 < sent50


def test_a_fork_shares_the_parents_inputs_and_records_its_own(tmp_path: Path) -> None:
    db = tmp_path / "f.db"
    rid, _ = chat(db, 6)
    before = stored_text(db)
    model = ScriptedModel([f"forked turn {i}" for i in range(5)])
    agents = [Agent(n, role=f"{n} the debater", model=model) for n in ("ann", "bob")]
    team = Team(
        "debate",
        agents,
        topology="group_chat",
        termination={"max_rounds": 3},
        store=db,
        context_chars=1_000_000,
    )
    child = team.fork(rid, step=1, content="bob changes his mind")
    store = TraceStore(db)
    parent_steps, child_steps = store.steps(rid), store.steps(child.run_id)
    assert child_steps[0].inputs == parent_steps[0].inputs  # the shared past, by reference
    assert store.step_inputs(child.run_id, 0) == store.step_inputs(rid, 0)
    assert child_steps[1].inputs is None  # the replacement was written, not generated
    after_fork = store.step_inputs(child.run_id, 2)
    assert after_fork == sent(model.calls[0])
    assert "bob changes his mind" in (after_fork[1].content or "")
    count, _ = stored_text(db)
    # New parts only for the child's new turns (the replaced message and each new prompt's
    # tail), none for the copied steps; and no part is stored twice.
    assert count - before[0] <= 3 * len(model.calls) + 2
    con = sqlite3.connect(db)
    assert con.execute("SELECT COUNT(DISTINCT text) = COUNT(*) FROM blobs").fetchone() == (1,)
    con.close()


def test_a_resumed_run_records_the_inputs_of_the_turns_it_redoes(tmp_path: Path) -> None:
    from mascope.errors import EndpointError

    db = tmp_path / "r.db"

    def team(model: ScriptedModel) -> Team:
        agents = [Agent(n, role=f"{n} the debater", model=model) for n in ("ann", "bob")]
        return Team(
            "debate", agents, topology="group_chat", termination={"max_rounds": 2}, store=db
        )

    first = ScriptedModel(
        ["ann one", "bob one", EndpointError("http://x/v1 kept failing (HTTP 500)")]
    )
    broken = team(first).run("Settle it.")
    assert broken.status == "error"
    before = TraceStore(db).steps(broken.run_id)
    second = ScriptedModel(["ann two", "bob two"])
    done = team(second).resume(broken.run_id)
    assert done.status in ("failed", "succeeded")
    store = TraceStore(db)
    steps = store.steps(broken.run_id)
    assert [s.inputs for s in steps[:2]] == [s.inputs for s in before[:2]]
    redone = [s for s in steps if s.kind == "message" and s.content in ("ann two", "bob two")]
    assert [store.step_inputs(broken.run_id, s.index) for s in redone] == [
        sent(c) for c in second.calls
    ]
    assert "bob: bob one" in (store.step_inputs(broken.run_id, redone[0].index)[1].content or "")
    con = sqlite3.connect(db)
    assert con.execute("SELECT COUNT(DISTINCT text) = COUNT(*) FROM blobs").fetchone() == (1,)
    con.close()
