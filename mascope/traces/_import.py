"""Importing traces other systems wrote: Who&When, MAD/MAST-Data, mascope JSONL.

Every file is parsed and validated before anything is written; a bad file
anywhere stops the import with one line naming the file, the record and the
field, and nothing is written. Then each file is written in one transaction.
Importing the same content again is a no-op.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, StrictInt, StrictStr, ValidationError, field_validator

from mascope._safeload import IMPORT_LIMITS, loads_json
from mascope.errors import ConfigError, ImportFormatError, did_you_mean
from mascope.taxonomy import MAST

from ._constants import IMPORT_FORMATS
from ._formats import RunBundle
from ._ids import is_valid_id, new_id
from ._inputs import check_blobs, check_refs
from ._mad import split_trace
from ._schema import RUN_STATUSES, AnnotationBase, AttributionBase, RunBase, StepBase
from ._store import TraceStore

ImportFormat = Literal["whowhen", "mad", "jsonl"]
FORMATS = IMPORT_FORMATS


@dataclass
class ImportReport:
    files: int = 0
    runs: int = 0
    skipped: int = 0
    steps: int = 0
    per_file: list[tuple[str, int, int]] = field(default_factory=list)
    """(file, runs written, runs skipped as already imported)."""


def import_paths(store: TraceStore, fmt: str, paths: Sequence[str | Path]) -> ImportReport:
    """Import files (or folders of them) in `fmt` into `store`."""
    if fmt not in FORMATS:
        raise ConfigError(
            f"unknown import format {fmt!r}{did_you_mean(fmt, FORMATS)}; use one of {', '.join(FORMATS)}"
        )
    parse = PARSERS[fmt]
    files = expand(paths, fmt)
    parsed = [(f, parse(f)) for f in files]  # validates everything before writing
    report = ImportReport(files=len(files))
    for path, bundles in parsed:
        written, skipped = store.write_bundles(bundles)
        report.runs += written
        report.skipped += skipped
        if written:
            report.steps += sum(len(b.steps) for b in bundles)
        report.per_file.append((str(path), written, skipped))
    return report


def expand(paths: Sequence[str | Path], fmt: str) -> list[Path]:
    """Files named, and the matching files inside folders named, in natural order."""
    if not paths:
        raise ConfigError("no files to import: name at least one file or folder")
    suffixes = {"jsonl": (".jsonl", ".json")}.get(fmt, (".json", ".jsonl"))
    out: list[Path] = []
    for p in paths:
        path = Path(p).expanduser()
        if path.is_dir():
            found = sorted(
                (f for f in path.rglob("*") if f.is_file() and f.suffix in suffixes), key=_natural
            )
            if not found:
                raise ConfigError(f"folder {path} holds no {' or '.join(suffixes)} files to import")
            out.extend(found)
        elif path.is_file():
            out.append(path)
        elif path.exists():  # a device or a pipe: it may never end
            raise ConfigError(f"{path} is not a regular file; name a file or folder to import")
        else:
            raise ConfigError(f"{path} does not exist")
    return out


def _natural(path: Path) -> list[Any]:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(path))]


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, refusing one over the import size bound before reading it."""
    try:
        size = path.stat().st_size
        if size > IMPORT_LIMITS.max_bytes:
            raise ImportFormatError(
                f"{path}: {size:,} bytes is over the import limit of {IMPORT_LIMITS.max_bytes:,} bytes; split the file"
            )
        return path.read_bytes()
    except OSError as exc:
        raise ImportFormatError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _read_json(path: Path) -> Any:
    raw = _read_bytes(path)
    try:
        return loads_json(raw.decode("utf-8-sig"), source=str(path), limits=IMPORT_LIMITS)
    except UnicodeDecodeError:
        raise ImportFormatError(f"{path}: not UTF-8 text, so not JSON") from None
    except json.JSONDecodeError as exc:
        what = (
            "truncated or malformed JSON" if exc.pos >= len(raw.rstrip()) - 1 else "not valid JSON"
        )
        raise ImportFormatError(
            f"{path}: {what} (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None


def _fingerprint(value: Any) -> str:
    return hashlib.sha256(
        json.dumps(value, sort_keys=True, ensure_ascii=False).encode()
    ).hexdigest()[:32]


def _field_error(path: Path, record: str, exc: ValidationError) -> ImportFormatError:
    err = exc.errors()[0]
    loc = "".join(
        f"[{p}]" if isinstance(p, int) else (f".{p}" if i else str(p))
        for i, p in enumerate(err["loc"])
    )
    got = err.get("input")
    shown = "" if isinstance(got, dict | list) or got is None else f" (got {json.dumps(got)[:40]})"
    more = f" (+{len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return ImportFormatError(
        f"{path}: {record}: field {loc or '(record)'}: {err['msg']}{shown}{more}"
    )


# -- Who&When ---------------------------------------------------------------------


class _WWMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    content: str
    role: str
    name: str | None = None


class _WWRecord(BaseModel):
    model_config = ConfigDict(extra="allow")
    question: str
    ground_truth: str | int | float
    history: list[_WWMessage]
    mistake_agent: str
    mistake_step: StrictStr | StrictInt
    mistake_reason: str
    is_correct: bool | None = None
    is_corrected: bool | None = None
    level: str | int | None = None
    question_ID: str | None = None
    system_prompt: dict[str, str] | None = None

    @field_validator("mistake_step")
    @classmethod
    def _step_is_an_index(cls, v: str | int) -> str | int:
        if isinstance(v, str) and not (v.strip().isascii() and v.strip().isdigit()):
            raise ValueError('must be a 0-based step index such as "3"')
        return v


def parse_whowhen(path: Path) -> list[RunBundle]:
    """One Who&When file: one failed run with its gold who-and-when."""
    data = _read_json(path)
    if not isinstance(data, dict):
        raise ImportFormatError(
            f"{path}: record 1: expected a JSON object with question, history, mistake_step, ..."
        )
    try:
        rec = _WWRecord.model_validate(data)
    except ValidationError as exc:
        raise _field_error(path, "record 1", exc) from None
    step = int(rec.mistake_step)
    if not 0 <= step < len(rec.history):
        raise ImportFormatError(
            f"{path}: record 1: field mistake_step: {step} is outside the history (0..{len(rec.history) - 1})"
        )
    subset = (
        "algorithm-generated"
        if rec.system_prompt is not None or rec.is_correct is not None
        else "hand-crafted"
    )
    run_id = new_id()
    steps = [
        StepBase(
            index=i,
            agent=m.name or m.role,
            kind="message",
            content=m.content,
            data={"role": m.role, **({"name": m.name} if m.name else {})},
        )
        for i, m in enumerate(rec.history)
    ]
    meta: dict[str, Any] = {
        "file": path.name,
        "subset": subset,
        "question_id": rec.question_ID,
        "level": rec.level,
    }
    if rec.is_correct is not None:
        meta["is_correct"] = rec.is_correct
    if rec.is_corrected is not None:
        meta["is_corrected"] = rec.is_corrected
    if rec.system_prompt is not None:
        meta["system_prompt"] = rec.system_prompt
    run = RunBase(
        id=run_id,
        team=f"who&when/{subset}",
        task=rec.question,
        ground_truth=str(rec.ground_truth),
        status="failed",
        termination_reason="imported",
        source="whowhen",
        source_key=f"whowhen:{_fingerprint(data)}",
        step_count=len(steps),
        metadata_=meta,
    )
    gold = AttributionBase(
        id=new_id(),
        method="human",
        agent=rec.mistake_agent,
        step_index=step,
        reason=rec.mistake_reason,
        annotator="human:who&when",
        with_ground_truth=True,
    )
    return [RunBundle(run=run, steps=steps, attributions=[gold])]


# -- MAD / MAST-Data ------------------------------------------------------------------


class _MadRecord(BaseModel):
    model_config = ConfigDict(extra="allow")
    trace: str
    annotations: list[dict[str, Any]] = []
    mas_name: str = "unknown"
    benchmark_name: str | None = None
    trace_id: int | str | None = None
    round: str | None = None


def parse_mad(path: Path) -> list[RunBundle]:
    """MAD records (a JSON list, one object, or JSON lines): raw logs split into
    steps where the framework's markers allow, human labels mapped to MAST-14 by name."""
    records = _json_records(path)
    bundles = []
    for n, data in enumerate(records, start=1):
        where = f"record {n}"
        if not isinstance(data, dict):
            raise ImportFormatError(
                f"{path}: {where}: expected a JSON object with trace and annotations"
            )
        try:
            rec = _MadRecord.model_validate(data)
        except ValidationError as exc:
            raise _field_error(path, where, exc) from None
        bundles.append(_mad_bundle(path, where, rec, data))
    return bundles


def _json_records(path: Path) -> list[Any]:
    text_head = _read_bytes(path).lstrip()[:1]
    if path.suffix == ".jsonl" or (text_head and text_head not in (b"[", b"{")):
        return _jsonl_values(path)
    data = _read_json(path)
    return data if isinstance(data, list) else [data]


def _mad_bundle(path: Path, where: str, rec: _MadRecord, raw: dict[str, Any]) -> RunBundle:
    split, parser, facts = split_trace(rec.trace)
    steps = [
        StepBase(index=i, agent=a, kind="message", content=c) for i, (a, c) in enumerate(split)
    ]
    task = facts.get("task") or next((c for a, c in split if a.lower() in ("human", "user")), "")
    run_id = new_id()
    annotations: list[AnnotationBase] = []
    unmapped: list[dict[str, Any]] = []
    for i, label in enumerate(rec.annotations):
        name = label.get("failure mode")
        if not isinstance(name, str) or not name.strip():
            raise ImportFormatError(
                f"{path}: {where}: field annotations[{i}].failure mode: must be a string naming the mode"
            )
        votes = {k: v for k, v in label.items() if k.startswith("annotator")}
        for k, v in votes.items():
            if not isinstance(v, bool):
                raise ImportFormatError(
                    f"{path}: {where}: field annotations[{i}].{k}: must be true or false (got {json.dumps(v)[:20]})"
                )
        mode = MAST.match_name(name)
        if mode is None:
            unmapped.append({"label": name.strip().splitlines()[0], **votes})
            continue
        for annotator, present in votes.items():
            annotations.append(
                AnnotationBase(id=new_id(), taxonomy="mast", mode=mode.id, present=present, annotator=f"human:{annotator}",
                               rationale=f"label {name.strip().splitlines()[0]!r}")
            )  # fmt: skip
    other = facts.get("other_data") or {}
    status = "unknown"
    if isinstance(other.get("correct"), bool):
        status = "succeeded" if other["correct"] else "failed"
    meta: dict[str, Any] = {
        "benchmark": rec.benchmark_name,
        "trace_id": rec.trace_id,
        "round": rec.round,
        "file": path.name,
        "parser": parser,
    }
    if other:
        meta["other_data"] = other
    if unmapped:
        meta["unmapped_labels"] = unmapped
    run = RunBase(
        id=run_id,
        team=rec.mas_name,
        task=task,
        status=status,
        termination_reason="imported",
        source="mad",
        source_key=f"mad:{_fingerprint(raw)}",
        step_count=len(steps),
        metadata_=meta,
    )
    return RunBundle(run=run, steps=steps, annotations=annotations)


# -- mascope JSONL ------------------------------------------------------------------


def _jsonl_values(path: Path) -> list[Any]:
    raw = _read_bytes(path)
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        raise ImportFormatError(f"{path}: not UTF-8 text, so not JSON lines") from None
    values = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            values.append(
                loads_json(line, source=f"{path}: record {n} (line {n})", limits=IMPORT_LIMITS)
            )
        except json.JSONDecodeError as exc:
            raise ImportFormatError(
                f"{path}: record {n} (line {n}): not valid JSON ({exc.msg}, column {exc.colno})"
            ) from None
    return values


def parse_jsonl(path: Path) -> list[RunBundle]:
    """mascope's own format, as written by `mascope runs export --format jsonl`."""
    bundles = []
    seen: set[str] = set()
    lines = _jsonl_values(path)
    if not lines:
        raise ImportFormatError(f"{path}: holds no records")
    for n, data in enumerate(lines, start=1):
        where = f"record {n}"
        if not isinstance(data, dict) or "run" not in data:
            raise ImportFormatError(
                f"{path}: {where}: expected an object with run, steps, annotations, attributions"
            )
        try:
            bundle = RunBundle.from_json_dict(data)
        except ValidationError as exc:
            raise _field_error(path, where, exc) from None
        run = bundle.run
        _check_ids_and_numbers(path, where, bundle)
        if run.status not in RUN_STATUSES:
            raise ImportFormatError(
                f"{path}: {where}: field run.status: must be one of {', '.join(RUN_STATUSES)} (got {run.status!r})"
            )
        problem = check_blobs(bundle.blobs)
        if problem is not None:
            raise ImportFormatError(f"{path}: {where}: field {problem}")
        for i, step in enumerate(bundle.steps):
            problem = check_refs(step.inputs, bundle.blobs)
            if problem is not None:
                raise ImportFormatError(f"{path}: {where}: field steps[{i}].{problem}")
        indexes = [s.index for s in bundle.steps]
        if indexes != list(range(len(indexes))):
            raise ImportFormatError(
                f"{path}: {where}: field steps: step indexes must be 0, 1, 2, ... in order"
            )
        if run.id in seen:
            raise ImportFormatError(
                f"{path}: {where}: field run.id: run {run.id} appears twice in the file"
            )
        seen.add(run.id)
        bundles.append(bundle)
    return bundles


_INT_MAX = 2**63 - 1  # SQLite and PostgreSQL BIGINT: a larger number cannot be stored


def _check_ids_and_numbers(path: Path, where: str, bundle: RunBundle) -> None:
    """Ids are plain tokens (they end up in file names and terminals) and every
    number fits a database integer; the error names the field."""
    ids: list[tuple[str, object]] = [
        ("run.id", bundle.run.id),
        ("run.parent_run_id", bundle.run.parent_run_id),
    ]
    for i, a in enumerate(bundle.annotations):
        ids += [(f"annotations[{i}].id", a.id), (f"annotations[{i}].job_id", a.job_id)]
    for i, b in enumerate(bundle.attributions):
        ids += [
            (f"attributions[{i}].id", b.id),
            (f"attributions[{i}].replay_run_id", b.replay_run_id),
            (f"attributions[{i}].job_id", b.job_id),
        ]
    for name, value in ids:
        if value is not None and not is_valid_id(value):
            raise ImportFormatError(
                f"{path}: {where}: field {name}: not a valid id (got {json.dumps(value)[:40]}); "
                "ids are 1-64 letters, digits, _ or -, starting with a letter or digit"
            )
    parts: list[tuple[str, BaseModel]] = [("run", bundle.run)]
    parts += [(f"steps[{i}]", st) for i, st in enumerate(bundle.steps)]
    parts += [(f"annotations[{i}]", a) for i, a in enumerate(bundle.annotations)]
    parts += [(f"attributions[{i}]", b) for i, b in enumerate(bundle.attributions)]
    for prefix, model in parts:
        for name, value in model:
            if isinstance(value, int) and not isinstance(value, bool):
                low = 0 if name in ("index", "fork_step", "step_index", "step_count") else -_INT_MAX
                if not low <= value <= _INT_MAX:
                    shown = name.removesuffix("_")
                    raise ImportFormatError(
                        f"{path}: {where}: field {prefix}.{shown}: {value} is out of range "
                        f"({low} to {_INT_MAX})"
                    )


PARSERS: dict[str, Callable[[Path], list[RunBundle]]] = {
    "whowhen": parse_whowhen,
    "mad": parse_mad,
    "jsonl": parse_jsonl,
}
