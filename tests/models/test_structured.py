"""Structured answers: validation, the one repair, and what the model is shown."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel

from mascope.errors import ConfigError, StructuredOutputError
from mascope.models import ScriptedModel, example_for, extract_json


class Verdict(BaseModel):
    passed: bool
    score: float
    feedback: str


GOOD = json.dumps({"passed": True, "score": 0.9, "feedback": "fine"})


def test_valid_answer_is_parsed_without_repair() -> None:
    model = ScriptedModel([GOOD])
    reply = model.chat("judge this", output=Verdict)
    assert reply.parsed == Verdict(passed=True, score=0.9, feedback="fine")
    assert reply.repairs == 0


def test_answer_in_fences_and_chatter_is_found() -> None:
    model = ScriptedModel([f"Sure! Here it is:\n```json\n{GOOD}\n```\nAnything else?"])
    assert model.chat("judge", output=Verdict).parsed.passed is True


def test_invalid_answer_is_repaired_once_with_the_error_and_an_example() -> None:
    model = ScriptedModel(['{"passed": "maybe", "score": 1}', GOOD])
    reply = model.chat("judge", output=Verdict)
    assert reply.parsed.feedback == "fine"
    assert reply.repairs == 1
    repair_prompt = model.calls[1].messages[-1].content or ""
    assert "passed: Input should be a valid boolean" in repair_prompt
    assert "feedback: Field required" in repair_prompt
    assert '{"passed": true, "score": 0.0, "feedback": "..."}' in repair_prompt
    # the model's own bad answer is in the conversation it repairs
    assert model.calls[1].messages[-2].content == '{"passed": "maybe", "score": 1}'


def test_usage_and_latency_add_up_over_the_repair() -> None:
    model = ScriptedModel(["not json at all", GOOD])
    reply = model.chat("judge", output=Verdict)
    single = ScriptedModel([GOOD]).chat("judge", output=Verdict)
    assert reply.usage.output_tokens > single.usage.output_tokens


def test_gives_up_after_one_repair() -> None:
    model = ScriptedModel(["nope", "still nope", "never asked"])
    with pytest.raises(
        StructuredOutputError, match=r"even after one repair \(the answer held no JSON"
    ):
        model.chat("judge", output=Verdict)
    assert len(model.calls) == 2


def test_dict_schema_is_checked_with_jsonschema() -> None:
    schema = {
        "type": "object",
        "properties": {"n": {"type": "integer", "minimum": 1}},
        "required": ["n"],
    }
    model = ScriptedModel(['{"n": 0}', '{"n": 3}'])
    reply = model.chat("count", output=schema)
    assert reply.parsed == {"n": 3}
    assert "n: 0 is less than the minimum of 1" in (model.calls[1].messages[-1].content or "")


def test_plain_types_work_too() -> None:
    assert ScriptedModel(["[1, 2, 3]"]).chat("list", output=list[int]).parsed == [1, 2, 3]


def test_an_invalid_schema_is_a_user_error() -> None:
    with pytest.raises(ConfigError, match="not a valid JSON schema"):
        ScriptedModel(["{}"]).chat("x", output={"type": "no-such-type"})


def test_extract_json() -> None:
    assert extract_json('  {"a": 1} ') == {"a": 1}
    assert extract_json('text [1, {"b": 2}] more') == [1, {"b": 2}]
    with pytest.raises(ValueError, match="empty"):
        extract_json("  ")
    with pytest.raises(ValueError, match="no JSON"):
        extract_json("{ broken")


def test_example_for_follows_refs_and_unions() -> None:
    class Inner(BaseModel):
        x: int

    class Outer(BaseModel):
        inner: Inner
        tags: list[str]
        maybe: str | None = None

    assert example_for(Outer.model_json_schema()) == {
        "inner": {"x": 0},
        "tags": ["..."],
        "maybe": None,
    }


class _Internal(BaseModel):
    passed: bool
    note: str


def test_the_give_up_message_names_what_was_asked_not_a_class() -> None:
    with pytest.raises(StructuredOutputError) as info:
        ScriptedModel(["nope", "still nope"]).chat("judge", output=_Internal)
    message = str(info.value)
    assert "_Internal" not in message and "a valid JSON answer {passed, note}" in message
    with pytest.raises(StructuredOutputError) as info:
        ScriptedModel(["nope", "still nope"]).chat("n?", output={"type": "object"})
    assert "answer answer" not in str(info.value) and "valid JSON answer" in str(info.value)


def test_a_cut_off_answer_is_repaired_with_a_short_excerpt_and_a_nudge() -> None:
    from mascope.models import ChatResponse, Message, Usage

    long = '{"passed": true, "note": "' + "very " * 400
    cut = ChatResponse(
        model="scripted", message=Message.assistant(long), finish_reason="length", usage=Usage()
    )
    model = ScriptedModel([cut, '{"passed": true, "note": "short"}'])
    assert model.chat("judge", output=_Internal, max_tokens=50).parsed.note == "short"
    repair = model.calls[1].messages[-1].content or ""
    assert "cut off at the limit of 50 tokens" in repair and "short sentences" in repair
    assert len(repair) < 1200
