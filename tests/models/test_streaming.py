"""`achat(on_token=...)`: an answer in pieces as it is generated, and the same response
as without streaming (usage, latency, retries); a stream that breaks off is retried."""

from __future__ import annotations

import pytest

from mascope.errors import EndpointError
from mascope.models import OpenAIModel, RetryEvent, RetryPolicy, ScriptedModel

from .servers import Fault, FaultServer, LlamaServer, ok

FAST = RetryPolicy(max_retries=2, initial_wait=0.01, jitter=0.0, timeout=5.0)


def test_scripted_answers_stream_a_word_at_a_time() -> None:
    pieces: list[str] = []
    model = ScriptedModel(["one two\nthree ", "plain"])
    reply = model.chat("count", on_token=pieces.append)
    assert pieces == ["one", " two", "\nthree", " "]
    assert "".join(pieces) == reply.text
    assert reply.usage == model.chat("again").usage.model_copy(update={"output_tokens": reply.usage.output_tokens})  # fmt: skip


def test_structured_and_tool_answers_are_not_streamed() -> None:
    pieces: list[str] = []
    model = ScriptedModel(['{"a": 1}'])
    reply = model.chat("json", output={"type": "object"}, on_token=pieces.append)
    assert reply.parsed == {"a": 1} and pieces == []


def test_openai_stream_delivers_pieces_and_the_reported_usage() -> None:
    with FaultServer([ok("alpha beta gamma")]) as server:
        pieces: list[str] = []
        reply = OpenAIModel("fault-model", base_url=server.url, retry=FAST).chat(
            "hi", on_token=pieces.append
        )
    assert pieces == ["alpha", " beta", " gamma"]
    assert reply.text == "alpha beta gamma" and reply.finish_reason == "stop"
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (11, 3)
    assert server.requests[0]["stream"] is True
    assert server.requests[0]["stream_options"] == {"include_usage": True}
    assert reply.latency_s > 0 and reply.retries == []


def test_a_broken_stream_is_retried_after_telling_the_caller() -> None:
    order: list[str] = []

    def on_retry(event: RetryEvent) -> None:
        order.append(f"retry:{event.kind}")

    script = [Fault(answer="alpha beta gamma", cut_after=1), Fault(503), ok("alpha beta gamma")]
    with FaultServer(script) as server:
        reply = OpenAIModel("fault-model", base_url=server.url, retry=FAST).chat(
            "hi", on_token=order.append, on_retry=on_retry
        )
    assert order == [
        "alpha",
        "retry:connection",
        "retry:server_error",
        "alpha",
        " beta",
        " gamma",
    ]
    assert reply.text == "alpha beta gamma"
    assert [e.kind for e in reply.retries] == ["connection", "server_error"]


def test_a_stream_that_keeps_breaking_gives_up_with_the_reason() -> None:
    with FaultServer([Fault(answer="a b c", cut_after=1)] * 3) as server:
        model = OpenAIModel("fault-model", base_url=server.url, retry=FAST)
        with pytest.raises(EndpointError, match="after 3 attempts"):
            model.chat("hi", on_token=lambda piece: None)


@pytest.mark.slow
def test_llama_cpp_server_streams_what_it_would_answer(llama_server: LlamaServer) -> None:
    model = OpenAIModel(llama_server.model, base_url=llama_server.url)
    pieces: list[str] = []
    streamed = model.chat("Count from one to five.", max_tokens=24, temperature=0, seed=1, on_token=pieces.append)  # fmt: skip
    whole = model.chat("Count from one to five.", max_tokens=24, temperature=0, seed=1)
    assert len(pieces) > 1 and "".join(pieces) == streamed.text == whole.text
    # its server sends no usage when streaming: the answer's tokens are its chunks
    assert streamed.usage.output_tokens == whole.usage.output_tokens == len(pieces)
