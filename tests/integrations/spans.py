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
from opentelemetry.trace import Tracer


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
