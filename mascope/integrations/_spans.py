"""OTLP trace data read with the official `opentelemetry-proto` messages into plain spans.

Both OTLP encodings are accepted: protobuf and JSON. OTLP JSON differs from
protobuf's own JSON mapping in one way that matters: trace and span ids are
hex strings, not base64, so they are checked and converted before
`json_format` parses the document. Everything here is untrusted input: a
malformed document is one `SpanFormatError` naming the field, never a
partial result.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mascope.errors import ConfigError, UserError

_HEX = re.compile(r"[0-9a-fA-F]*")
_MAX_VALUE_DEPTH = 32
"""Nesting of array and key-value attribute values kept; deeper parts become text."""


class SpanFormatError(UserError):
    """OTLP trace data that cannot be read; the message names the field."""


@dataclass
class SpanEvent:
    """A span event (a prompt or completion event, an exception)."""

    name: str
    time_ns: int
    attributes: dict[str, Any]


@dataclass
class SpanRecord:
    """One span, with its attributes as plain Python values."""

    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    start_ns: int
    end_ns: int
    attributes: dict[str, Any] = field(default_factory=dict)
    events: list[SpanEvent] = field(default_factory=list)
    status_code: int = 0
    """0 unset, 1 ok, 2 error (OTLP `Status.StatusCode`)."""
    status_message: str = ""
    kind: int = 0
    scope: str = ""
    """The instrumentation scope's name (which library emitted the span)."""
    resource: dict[str, Any] = field(default_factory=dict)


def _proto() -> Any:
    try:
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
    except ImportError:
        raise ConfigError(
            "reading OpenTelemetry traces needs opentelemetry-proto; "
            "install it with: pip install 'mascope[otel]'"
        ) from None
    return trace_service_pb2


def parse_protobuf(body: bytes) -> list[SpanRecord]:
    """Spans of a protobuf `ExportTraceServiceRequest`."""
    from google.protobuf.message import DecodeError

    request = _proto().ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except (DecodeError, RecursionError, ValueError) as exc:
        raise SpanFormatError(f"not an OTLP protobuf ExportTraceServiceRequest ({exc})") from None
    return _spans(request)


def from_sdk_spans(spans: Sequence[Any]) -> list[SpanRecord]:
    """Finished spans of the OpenTelemetry SDK (`ReadableSpan`) as plain spans.

    Encoded by the SDK's own OTLP encoder, exactly as its OTLP exporter would
    send them, and read back like a received request, so spans recorded
    in-process map the same as spans that arrive over the wire.
    """
    try:
        from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    except ImportError:
        raise ConfigError(
            "reading OpenTelemetry SDK spans needs opentelemetry-exporter-otlp-proto-common; "
            "install it with: pip install 'mascope[otel]'"
        ) from None
    return _spans(encode_spans(spans))


def parse_json_request(data: Any, *, where: str = "") -> list[SpanRecord]:
    """Spans of one OTLP JSON `ExportTraceServiceRequest` already decoded from JSON."""
    from google.protobuf import json_format

    at = f"{where}: " if where else ""
    if not isinstance(data, dict):
        raise SpanFormatError(f"{at}expected a JSON object with resourceSpans")
    _hex_ids_to_base64(data, at)
    request = _proto().ExportTraceServiceRequest()
    try:
        json_format.ParseDict(data, request, ignore_unknown_fields=True)
    except (json_format.ParseError, RecursionError, ValueError, TypeError) as exc:
        raise SpanFormatError(f"{at}not OTLP JSON: {_first_line(exc)}") from None
    return _spans(request)


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:300]


def _hex_ids_to_base64(data: dict[str, Any], at: str) -> None:
    """Check and convert the hex ids of OTLP JSON to the base64 `json_format` expects."""
    for r, rs in enumerate(_list(data, "resourceSpans", "resource_spans")):
        for s, ss in enumerate(_list(rs, "scopeSpans", "scope_spans")):
            for n, span in enumerate(_list(ss, "spans")):
                where = f"resourceSpans[{r}].scopeSpans[{s}].spans[{n}]"
                if not isinstance(span, dict):
                    raise SpanFormatError(f"{at}field {where}: expected an object")
                for key, size in _ID_FIELDS:
                    _convert(span, key, size, f"{at}field {where}", required=key != "parentSpanId")
                for k, link in enumerate(_list(span, "links")):
                    for key, size in _ID_FIELDS[:2]:
                        _convert(link, key, size, f"{at}field {where}.links[{k}]", required=True)


_ID_FIELDS = (("traceId", 16), ("spanId", 8), ("parentSpanId", 8))


def _list(obj: Any, *keys: str) -> list[Any]:
    if not isinstance(obj, dict):
        return []
    for key in keys:
        value = obj.get(key)
        if value is not None:
            return value if isinstance(value, list) else []
    return []


def _convert(obj: Any, key: str, size: int, where: str, *, required: bool) -> None:
    if not isinstance(obj, dict):
        return
    snake = re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), key)
    name = key if key in obj else snake if snake in obj else None
    value = obj.get(name) if name else None
    if value in (None, ""):
        if required:
            raise SpanFormatError(f"{where}.{key}: missing; a span needs a hex {key}")
        if name:
            obj.pop(name)
        return
    if not (isinstance(value, str) and len(value) == size * 2 and _HEX.fullmatch(value)):
        raise SpanFormatError(
            f"{where}.{key}: expected {size * 2} hex digits (got {str(value)[:40]!r})"
        )
    obj[name] = base64.b64encode(binascii.unhexlify(value)).decode()


def _spans(request: Any) -> list[SpanRecord]:
    out: list[SpanRecord] = []
    for r, rs in enumerate(request.resource_spans):
        resource = _attributes(rs.resource.attributes)
        for s, ss in enumerate(rs.scope_spans):
            scope = ss.scope.name
            for n, span in enumerate(ss.spans):
                where = f"resourceSpans[{r}].scopeSpans[{s}].spans[{n}]"
                trace_id, span_id = span.trace_id.hex(), span.span_id.hex()
                if len(span.trace_id) != 16 or not any(span.trace_id):
                    raise SpanFormatError(
                        f"field {where}.traceId: expected 16 non-zero bytes (got {trace_id!r})"
                    )
                if len(span.span_id) != 8 or not any(span.span_id):
                    raise SpanFormatError(
                        f"field {where}.spanId: expected 8 non-zero bytes (got {span_id!r})"
                    )
                parent = span.parent_span_id
                if parent and len(parent) != 8:
                    raise SpanFormatError(
                        f"field {where}.parentSpanId: expected 8 bytes (got {parent.hex()!r})"
                    )
                start, end = int(span.start_time_unix_nano), int(span.end_time_unix_nano)
                out.append(
                    SpanRecord(
                        trace_id=trace_id,
                        span_id=span_id,
                        parent_id=parent.hex() if parent and any(parent) else None,
                        name=span.name,
                        start_ns=start,
                        end_ns=max(end, start),
                        attributes=_attributes(span.attributes),
                        events=[
                            SpanEvent(e.name, int(e.time_unix_nano), _attributes(e.attributes))
                            for e in span.events
                        ],
                        status_code=int(span.status.code),
                        status_message=span.status.message,
                        kind=int(span.kind),
                        scope=scope,
                        resource=resource,
                    )
                )
    return out


def _attributes(kvs: Any) -> dict[str, Any]:
    return {kv.key: _value(kv.value, 0) for kv in kvs}


def _value(v: Any, depth: int) -> Any:
    which = v.WhichOneof("value")
    if which is None:
        return None
    if which in ("string_value", "bool_value", "double_value"):
        return getattr(v, which)
    if which == "int_value":
        return int(v.int_value)
    if which == "bytes_value":
        return base64.b64encode(v.bytes_value).decode()
    if depth >= _MAX_VALUE_DEPTH:
        return str(v)[:1000]
    if which == "array_value":
        return [_value(x, depth + 1) for x in v.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _value(kv.value, depth + 1) for kv in v.kvlist_value.values}
    return None


__all__ = [
    "SpanEvent",
    "SpanFormatError",
    "SpanRecord",
    "from_sdk_spans",
    "parse_json_request",
    "parse_protobuf",
]
