"""The local backend with the real embedded SmolLM2."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from pydantic import BaseModel, Field

from mascope.errors import ContextLengthError, ModelNotFoundError
from mascope.models import LocalModel, get_model
from mascope.settings import Settings

pytestmark = pytest.mark.slow


class Person(BaseModel):
    name: str
    age: int = Field(ge=0)
    hobbies: list[str]


@pytest.fixture(scope="module")
def local() -> LocalModel:
    model = get_model("local", settings=Settings())
    assert isinstance(model, LocalModel)
    model.load()
    return model


def test_answers_a_question(local: LocalModel) -> None:
    reply = local.chat("What is the capital of France?", max_tokens=40, seed=3)
    assert reply.text.strip()
    assert reply.model == "local"
    assert reply.usage.input_tokens > 5 and 0 < reply.usage.output_tokens <= 40
    assert reply.cost_usd == 0.0
    assert reply.finish_reason in ("stop", "length")


def test_json_schema_answers_parse(local: LocalModel) -> None:
    reply = local.chat("Invent a person with two hobbies.", output=Person, max_tokens=120, seed=7)
    assert isinstance(reply.parsed, Person)
    assert reply.parsed.age >= 0


def test_dict_schema_answers_parse(local: LocalModel) -> None:
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "integer"}, "unit": {"enum": ["m", "km"]}},
        "required": ["answer", "unit"],
    }
    reply = local.chat("How far is it from Paris to Rome?", output=schema, max_tokens=40)
    assert isinstance(reply.parsed["answer"], int)
    assert reply.parsed["unit"] in ("m", "km")


def test_tool_calls(local: LocalModel) -> None:
    weather = {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    }
    reply = local.chat("What is the weather in Oslo?", tools=[weather], tool_choice="required")
    assert [c.name for c in reply.tool_calls] == ["get_weather"]
    assert isinstance(reply.tool_calls[0].arguments["city"], str)
    assert reply.finish_reason == "tool_calls"


def test_streams_pieces(local: LocalModel) -> None:
    pieces = list(local.stream("Name three colours.", max_tokens=20))
    assert len(pieces) > 1


def test_same_seed_same_answer(local: LocalModel) -> None:
    a = local.chat("Tell me a fact about cats.", max_tokens=20, seed=42, temperature=0.8)
    b = local.chat("Tell me a fact about cats.", max_tokens=20, seed=42, temperature=0.8)
    assert a.text == b.text


def test_too_long_input_says_how_to_fix() -> None:
    small = LocalModel(n_ctx=256)
    with pytest.raises(ContextLengthError, match="MASCOPE_LOCAL_CTX"):
        small.chat("word " * 600, max_tokens=10)


def test_missing_gguf_file(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match=r"nope\.gguf does not exist"):
        get_model(f"local:{tmp_path / 'nope.gguf'}", settings=Settings())


def test_gguf_path_that_is_not_a_model(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"not a gguf file")
    with pytest.raises(ModelNotFoundError, match="cannot load GGUF file"):
        LocalModel(bogus).chat("hi")


COUNT = "Count from 1 to 2000, separated by commas."


def test_cancelling_stops_the_generation_at_the_next_token(local: LocalModel) -> None:
    """What a timed-out or interrupted call relies on: the model stops early, not after its whole answer."""
    import threading

    from mascope.models._types import ChatRequest, Message

    class CancelledMidAnswer(threading.Event):
        """Set while the 20th token is being computed, as a timeout firing mid-answer
        would be (a timer on the clock fires before the first token on a busy machine):
        the first to see it is the check the model makes after that token."""

        tokens = 0

        def is_set(self) -> bool:
            if sys._getframe(1).f_code.co_name == "stop_when_cancelled":
                self.tokens += 1
                if self.tokens >= 20:
                    self.set()
            return super().is_set()

    kwargs, _ = local._kwargs(ChatRequest(messages=[Message.user(COUNT)], max_tokens=1500))
    raw = local._run(kwargs, CancelledMidAnswer())
    assert 0 < raw["usage"]["completion_tokens"] < 200  # counting to 2000 takes thousands
    # and the model answers normally afterwards
    assert local.chat("Say hello.", max_tokens=8).text.strip()


def test_a_timed_out_call_frees_the_model_before_it_returns(local: LocalModel) -> None:
    import asyncio

    from mascope.models._local import _load
    from mascope.models._types import Message

    async def main() -> None:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(local.achat([Message.user(COUNT)], max_tokens=1500), 0.5)
        lock = _load(local.path, local.n_ctx, local.n_threads).lock
        assert lock.acquire(blocking=False)  # no generation is still running in the background
        lock.release()

    asyncio.run(main())


def test_streamed_answer_is_recorded_like_an_unstreamed_one(local: LocalModel) -> None:
    pieces: list[str] = []
    streamed = local.chat("Say hi.", max_tokens=30, temperature=0, seed=1, on_token=pieces.append)
    whole = local.chat("Say hi.", max_tokens=30, temperature=0, seed=1)
    assert len(pieces) > 1 and "".join(pieces) == streamed.text == whole.text
    # llama-cpp reports no usage when streaming; mascope counts the same tokens it would
    assert streamed.usage == whole.usage
    assert streamed.finish_reason == whole.finish_reason
