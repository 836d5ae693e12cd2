"""Exporting runs: mascope JSONL (lossless) and OpenTelemetry GenAI spans (OTLP JSON)."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, Literal

from mascope.errors import ConfigError, did_you_mean

from ._constants import EXPORT_FORMATS
from ._formats import RunBundle
from ._inputs import gather
from ._schema import AnnotationBase, AttributionBase, Run, RunBase, Step, StepBase
from ._store import TraceStore

ExportFormat = Literal["jsonl", "otel"]


def bundle(store: TraceStore, run_id: str) -> RunBundle:
    """Everything stored about one run, redacted again with the store's redactor.

    Rows were redacted when written, but perhaps by an older redactor or
    without a secret the environment holds now; what leaves the store is
    checked again.
    """
    run = store.get_run(run_id)

    def clean(row: dict[str, Any]) -> dict[str, Any]:
        # Text fields by the text rules; structured fields (spec, metadata, step
        # data) also by field name, as the store does when it writes them.
        # `inputs` holds content hashes, which must stay exact (their texts are
        # redacted below).
        return {
            k: v
            if k == "inputs"
            else store.redact.value(v)
            if isinstance(v, dict)
            else store.redact.strings(v)
            for k, v in row.items()
        }

    steps = [StepBase.model_validate(clean(s.model_dump())) for s in store.iter_steps(run_id)]
    return RunBundle(
        run=RunBase.model_validate(clean(run.model_dump())),
        steps=steps,
        annotations=[
            # Every label says which of the three states it is, old ones too.
            AnnotationBase.model_validate(clean({**a.model_dump(), "status": a.label_status}))
            for a in store.annotations(run_id)
        ],
        attributions=[
            AttributionBase.model_validate(clean(a.model_dump()))
            for a in store.attributions(run_id)
        ],
        blobs=gather((ref for s in steps for ref in s.inputs or ()), store.blobs),
    )


def export_runs(store: TraceStore, run_ids: Sequence[str], fmt: str, out: str | Path) -> int:
    """Write runs to `out` atomically (a temp file renamed into place); returns the count."""
    if fmt not in EXPORT_FORMATS:
        raise ConfigError(
            f"unknown export format {fmt!r}{did_you_mean(fmt, EXPORT_FORMATS)}; use jsonl or otel"
        )
    ids = [store.resolve_run_id(r) for r in run_ids]  # fail before writing anything
    target = Path(out).expanduser()
    if not target.parent.exists():
        raise ConfigError(f"cannot write {target}: folder {target.parent} does not exist")
    if target.is_dir():
        raise ConfigError(f"cannot write {target}: it is a folder; name a file to write")
    _refuse_to_replace(store, target)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    except OSError as exc:
        raise ConfigError(
            f"cannot write {target}: {exc.strerror or exc}; choose a file in a folder you can write"
        ) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            if fmt == "jsonl":
                write_jsonl(store, ids, fh)
            else:
                json.dump(otel_document(store, ids), fh, ensure_ascii=False)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise ConfigError(f"cannot write {target}: {exc.strerror or exc}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return len(ids)


def _refuse_to_replace(store: TraceStore, target: Path) -> None:
    """Refuse a target whose replacement would lose data: the store itself (or its
    WAL, or its checkpoints), any SQLite database, or something that is not a file."""
    if not (target.exists() or target.is_symlink()):
        return
    if not target.is_file():  # a device, a pipe: renaming over it would replace it
        raise ConfigError(f"cannot write {target}: it is not a regular file; name a file to write")
    if store.path is not None:
        base = store.path
        checkpoints = base.with_name(base.stem + ".checkpoints" + (base.suffix or ".db"))
        for owned in (base, checkpoints):
            for suffix in ("", "-wal", "-shm", "-journal"):
                other = owned.with_name(owned.name + suffix)
                if other.exists() and os.path.samefile(other, target):
                    raise ConfigError(
                        f"cannot write {target}: it is the trace store's own file; "
                        "name another file to export to"
                    )
    with open(target, "rb") as fh:
        if fh.read(16) == b"SQLite format 3\x00":
            raise ConfigError(
                f"cannot write {target}: it is a SQLite database, which the export would "
                "replace; name another file"
            )


def write_jsonl(store: TraceStore, run_ids: Sequence[str], fh: IO[str]) -> None:
    for rid in run_ids:
        fh.write(json.dumps(bundle(store, rid).to_json_dict(), ensure_ascii=False))
        fh.write("\n")


# -- OpenTelemetry GenAI ------------------------------------------------------------------


def otel_document(store: TraceStore, run_ids: Sequence[str]) -> dict[str, Any]:
    """OTLP JSON (`resourceSpans`) with GenAI semantic-convention attributes."""
    spans: list[dict[str, Any]] = []
    for rid in run_ids:
        # Redacted again on the way out, as `bundle` does (attribute names are untouched).
        spans.extend(store.redact.strings(span) for span in _run_spans(store, rid))
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [_attr("service.name", "mascope")]},
                "scopeSpans": [
                    {"scope": {"name": "mascope", "version": _version()}, "spans": spans}
                ],
            }
        ]
    }


def _version() -> str:
    from mascope import __version__

    return __version__


def _run_spans(store: TraceStore, run_id: str) -> Iterator[dict[str, Any]]:
    run = store.get_run(run_id)
    trace_id = _hex(run.id, 32)
    root_id = _hex(run.id + ":root", 16)
    start = run.started_at
    steps = list(store.iter_steps(run_id))
    end = run.finished_at or (steps[-1].created_at if steps else start)
    step_span: dict[int, str] = {}
    previous = start
    for step in steps:
        span_id = _hex(f"{run.id}:{step.index}", 16)
        step_span[step.index] = span_id
        began = step.created_at - timedelta(seconds=step.latency_s) if step.latency_s else previous
        yield _step_span(run, step, trace_id, span_id, root_id, max(began, start), step.created_at)
        previous = step.created_at

    events = []
    for a in store.annotations(run_id):
        events.append(
            {
                "timeUnixNano": _nanos(a.created_at),
                "name": "gen_ai.evaluation.result",
                "attributes": _attrs(
                    {
                        "gen_ai.evaluation.name": a.mode,
                        "gen_ai.evaluation.score.label": a.label_status,
                        "gen_ai.evaluation.score.value": a.confidence,
                        "gen_ai.evaluation.explanation": a.rationale or None,
                        "mascope.uncertain_because": a.status_reason or None,
                        "mascope.taxonomy": a.taxonomy,
                        "mascope.annotator": a.annotator,
                        "mascope.evidence_steps": [int(i) for i in a.evidence_steps] or None,
                        "mascope.step_index": a.step_index,
                    }
                ),
            }
        )
    for att in store.attributions(run_id):
        events.append(
            {
                "timeUnixNano": _nanos(att.created_at),
                "name": "mascope.attribution",
                "attributes": _attrs(
                    {
                        "mascope.attribution.method": att.method,
                        "gen_ai.agent.name": att.agent,
                        "mascope.step_index": att.step_index,
                        "mascope.attribution.reason": att.reason or None,
                        "mascope.attribution.verified": att.verified,
                        "mascope.attribution.replay_run_id": att.replay_run_id,
                    }
                ),
            }
        )
    yield {
        "traceId": trace_id,
        "spanId": root_id,
        "name": f"invoke_workflow {run.team or 'team'}",
        "kind": 1,
        "startTimeUnixNano": _nanos(start),
        "endTimeUnixNano": _nanos(max(end, start)),
        "attributes": _attrs(
            {
                "gen_ai.operation.name": "invoke_workflow",
                "gen_ai.conversation.id": run.id,
                "gen_ai.usage.input_tokens": run.input_tokens,
                "gen_ai.usage.output_tokens": run.output_tokens,
                "mascope.run.status": run.status,
                "mascope.run.team": run.team,
                "mascope.run.task": run.task,
                "mascope.run.termination_reason": run.termination_reason,
                "mascope.run.parent_run_id": run.parent_run_id,
                "mascope.run.fork_step": run.fork_step,
                "mascope.run.cost_usd": run.cost_usd,
            }
        ),
        "events": events,
        "status": {
            "code": 1
            if run.status == "succeeded"
            else 2
            if run.status in ("failed", "error")
            else 0
        },
    }


def _step_span(
    run: Run, step: Step, trace_id: str, span_id: str, parent: str, began: datetime, ended: datetime
) -> dict[str, Any]:
    data = step.data or {}
    common = {
        "gen_ai.conversation.id": run.id,
        "mascope.step.index": step.index,
        "mascope.step.kind": step.kind,
    }
    if step.kind == "model_call":
        name = f"chat {step.model or ''}".strip()
        attrs = {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": step.model,
            "gen_ai.provider.name": (step.model or "").split(":", 1)[0] or None,
            "gen_ai.usage.input_tokens": step.input_tokens,
            "gen_ai.usage.output_tokens": step.output_tokens,
            "gen_ai.agent.name": step.agent,
            "gen_ai.response.finish_reasons": [data["finish_reason"]]
            if data.get("finish_reason")
            else None,
        }
        kind = 3  # client
    elif step.kind in ("tool_call", "tool_result", "refusal"):
        tool = data.get("tool") or data.get("name") or "tool"
        name = f"execute_tool {tool}"
        attrs = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": tool,
            "gen_ai.tool.call.id": data.get("call_id") or data.get("id"),
            "gen_ai.tool.call.arguments": json.dumps(data["arguments"])
            if "arguments" in data
            else None,
            "gen_ai.tool.call.result": step.content if step.kind == "tool_result" else None,
            "gen_ai.agent.name": step.agent,
        }
        kind = 1
    else:
        name = f"invoke_agent {step.agent}".strip()
        attrs = {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": step.agent,
            "gen_ai.request.model": step.model,
            "gen_ai.usage.input_tokens": step.input_tokens,
            "gen_ai.usage.output_tokens": step.output_tokens,
            "mascope.step.content": step.content,
        }
        kind = 1
    return {
        "traceId": trace_id,
        "spanId": span_id,
        "parentSpanId": parent,
        "name": name,
        "kind": kind,
        "startTimeUnixNano": _nanos(began),
        "endTimeUnixNano": _nanos(max(ended, began)),
        "attributes": _attrs({**common, **attrs}),
        "status": {"code": 2, "message": step.error} if step.error else {"code": 0},
    }


def _hex(seed: str, length: int) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()[:length]


def _nanos(moment: datetime) -> str:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return str(int(aware.timestamp() * 1_000_000) * 1000)


def _attr(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    if isinstance(value, float):
        return {"key": key, "value": {"doubleValue": value}}
    if isinstance(value, list):
        return {
            "key": key,
            "value": {"arrayValue": {"values": [_attr("", v)["value"] for v in value]}},
        }
    return {"key": key, "value": {"stringValue": str(value)}}


def _attrs(values: dict[str, Any]) -> list[dict[str, Any]]:
    return [_attr(k, v) for k, v in values.items() if v is not None]
