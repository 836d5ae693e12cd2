"""LLM agents with tools: typed tools, out-of-role refusal, retries as steps."""

from __future__ import annotations

from pathlib import Path

from mascope import Agent, Team
from mascope.models import OpenAIModel, RetryPolicy, ScriptedModel, ScriptedReply, ToolCall
from mascope.traces import TraceStore

from ..models.servers import Fault, FaultServer, ok


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def delete_everything(path: str) -> str:
    """A tool no role here may use."""
    raise AssertionError("must never run")


def call(name: str, **arguments: object) -> ScriptedReply:
    return ScriptedReply(
        tool_calls=[ToolCall(id=f"c_{name}", name=name, arguments=dict(arguments))]
    )


def test_typed_tool_call_and_out_of_role_refusal(tmp_path: Path) -> None:
    model = ScriptedModel(
        [
            call("add", a=2, b=3),
            call("delete_everything", path="/"),
            call("add", a="two", b=3),
            "The sum is 5.",
        ]
    )
    solver = Agent("solver", role="calculator", tools=[add], model=model)
    janitor = Agent(
        "janitor", role="cleaner", tools=[delete_everything], fn=lambda ctx: "not called"
    )
    team = Team("tools", [solver, janitor], stages=["solver"], store=tmp_path / "t.db")
    result = team.run("add 2 and 3")
    steps = TraceStore(tmp_path / "t.db").steps(result.run_id)
    assert [s.kind for s in steps] == [
        "model_call", "tool_call", "tool_result", "model_call", "tool_call", "refusal", "model_call", "tool_call", "tool_result", "message",
    ]  # fmt: skip
    assert steps[2].content == "5"
    assert "refused: delete_everything is not one of solver's tools (add)" in steps[5].content
    assert steps[8].error and "a: Input should be a valid integer" in steps[8].error
    offered = [t.name for t in model.calls[0].tools]
    assert offered == ["add"]
    tool_messages = [m for m in model.calls[2].messages if m.role == "tool"]
    assert tool_messages[-1].content and tool_messages[-1].content.startswith("refused:")
    assert result.answer == "The sum is 5."


def test_retries_are_recorded_as_steps(tmp_path: Path) -> None:
    with FaultServer(
        [Fault(429, headers={"Retry-After": "0"}), Fault(503), ok("recovered")]
    ) as server:
        model = OpenAIModel(
            "m", base_url=server.url, retry=RetryPolicy(initial_wait=0.01, jitter=0)
        )
        result = Team("r", [Agent("a", model=model)], store=tmp_path / "r.db").run("hi")
    steps = TraceStore(tmp_path / "r.db").steps(result.run_id)
    assert [(s.kind, s.content) for s in steps[:2]] == [
        ("retry", "retry 1 after rate_limit (HTTP 429)"),
        ("retry", "retry 2 after server_error (HTTP 503)"),
    ]
    assert steps[2].kind == "message" and steps[2].content == "recovered"
    assert result.succeeded
