"""Exporting runs: mascope JSONL (lossless), and the atomic file writing every export uses.

OpenTelemetry GenAI spans are built in `mascope.integrations` (they need the SDK).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any, Literal

from mascope._files import check_writable_target, write_atomically
from mascope.errors import ConfigError, did_you_mean

from ._constants import EXPORT_FORMATS
from ._formats import RunBundle
from ._inputs import decode_inputs, encode_inputs, gather
from ._schema import AnnotationBase, AttributionBase, RunBase, StepBase
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
        # `inputs` holds content hashes of the texts a model was sent: they are
        # re-encoded below from the redacted texts, so new hashes match them.
        return {
            k: v
            if k == "inputs"
            else store.redact.value(v)
            if isinstance(v, dict)
            else store.redact.strings(v)
            for k, v in row.items()
        }

    stored = list(store.iter_steps(run_id))
    texts = gather((ref for s in stored for ref in s.inputs or ()), store.blobs)
    steps, blobs = [], {}
    for s in stored:
        row = clean(s.model_dump())
        if s.inputs:  # a secret known only now is masked in what the model was sent, too
            row["inputs"], fresh = encode_inputs(decode_inputs(s.inputs, texts), store.redact)
            blobs.update(fresh)
        steps.append(StepBase.model_validate(row))
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
        blobs=blobs,
    )


def export_runs(store: TraceStore, run_ids: Sequence[str], fmt: str, out: str | Path) -> int:
    """Write runs as mascope JSONL to `out` atomically (a temp file renamed into place);
    returns the count. OpenTelemetry spans are `mascope.integrations.export_otel`."""
    if fmt == "otel":
        raise ConfigError(
            "the otel format is written by mascope.integrations.export_otel "
            "(`mascope runs export --format otel`); export_runs writes jsonl"
        )
    if fmt not in EXPORT_FORMATS:
        raise ConfigError(
            f"unknown export format {fmt!r}{did_you_mean(fmt, EXPORT_FORMATS)}; use jsonl or otel"
        )
    ids = [store.resolve_run_id(r) for r in run_ids]  # fail before writing anything
    write_export(store, out, lambda fh: write_jsonl(store, ids, fh))
    return len(ids)


def write_export(store: TraceStore, out: str | Path, write: Callable[[IO[str]], None]) -> Path:
    """Write an export file atomically: `write` fills a temp file that is renamed over `out`.

    Refuses, before anything is written, a target whose replacement would lose data
    (the store's own files, any SQLite database, something that is not a file) or
    that cannot be written; a failure leaves no temp file behind. Returns the path.
    """
    target = Path(out).expanduser()
    check_writable_target(target)
    _refuse_to_replace(store, target)
    return write_atomically(target, write)


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
