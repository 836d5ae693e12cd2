"""Bulk writes: already-validated run bundles (an import) in one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert, or_, select

from ._engine import Backend, aware
from ._inputs import decode_inputs, encode_inputs
from ._labels import Labels
from ._redact import Redactor
from ._schema import Run

_RUNS = Run.__table__  # type: ignore[attr-defined]


def write_bundles(
    backend: Backend, redact: Redactor, labels: Labels, bundles: Sequence[Any]
) -> tuple[int, int]:
    """Write bundles whose id or source key is new; returns (written, skipped)."""
    written = skipped = 0
    r = redact
    with backend.write.begin() as conn:
        for bundle in bundles:
            run = bundle.run
            same = _RUNS.c.id == run.id
            if run.source_key:
                same = or_(same, _RUNS.c.source_key == run.source_key)
            if conn.execute(select(_RUNS.c.id).where(same)).first() is not None:
                skipped += 1
                continue
            row = run.model_dump()
            row["metadata"] = r.value(row.pop("metadata_"))
            for key in ("task", "team"):
                row[key] = r.text(row[key])
            for key in ("ground_truth", "final_answer"):
                row[key] = r.optional(row[key])
            for key in ("spec", "intervention"):
                row[key] = r.value(row[key])
            row["step_count"] = len(bundle.steps)
            row["owner"] = None
            conn.execute(insert(_RUNS), aware(row))
            if bundle.steps:
                blobs: dict[str, str] = {}
                step_rows = [
                    {
                        "run_id": run.id,
                        "idx": st.index,
                        "agent": r.text(st.agent),  # imported names are untrusted text too
                        "kind": st.kind,
                        "content": r.text(st.content),
                        "data": None if st.data is None else r.value(st.data),
                        "model": st.model,
                        "input_tokens": st.input_tokens,
                        "output_tokens": st.output_tokens,
                        "latency_s": st.latency_s,
                        "cost_usd": st.cost_usd,
                        "checkpoint_id": st.checkpoint_id,
                        "error": r.optional(st.error),
                        "created_at": st.created_at,
                        "inputs": _import_inputs(r, st.inputs, bundle.blobs, blobs),
                    }
                    for st in bundle.steps
                ]
                backend.insert_blobs(conn, blobs)
                backend.insert_steps(conn, step_rows)
            labels.insert_in(conn, [labels.annotation_row(run.id, a) for a in bundle.annotations])
            for a in bundle.attributions:
                labels.add_attribution_in(conn, labels.attribution_row(run.id, a))
            written += 1
    return written, skipped


def _import_inputs(
    redact: Redactor, refs: list[dict[str, Any]] | None, given: dict[str, str], out: dict[str, str]
) -> list[dict[str, Any]] | None:
    """An imported step's input references, re-made from their text: the
    file's keys are not trusted to be the hashes of the texts they name."""
    if refs is None:
        return None
    new_refs, blobs = encode_inputs(decode_inputs(refs, given), redact)
    out.update(blobs)
    return new_refs


__all__ = ["write_bundles"]
