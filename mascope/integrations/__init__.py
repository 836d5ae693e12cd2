"""OpenTelemetry in: the GenAI / OpenInference mapping, OTLP file import and the receiver (`mascope serve`).

from mascope.integrations import import_otlp
import_otlp(store, ["traces.jsonl"])   # the collector file exporter's format
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mascope._lazy import lazy_exports

if TYPE_CHECKING:
    from ._otel_map import MappedRun, StepDraft, TraceIndex, map_trace, span_role
    from ._otlp_import import import_otlp, parse_otlp, read_otlp_file
    from ._receiver import OtlpServer, Receiver
    from ._spans import (
        SpanFormatError,
        SpanRecord,
        from_sdk_spans,
        parse_json_request,
        parse_protobuf,
    )

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "MappedRun": "._otel_map",
        "StepDraft": "._otel_map",
        "TraceIndex": "._otel_map",
        "map_trace": "._otel_map",
        "span_role": "._otel_map",
        "import_otlp": "._otlp_import",
        "parse_otlp": "._otlp_import",
        "read_otlp_file": "._otlp_import",
        "OtlpServer": "._receiver",
        "Receiver": "._receiver",
        "SpanFormatError": "._spans",
        "SpanRecord": "._spans",
        "from_sdk_spans": "._spans",
        "parse_json_request": "._spans",
        "parse_protobuf": "._spans",
    },
)

__all__ = [
    "MappedRun",
    "OtlpServer",
    "Receiver",
    "SpanFormatError",
    "SpanRecord",
    "StepDraft",
    "TraceIndex",
    "from_sdk_spans",
    "import_otlp",
    "map_trace",
    "parse_json_request",
    "parse_otlp",
    "parse_protobuf",
    "read_otlp_file",
    "span_role",
]
