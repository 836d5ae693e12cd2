"""The openai backend against a real OpenAI-compatible server: llama-cpp-python's own,
serving the embedded SmolLM2 on loopback."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from mascope.models import OpenAIModel, get_model, learnt_schema_mode
from mascope.settings import Settings

from .servers import LlamaServer

pytestmark = pytest.mark.slow


class Capital(BaseModel):
    city: str
    country: str


ADD = {
    "name": "add",
    "description": "Add two integers.",
    "parameters": {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
        "required": ["a", "b"],
    },
}


def test_plain_answer_with_usage(llama_server: LlamaServer) -> None:
    model = get_model(f"openai:{llama_server.model}@{llama_server.url}", settings=Settings())
    reply = model.chat("Say hello.", max_tokens=20, seed=1)
    assert reply.text.strip()
    assert reply.model == f"openai:smollm2@{llama_server.url}"
    assert reply.usage.input_tokens > 0 and 0 < reply.usage.output_tokens <= 20
    assert reply.latency_s > 0
    assert reply.cost_usd is None  # no price is known for a local server's model
    assert reply.retries == []


def test_structured_answer_learns_what_the_endpoint_accepts(llama_server: LlamaServer) -> None:
    model = OpenAIModel(llama_server.model, base_url=llama_server.url)
    reply = model.chat("What is the capital of France?", output=Capital, max_tokens=60, seed=1)
    assert isinstance(reply.parsed, Capital)
    assert reply.parsed.city
    # llama.cpp's server answers 500 to json_schema; mascope falls back and remembers.
    assert learnt_schema_mode(llama_server.url, llama_server.model) == "json_object_schema"
    again = model.chat("What is the capital of Italy?", output=Capital, max_tokens=60, seed=1)
    assert isinstance(again.parsed, Capital)


def test_forced_tool_call(llama_server: LlamaServer) -> None:
    model = OpenAIModel(llama_server.model, base_url=llama_server.url)
    reply = model.chat("Add 2 and 3.", tools=[ADD], tool_choice="add", max_tokens=60)
    assert [c.name for c in reply.tool_calls] == ["add"]
    assert set(reply.tool_calls[0].arguments) == {"a", "b"}
    assert all(isinstance(v, int) for v in reply.tool_calls[0].arguments.values())


def test_streaming(llama_server: LlamaServer) -> None:
    model = OpenAIModel(llama_server.model, base_url=llama_server.url)
    pieces = list(model.stream("Count from one to five.", max_tokens=24))
    assert len(pieces) > 1
    assert "".join(pieces).strip()


async def test_async_calls_share_a_client(llama_server: LlamaServer) -> None:
    model = OpenAIModel(llama_server.model, base_url=llama_server.url)
    first = await model.achat("Say yes.", max_tokens=8)
    second = await model.achat("Say no.", max_tokens=8)
    assert first.text and second.text
    await model.aclose()
