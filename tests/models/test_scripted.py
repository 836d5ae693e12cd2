"""The scripted model: a strict-order test double."""

from __future__ import annotations

from pathlib import Path

import pytest

from mascope.errors import ConfigError, EndpointError, ScriptError
from mascope.models import (
    ChatResponse,
    Message,
    ScriptedModel,
    ScriptedReply,
    ToolCall,
    get_model,
)
from mascope.settings import Settings


def test_replies_come_in_order() -> None:
    model = ScriptedModel(["one", "two"])
    assert model.chat("a").text == "one"
    assert model.chat("b").text == "two"
    assert [c.messages[-1].content for c in model.calls] == ["a", "b"]
    model.assert_all_used()


def test_a_call_beyond_the_script_fails_loudly() -> None:
    model = ScriptedModel(["only"])
    model.chat("first")
    with pytest.raises(
        ScriptError, match=r"got call 2 but its script has only 1 reply.*'surprise'"
    ):
        model.chat("surprise")


def test_unused_replies_are_reported() -> None:
    model = ScriptedModel(["used", "never", ScriptedReply(tool_calls=[ToolCall(id="1", name="t")])])
    model.chat("x")
    assert len(model.unused) == 2
    with pytest.raises(
        ScriptError,
        match=r"2 scripted replies were never used: \['never', \"tool calls \['t'\]\"\]",
    ):
        model.assert_all_used()


def test_expectations_check_the_request() -> None:
    model = ScriptedModel([ScriptedReply(content="ok", expect="weather")])
    with pytest.raises(ScriptError, match="expected a last message containing 'weather'"):
        model.chat("what time is it?")


def test_tool_calls_errors_and_functions() -> None:
    call = ToolCall(id="c1", name="search", arguments={"q": "x"})
    model = ScriptedModel(
        [
            ScriptedReply(tool_calls=[call]),
            EndpointError("down"),
            lambda req: f"echo {req.messages[-1].content}",
            Message.assistant("from a message"),
            ChatResponse(model="m", message=Message.assistant("full response")),
        ]
    )
    first = model.chat("go", tools=[{"name": "search", "parameters": {"type": "object"}}])
    assert first.tool_calls == [call] and first.finish_reason == "tool_calls"
    with pytest.raises(EndpointError, match="down"):
        model.chat("again")
    assert model.chat("ping").text == "echo ping"
    assert model.chat("m").text == "from a message"
    assert model.chat("r").text == "full response"


def test_usage_is_estimated_and_free() -> None:
    reply = ScriptedModel(["a reply of some length"]).chat("a prompt of some length too")
    assert reply.usage.input_tokens > 0 and reply.usage.output_tokens > 0
    assert reply.cost_usd == 0.0


def test_script_file(tmp_path: Path) -> None:
    script = tmp_path / "replies.yaml"
    script.write_text(
        "- hello\n"
        "- content: null\n"
        "  tool_calls: [{name: add, arguments: {a: 1, b: 2}}]\n"
        "- {content: bye, expect: thanks}\n"
    )
    model = get_model(f"scripted:{script}", settings=Settings())
    assert model.chat("hi").text == "hello"
    assert model.chat("add").tool_calls[0].arguments == {"a": 1, "b": 2}
    assert model.chat("thanks!").text == "bye"


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("{a: 1}", "must hold a list of replies"),
        ("- [1, 2]", "reply 0: expected a string or an object"),
        ("- {tool_calls: [{arguments: {}}]}", "reply 0"),
        ("- 'unterminated", "not valid JSON or YAML"),
    ],
)
def test_bad_script_files(tmp_path: Path, text: str, error: str) -> None:
    script = tmp_path / "bad.yaml"
    script.write_text(text)
    with pytest.raises(ConfigError, match=error):
        get_model(f"scripted:{script}", settings=Settings())


def test_missing_script_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        get_model(f"scripted:{tmp_path}/none.yaml", settings=Settings())


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("- {content: 5}", "content"),
        ("- {tool_calls: [{name: 5}]}", "tool_calls.name"),
        ("- {tool_calls: [{name: t, arguments: 5}]}", "tool_calls.arguments"),
        ("- {tool_calls: x}", "tool_calls"),
    ],
)
def test_script_file_errors_name_the_field_not_internal_classes(
    tmp_path: Path, text: str, field: str
) -> None:
    script = tmp_path / "bad.yaml"
    script.write_text(text)
    with pytest.raises(ConfigError) as info:
        get_model(f"scripted:{script}", settings=Settings())
    message = str(info.value)
    assert f"reply 0: {field}:" in message and "\n" not in message, message
    for internal in ("ScriptedReply", "ToolCall", "pydantic", "validation error"):
        assert internal not in message, message
