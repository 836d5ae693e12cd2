"""Token streaming of a running team (`Team.astream`, `on_token`), and every model call of
the runtime (agents, the group-chat manager, rubric verifiers) recorded with its retries."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from mascope import Agent, Team
from mascope.agents import Rubric
from mascope.graphs import (
    RestartEvent,
    ResultEvent,
    RunEvent,
    StepEvent,
    TokenEvent,
)
from mascope.models import (
    ChatModel,
    ChatRequest,
    ChatResponse,
    OpenAIModel,
    RetryCallback,
    RetryEvent,
    RetryPolicy,
    ScriptedModel,
    TokenCallback,
)

from ..models.servers import Fault, FaultServer, LlamaServer, ok

PASS = '{"passed": true, "score": 1.0, "feedback": "correct"}'
FAST = RetryPolicy(initial_wait=0.01, jitter=0.0)


def solver_checker(db: Path, model: ChatModel, verifier_model: ChatModel | None = None) -> Team:
    return Team(
        "sc",
        [Agent("solver", model=model)],
        stages=[{"agent": "solver", "verifier": "checker", "max_rounds": 2}],
        verifiers={"checker": Rubric("must be right", model=verifier_model or model)},
        store=db,
    )


def tokens_of(events: Sequence[RunEvent], agent: str) -> str:
    return "".join(e.text for e in events if isinstance(e, TokenEvent) and e.agent == agent)


def assert_tokens_precede_their_steps(events: Sequence[RunEvent]) -> None:
    """Each streamed answer's pieces, joined, are the content of that agent's next step,
    and they all arrive before it."""
    pending: dict[str, str] = {}
    for e in events:
        if isinstance(e, TokenEvent):
            pending[e.agent] = pending.get(e.agent, "") + e.text
        elif isinstance(e, RestartEvent):
            pending.pop(e.agent, None)
        elif isinstance(e, StepEvent) and e.kind != "retry" and e.agent in pending:
            assert pending.pop(e.agent) == e.content
    assert not pending, f"pieces never followed by their step: {pending}"


async def test_astream_yields_pieces_before_the_step_and_the_result_last(tmp_path: Path) -> None:
    answer = "24 - 9 - 7 = 8\nso the answer is\nANSWER: 8"
    team = solver_checker(tmp_path / "s.db", ScriptedModel([answer, PASS]))
    events = [e async for e in team.astream("24 - 9 - 7?", ground_truth="8")]

    assert isinstance(events[-1], ResultEvent)
    result = events[-1].result
    assert result.succeeded and result.answer == answer
    pieces = [e for e in events if isinstance(e, TokenEvent)]
    assert len(pieces) > 1 and {e.agent for e in pieces} == {"solver"}
    assert all(e.run_id == result.run_id and e.attempt == 1 for e in pieces)
    assert tokens_of(events, "solver") == answer
    assert_tokens_precede_their_steps(events)
    # the verdict is a structured answer: not streamed, its step arrives whole
    steps = [e for e in events if isinstance(e, StepEvent)]
    assert [(s.agent, s.kind) for s in steps] == [("solver", "message"), ("checker", "verdict")]
    # recorded exactly as without streaming
    plain = await solver_checker(tmp_path / "p.db", ScriptedModel([answer, PASS])).arun(
        "24 - 9 - 7?", ground_truth="8"
    )
    for streamed, unstreamed in zip(result.steps, plain.steps, strict=True):
        assert (streamed.content, streamed.input_tokens, streamed.output_tokens) == (
            unstreamed.content,
            unstreamed.input_tokens,
            unstreamed.output_tokens,
        )
    assert (result.input_tokens, result.output_tokens) == (plain.input_tokens, plain.output_tokens)


def test_stream_is_the_sync_twin(tmp_path: Path) -> None:
    team = solver_checker(tmp_path / "s.db", ScriptedModel(["ANSWER: 8", PASS]))
    events = list(team.stream("24 - 9 - 7?"))
    assert isinstance(events[-1], ResultEvent) and events[-1].result.answer == "ANSWER: 8"
    assert tokens_of(events, "solver") == "ANSWER: 8"


async def test_closing_the_stream_early_interrupts_the_run(tmp_path: Path) -> None:
    import asyncio
    import contextlib

    async def never(request: ChatRequest) -> str:
        await asyncio.Event().wait()
        return "unreachable"

    db = tmp_path / "i.db"
    team = Team(
        "t", [Agent("drafter", fn=lambda ctx: "draft"), Agent("editor", model=ScriptedModel([never]))], store=db
    )  # fmt: skip
    async with contextlib.aclosing(team.astream("edit")) as events:
        async for event in events:
            if isinstance(event, StepEvent):
                break  # the drafter's step: the editor is generating
    run = team.store.list_runs()[0]
    assert (run.status, run.termination_reason) == ("interrupted", "interrupted")


def test_tool_call_turns_are_not_streamed(tmp_path: Path) -> None:
    from mascope.models import ScriptedReply, ToolCall

    def lookup(city: str) -> str:
        """A fact about a city."""
        return f"{city} has a tower"

    model = ScriptedModel(
        [
            ScriptedReply(
                tool_calls=[ToolCall(id="c1", name="lookup", arguments={"city": "Paris"})]
            ),
            "Paris has a tower.",
        ]
    )
    team = Team("t", [Agent("guide", model=model, tools=[lookup])], store=tmp_path / "t.db")
    seen: list[TokenEvent | RestartEvent] = []
    result = team.run("Tell me about Paris.", on_token=seen.append)
    assert result.answer == "Paris has a tower."
    # both calls offered the tool: their answers are only usable whole, so not streamed
    assert seen == []


class CharByChar(ScriptedModel):
    """A scripted model that streams its answers one character at a time."""

    async def _complete_streaming(
        self,
        request: ChatRequest,
        events: list[RetryEvent],
        on_retry: RetryCallback | None,
        on_token: TokenCallback,
    ) -> ChatResponse:
        response = await self._complete(request, events, on_retry)
        for ch in response.text:
            on_token(ch)
        return response


def test_a_secret_arriving_in_pieces_is_never_shown(tmp_path: Path) -> None:
    key = "sk-proj-" + "Ab3dEf6hIj9kLm2nOp5q"
    answer = f"the key is {key} and\nAPI_KEY={key}\nANSWER: 8"
    team = solver_checker(tmp_path / "s.db", CharByChar([answer, PASS]))
    events = list(team.stream("what is the key?"))
    for e in events:
        if isinstance(e, TokenEvent):
            assert not any(part in e.text for part in (key[:6], key[-6:]))
    shown = tokens_of(events, "solver")
    assert "[REDACTED]" in shown and shown.endswith("ANSWER: 8")
    assert_tokens_precede_their_steps(events)


def test_a_private_key_stops_the_stream_before_its_body_is_shown(tmp_path: Path) -> None:
    body = "MIIEowIBAAKCAQEAx9Lq3Zk8vT2pWmN4sB7yHc1R"
    answer = (
        f"Here it is:\n-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----\ndone"
    )
    team = Team("t", [Agent("leaker", model=CharByChar([answer]))], store=tmp_path / "k.db")
    events = list(team.stream("show me the key"))
    shown = tokens_of(events, "leaker")
    assert shown.startswith("Here it is:")
    assert body[:8] not in shown
    result = events[-1].result if isinstance(events[-1], ResultEvent) else None
    assert result is not None and body[:8] not in result.steps[0].content


async def test_a_stream_cut_mid_way_is_retried_and_marked_restarted(tmp_path: Path) -> None:
    answer = "alpha beta gamma delta epsilon zeta eta theta"
    with FaultServer([Fault(answer=answer, cut_after=5), ok(answer)]) as server:
        model = OpenAIModel("fault-model", base_url=server.url, retry=FAST)
        team = Team("t", [Agent("writer", model=model)], store=tmp_path / "t.db")
        events = [e async for e in team.astream("write")]
        await model.aclose()
    restarts = [e for e in events if isinstance(e, RestartEvent)]
    assert len(restarts) == 1
    restart = restarts[0]
    assert restart.agent == "writer" and restart.attempt == 2
    assert restart.discarded and answer.startswith(restart.discarded)
    assert "retry 1 after connection" in restart.reason
    # pieces of the first attempt come before the restart, the second's after it
    at = events.index(restart)
    before = "".join(e.text for e in events[:at] if isinstance(e, TokenEvent))
    after = [e for e in events[at:] if isinstance(e, TokenEvent)]
    assert before == restart.discarded
    assert "".join(e.text for e in after) == answer and {e.attempt for e in after} == {2}
    assert_tokens_precede_their_steps(events)
    result = events[-1].result if isinstance(events[-1], ResultEvent) else None
    assert result is not None and result.answer == answer
    kinds = [(s.agent, s.kind) for s in result.steps]
    assert kinds == [("writer", "retry"), ("writer", "message")]
    # the usage the server reported at the end of the stream is recorded
    assert (result.steps[1].input_tokens, result.steps[1].output_tokens) == (11, 3)


# -- the manager and the rubric call through the recorded path ----------------------


async def test_a_managers_retries_and_tokens_reach_the_trace(tmp_path: Path) -> None:
    choice = '{"next_speaker": "critic", "reason": "review"}'
    with FaultServer([Fault(status=503), ok(choice)]) as server:
        manager = OpenAIModel("fault-model", base_url=server.url, retry=FAST)
        team = Team(
            "chat", [Agent("mgr", model=manager), Agent("writer", fn=lambda ctx: "draft"), Agent("critic", fn=lambda ctx: "FINAL ANSWER: fine")],
            topology="group_chat", speaker_selection="manager", manager="mgr",
            termination={"max_rounds": 2, "stop_phrase": "FINAL ANSWER:"}, store=tmp_path / "m.db",
        )  # fmt: skip
        result = await team.arun("write")
        await manager.aclose()
    assert result.answer == "fine"
    steps = result.steps
    assert [(s.agent, s.kind) for s in steps] == [
        ("mgr", "retry"),
        ("mgr", "message"),
        ("critic", "message"),
    ]
    assert steps[0].content == "retry 1 after server_error (HTTP 503)"
    assert steps[0].data["status_code"] == 503
    assert (steps[1].input_tokens, steps[1].output_tokens) == (11, 3)
    assert (result.input_tokens, result.output_tokens) == (11, 3)


async def test_a_rubrics_retries_and_tokens_reach_the_trace(tmp_path: Path) -> None:
    with FaultServer([Fault(status=429, headers={"retry-after": "0"}), ok(PASS)]) as server:
        judge = OpenAIModel("fault-model", base_url=server.url, retry=FAST)
        team = solver_checker(tmp_path / "r.db", ScriptedModel(["ANSWER: 8"]), judge)
        result = await team.arun("24 - 9 - 7?")
        await judge.aclose()
    assert result.succeeded
    steps = result.steps
    assert [(s.agent, s.kind) for s in steps] == [
        ("solver", "message"),
        ("checker", "retry"),
        ("checker", "verdict"),
    ]
    assert steps[1].content == "retry 1 after rate_limit (HTTP 429)"
    assert (steps[2].input_tokens, steps[2].output_tokens) == (11, 3)
    assert result.input_tokens == steps[0].input_tokens + 11


def test_unusable_answers_still_count_their_tokens(tmp_path: Path) -> None:
    # the rubric's model answers garbage twice (the answer and the repair): both calls' tokens
    # are recorded on the unusable answer's step, and count in the run's totals
    model = ScriptedModel(["ANSWER: 8", "fine", "fine, really", "ANSWER: 8", PASS])
    result = solver_checker(tmp_path / "u.db", model).run("24 - 9 - 7?")
    raw = next(s for s in result.steps if s.kind == "model_call")
    assert raw.agent == "checker" and raw.error
    assert raw.input_tokens and raw.output_tokens
    assert result.input_tokens == sum(s.input_tokens or 0 for s in result.steps)


# -- the real llama.cpp server ----------------------------------------------------------


@pytest.mark.slow
async def test_tokens_stream_from_a_real_llama_cpp_server(
    tmp_path: Path, llama_server: LlamaServer
) -> None:
    model = OpenAIModel(llama_server.model, base_url=llama_server.url)
    team = Team(
        "t",
        [Agent("counter", model=model, max_tokens=24, temperature=0)],
        store=tmp_path / "l.db",
    )
    events = [e async for e in team.astream("Count from one to five.")]
    await model.aclose()
    result = events[-1].result if isinstance(events[-1], ResultEvent) else None
    assert result is not None and result.status == "succeeded"
    pieces = [e for e in events if isinstance(e, TokenEvent)]
    assert len(pieces) > 1
    message = result.steps[-1]
    assert message.kind == "message" and message.content.strip()
    assert tokens_of(events, "counter") == message.content
    assert_tokens_precede_their_steps(events)
    # llama-cpp-python's server reports no usage when streaming: one chunk per token
    assert 0 < (message.output_tokens or 0) <= 24
