"""Spans made by the real OpenTelemetry SDK, encoded with its own OTLP encoder."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Span, Tracer


@contextmanager
def recording(
    service: str = "demo-app",
) -> Iterator[tuple[Tracer, Callable[[], list[ReadableSpan]]]]:
    """A tracer whose finished spans are kept in memory, and a function returning them."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    try:
        yield provider.get_tracer("test.instrumentation"), exporter.get_finished_spans  # type: ignore[misc]
    finally:
        provider.shutdown()


def otlp_protobuf(spans: Sequence[ReadableSpan]) -> bytes:
    """The bytes the SDK's OTLP/HTTP exporter sends."""
    return encode_spans(spans).SerializeToString()  # type: ignore[no-any-return]


def otlp_json(spans: Sequence[ReadableSpan]) -> dict[str, Any]:
    """OTLP JSON as the collector's file exporter writes it (hex ids, camelCase)."""
    data = json_format.MessageToDict(encode_spans(spans))
    import base64

    for rs in data.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for span in ss.get("spans", []):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
    return data


def otlp_json_line(spans: Sequence[ReadableSpan]) -> str:
    return json.dumps(otlp_json(spans))


def text_messages(role: str, text: str) -> str:
    """A `gen_ai.input.messages` / `gen_ai.output.messages` value: one text message."""
    return json.dumps([{"role": role, "parts": [{"type": "text", "content": text}]}])


@contextmanager
def agent_span(tracer: Tracer, name: str) -> Iterator[Span]:
    """A GenAI `invoke_agent` span naming the agent."""
    with tracer.start_as_current_span(f"invoke_agent {name}") as agent:
        agent.set_attribute("gen_ai.operation.name", "invoke_agent")
        agent.set_attribute("gen_ai.agent.name", name)
        yield agent


@contextmanager
def chat_span(
    tracer: Tracer,
    name: str = "chat",
    *,
    model: str | None = None,
    said: str | None = None,
    answer: str | None = None,
) -> Iterator[Span]:
    """A GenAI `chat` span: the user's text in, the assistant's text out, when given."""
    with tracer.start_as_current_span(name) as chat:
        chat.set_attribute("gen_ai.operation.name", "chat")
        if model is not None:
            chat.set_attribute("gen_ai.request.model", model)
        if said is not None:
            chat.set_attribute("gen_ai.input.messages", text_messages("user", said))
        if answer is not None:
            chat.set_attribute("gen_ai.output.messages", text_messages("assistant", answer))
        yield chat
