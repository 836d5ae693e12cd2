"""OpenTelemetry in and out: the GenAI / OpenInference mapping, OTLP file import, the
receiver (`mascope serve`) and the GenAI span export.

from mascope.integrations import import_otlp, export_otel, send_otel
import_otlp(store, ["traces.jsonl"])   # the collector file exporter's format
export_otel(store, [run_id], "spans.jsonl")   # the same format, back out
send_otel(store, [run_id], "http://127.0.0.1:4318")   # any OTLP/HTTP endpoint
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mascope._lazy import lazy_exports

if TYPE_CHECKING:
    from ._otel_export import export_otel, otlp_json, run_spans
    from ._otel_map import MappedRun, StepDraft, TraceIndex, map_trace, span_role
    from ._otel_send import SendReport, send_otel
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
        "SendReport": "._otel_send",
        "export_otel": "._otel_export",
        "otlp_json": "._otel_export",
        "run_spans": "._otel_export",
        "send_otel": "._otel_send",
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
    "SendReport",
    "SpanFormatError",
    "SpanRecord",
    "StepDraft",
    "TraceIndex",
    "export_otel",
    "from_sdk_spans",
    "import_otlp",
    "map_trace",
    "otlp_json",
    "parse_json_request",
    "parse_otlp",
    "parse_protobuf",
    "read_otlp_file",
    "run_spans",
    "send_otel",
    "span_role",
]
