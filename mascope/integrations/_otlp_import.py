"""`mascope runs import otlp`: OTLP JSON files (the collector's file exporter) as runs.

A file holds one `ExportTraceServiceRequest` per line (or one pretty-printed
document). Every file is read, parsed with the official protobuf messages and
mapped before anything is written; a bad one stops the import with one line
naming the file, the line and the field. Spans are grouped into runs by trace
id; importing the same trace again is a no-op.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from mascope._safeload import IMPORT_LIMITS, loads_json, read_text
from mascope.errors import ConfigError, ImportFormatError
from mascope.traces import ImportReport, RunBase, RunBundle, StepBase, TraceStore, new_id
from mascope.traces._import import expand  # the same file and folder rules as every importer

from ._otel_map import MappedRun, _nanos_time, map_trace
from ._spans import SpanFormatError, SpanRecord, parse_json_request


def read_otlp_file(path: Path) -> list[SpanRecord]:
    """Every span in one OTLP JSON file; a malformed file is one `ImportFormatError`."""
    try:  # bounded even if the file grows after its size was checked
        text = read_text(path, what="OTLP file", limits=IMPORT_LIMITS)
    except ConfigError as exc:  # an import's file errors are import errors
        raise ImportFormatError(str(exc)) from None
    documents: list[tuple[str, object]] = []
    whole = None
    if text.lstrip().startswith("{") and "\n{" not in text.strip():
        try:  # one (perhaps pretty-printed) document
            whole = loads_json(text, source=str(path), limits=IMPORT_LIMITS)
        except json.JSONDecodeError:
            whole = None
    if whole is not None:
        documents.append(("record 1", whole))
    else:
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                value = loads_json(line, source=f"{path}: line {n}", limits=IMPORT_LIMITS)
            except json.JSONDecodeError as exc:
                raise ImportFormatError(
                    f"{path}: line {n}: not valid JSON ({exc.msg}, column {exc.colno}); "
                    "expected one OTLP ExportTraceServiceRequest per line"
                ) from None
            documents.append((f"line {n}", value))
    spans: list[SpanRecord] = []
    for where, value in documents:
        try:
            spans.extend(parse_json_request(value, where=f"{path}: {where}"))
        except SpanFormatError as exc:
            message = str(exc)
            if not message.startswith(str(path)):
                message = f"{path}: {where}: {message}"
            raise ImportFormatError(message) from None
    if not spans:
        raise ImportFormatError(
            f"{path}: holds no spans; expected OTLP JSON with resourceSpans[].scopeSpans[].spans[]"
        )
    return spans


def group_traces(spans: Sequence[SpanRecord]) -> dict[str, list[SpanRecord]]:
    """Spans by trace id, in the order traces first appear."""
    out: dict[str, list[SpanRecord]] = {}
    for s in spans:
        out.setdefault(s.trace_id, []).append(s)
    return out


def run_bundle(mapped: MappedRun, *, source: str = "otlp") -> RunBundle:
    """A mapped trace as a bundle the store writes in one transaction."""
    steps = [
        StepBase(
            index=i,
            created_at=_nanos_time(d.at_ns),
            **{k: v for k, v in d.as_kwargs().items() if k != "inputs"},
        )
        for i, d in enumerate(mapped.steps)
    ]
    inputs = {i: d.inputs for i, d in enumerate(mapped.steps) if d.inputs}
    run = RunBase(
        id=new_id(),
        team=mapped.team,
        task=mapped.task,
        status=mapped.status,
        final_answer=mapped.final_answer,
        termination_reason=mapped.termination_reason,
        started_at=mapped.started_at,
        finished_at=mapped.finished_at,
        input_tokens=sum(s.input_tokens or 0 for s in steps),
        output_tokens=sum(s.output_tokens or 0 for s in steps),
        step_count=len(steps),
        source=source,
        source_key=f"otlp:{mapped.trace_id}",
        metadata_=mapped.metadata,
    )
    from mascope.traces import Redactor
    from mascope.traces._inputs import encode_inputs  # the store re-cuts them on write

    blobs: dict[str, str] = {}
    redact = Redactor()
    for i, messages in inputs.items():
        refs, parts = encode_inputs(messages, redact)
        steps[i].inputs = refs
        blobs.update(parts)
    return RunBundle(run=run, steps=steps, blobs=blobs)


def parse_otlp(path: Path) -> list[RunBundle]:
    """One OTLP JSON file as run bundles, one per trace."""
    return [run_bundle(map_trace(spans)) for spans in group_traces(read_otlp_file(path)).values()]


def import_otlp(store: TraceStore, paths: Sequence[str | Path]) -> ImportReport:
    """Import OTLP JSON files (or folders of .json/.jsonl files) into `store`.

    Spans are grouped by trace id across all the files (a collector rotates its
    file, so one trace may straddle two); each run is counted for the file its
    trace first appears in.
    """
    files = expand(paths, "otlp")
    per_file = [(f, read_otlp_file(f)) for f in files]  # everything validated before writing
    traces: dict[str, list[SpanRecord]] = {}
    first_file: dict[str, Path] = {}
    for path, spans in per_file:
        for trace_id, group in group_traces(spans).items():
            traces.setdefault(trace_id, []).extend(group)
            first_file.setdefault(trace_id, path)
    owned: dict[Path, list[RunBundle]] = {path: [] for path, _ in per_file}
    for tid, spans in traces.items():
        owned[first_file[tid]].append(run_bundle(map_trace(spans)))
    report = ImportReport(files=len(files))
    for path, _ in per_file:
        mine = owned[path]
        written, skipped = store.write_bundles(mine) if mine else (0, 0)
        report.runs += written
        report.skipped += skipped
        if written:
            report.steps += sum(len(b.steps) for b in mine)
        report.per_file.append((str(path), written, skipped))
    return report


__all__ = ["group_traces", "import_otlp", "parse_otlp", "read_otlp_file", "run_bundle"]
