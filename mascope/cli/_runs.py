"""`mascope runs ...`: list, show, import and export stored runs."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from mascope._vocabulary import is_event
from mascope.errors import ConfigError, did_you_mean
from mascope.settings import Settings
from mascope.traces import EXPORT_FORMATS, IMPORT_FORMATS, RUN_SORTS, RUN_STATUSES

from ._common import MAX_COUNT, DbOpt, JsonOpt, SafeConsole, err, removed_if_failed, user_errors

if TYPE_CHECKING:
    from mascope.traces import Step, TraceStore

# The store (SQLAlchemy) and renderers are imported inside each command, so
# `mascope --help` and unrelated commands start fast.

runs_app = typer.Typer(
    help="List, show, import and export stored runs.", no_args_is_help=True, add_completion=False
)
# Piped output keeps whole lines (rich would otherwise wrap at 80 columns).
out = SafeConsole(highlight=False, width=None if Console().is_terminal else 200)


def open_store(db: str | None, *, create: bool = False, write: bool = False) -> TraceStore:
    """The store named by --db or MASCOPE_DB; `write` refuses a read-only one up front."""
    from mascope.traces import TraceStore

    settings = Settings.load(db=db or None)
    return TraceStore(
        settings.db, create=create, settings=settings, read_only=False if write else None
    )


@runs_app.command("list")
@user_errors
def list_runs(
    status: Annotated[
        str | None, typer.Option(help=f"Only runs with this status: {', '.join(RUN_STATUSES)}.")
    ] = None,
    team: Annotated[str | None, typer.Option(help="Only runs of this team.")] = None,
    mode: Annotated[
        str | None, typer.Option(help="Only runs labelled with this failure mode, e.g. FM-1.3.")
    ] = None,
    search: Annotated[
        str | None, typer.Option(help="Only runs whose task contains this text.")
    ] = None,
    limit: Annotated[int, typer.Option(help="How many runs to show.", min=1, max=MAX_COUNT)] = 20,
    sort: Annotated[
        str, typer.Option(help=f"Order: {', '.join(RUN_SORTS)} (largest or latest first).")
    ] = "time",
    asc: Annotated[bool, typer.Option("--asc", help="Smallest or oldest first.")] = False,
    cursor: Annotated[
        str | None,
        typer.Option(
            help="The next page: the cursor the previous page printed (same order and filters)."
        ),
    ] = None,
    before: Annotated[
        str | None, typer.Option(help="Show runs older than this run id (newest-first order only).")
    ] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List runs, newest first (or in the order of --sort), a page at a time."""
    if status and status not in RUN_STATUSES:
        raise ConfigError(f"unknown status {status!r}; use one of {', '.join(RUN_STATUSES)}")
    if sort not in RUN_SORTS:
        raise ConfigError(
            f"unknown order {sort!r}{did_you_mean(sort, RUN_SORTS)}; use one of {', '.join(RUN_SORTS)}"
        )
    if before is not None and (cursor is not None or sort != "time" or asc):
        raise ConfigError(
            "--before pages the newest-first list only; use the --cursor a page printed instead"
        )
    from ._render import runs_table

    next_cursor: str | None = None
    with open_store(db) as store:
        store.recover_interrupted()
        if before is not None:  # a typo would silently list nothing (or everything)
            before = store.resolve_run_id(before)
            runs = store.list_runs(
                status=status, team=team, mode=mode, search=search, before=before, limit=limit
            )
        else:
            page = store.page_runs(
                status=status, team=team, mode=mode, search=search, sort=sort,  # type: ignore[arg-type]
                ascending=asc, limit=limit, cursor=cursor,
            )  # fmt: skip
            runs, next_cursor = page.runs, page.next
        runs = [_redacted(store, r) for r in runs]
        ids = [r.id for r in runs]
        modes = store.modes_by_run(ids)
        live = store.live_step_counts([r.id for r in runs if r.status == "running"])
        total = store.count_runs(status=status, team=team, mode=mode, search=search)
    if as_json:
        rows = []
        for r in runs:
            row = r.model_dump(mode="json", exclude={"spec", "owner", "heartbeat_at"})
            row["metadata"] = row.pop("metadata_")
            row["failure_modes"] = modes.get(r.id, [])
            if r.status == "running":
                row["step_count"] = live.get(r.id, 0)
            rows.append(row)
        print(json.dumps({"total": total, "runs": rows, "next": next_cursor}, ensure_ascii=False))
        return
    if not runs:
        where = (
            "" if not (status or team or mode or search or before) else " matching those filters"
        )
        err.print(f"no runs{where} in {store.where}")
        return
    out.print(runs_table(runs, modes, live, width=out.width))
    shown = f"{len(runs)} of {total} run{'s' if total != 1 else ''}"
    if next_cursor is None and before is None:
        more = ""
    elif sort == "time" and not asc:  # newest first: the last id shown is the shorter hint
        more = f"; older: --before {runs[-1].id}" if len(runs) == limit and total > limit else ""
    else:
        more = f"; next page: --cursor {next_cursor}"
    err.print(f"[dim]{shown}{more}[/]", soft_wrap=True)


@runs_app.command("show")
@user_errors
def show_run(
    run_id: Annotated[str, typer.Argument(help="Run id (or a unique prefix of one).")],
    full: Annotated[bool, typer.Option("--full", help="Show every line of every step.")] = False,
    offset: Annotated[int, typer.Option(help="First step to show.", min=0, max=MAX_COUNT)] = 0,
    limit: Annotated[
        int | None, typer.Option(help="How many steps to show (default all).", min=1, max=MAX_COUNT)
    ] = None,
    step: Annotated[
        int | None,
        typer.Option(
            "--step",
            help="Show this step in full, with the messages its model was sent (system prompt included).",
            min=0,
        ),
    ] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show one run: its steps, failure modes and attributions."""
    from mascope.traces import bundle

    from ._render import labels_summary, run_header, step_lines

    with open_store(db) as store:
        store.recover_interrupted()
        rid = store.resolve_run_id(run_id)
        if step is not None:
            _show_step(store, rid, step, as_json=as_json)
            return
        if as_json:
            data = bundle(store, rid).to_json_dict()
            print(json.dumps(data, ensure_ascii=False))
            return
        run = _redacted(store, store.get_run(rid))
        annotations = [_redacted(store, a) for a in store.annotations(rid)]
        attributions = [_redacted(store, a) for a in store.attributions(rid)]
        out.print(run_header(run))
        if limit is None and offset == 0:
            steps: Any = store.iter_steps(rid)
        else:
            steps = store.steps(rid, offset=offset, limit=limit)
        steps = (_redacted(store, s) for s in steps)
        with_inputs: list[int] = []
        deferrals: list[dict[str, Any]] = []

        def noting(steps: Iterable[Step]) -> Iterator[Step]:
            for s in steps:
                if s.inputs and not with_inputs:
                    with_inputs.append(s.index)
                if s.data and is_event(s.kind, s.data, "deferral"):
                    deferrals.append(s.data)
                yield s

        for line in step_lines(noting(steps), annotations, attributions, full=full):
            out.print(line, soft_wrap=True)
        out.print(labels_summary(annotations, attributions))
        if deferrals:
            out.print(Text(_deferral_summary(deferrals)))
        if with_inputs:
            err.print(
                Text(f"what an agent was sent: mascope runs show {rid} --step {with_inputs[0]}"),
                style="dim",
            )


def _deferral_summary(events: list[dict[str, Any]]) -> str:
    """How many draft_defer stage runs deferred to the strong agent, and what that added."""
    deferred = [e for e in events if e.get("deferred") is True]

    def number(value: Any) -> float:
        # Trace data is untrusted (runs can be imported): count only what is a number.
        return value if isinstance(value, int | float) and not isinstance(value, bool) else 0

    tokens = int(sum(number(e.get("strong_tokens")) for e in deferred))
    cost = sum(number(e.get("strong_cost_usd")) for e in deferred)
    stages = "stage run" if len(events) == 1 else "stage runs"
    return (
        f"deferrals: {len(deferred)} of {len(events)} draft_defer {stages} deferred to the strong agent"
        + (f", extra {tokens} tokens, ${cost:.6f}" if deferred else "")
    )


def _show_step(store: TraceStore, rid: str, index: int, *, as_json: bool) -> None:
    """One step in full and the messages its model was sent."""
    from ._render import input_lines, step_lines

    found = store.steps(rid, offset=index, limit=1)
    if not found or found[0].index != index:
        total = store.count_steps(rid)
        raise ConfigError(
            f"run {rid} has no step {index}; its steps are 0..{total - 1}"
            if total
            else f"run {rid} has no steps yet"
        )
    the_step = _redacted(store, found[0])
    messages = store.step_inputs(rid, index)
    if as_json:
        row = the_step.model_dump(mode="json", exclude={"id", "run_id", "inputs"})
        row["inputs"] = [m.model_dump(mode="json") for m in messages]
        print(json.dumps(row, ensure_ascii=False))
        return
    annotations, attributions = store.annotations(rid), store.attributions(rid)
    for line in step_lines([the_step], annotations, attributions, full=True):
        out.print(line, soft_wrap=True)
    if not messages:
        err.print(
            f"[dim]no model input recorded for step {index}: only steps where an agent called "
            "a model have one (not function agents, tools or rule verifiers)[/]"
        )
        return
    for line in input_lines(messages):
        out.print(line, soft_wrap=True)


def _redacted(store: TraceStore, row: Any) -> Any:
    """A stored row with its text redacted again by the current redactor, as exports are."""
    fields = row.model_dump()
    return row.model_copy(
        update={
            k: store.redact.strings(v)
            for k, v in fields.items()
            if isinstance(v, str | dict | list) and k != "inputs"  # content hashes stay exact
        }
    )


IMPORT_CHOICES = (*IMPORT_FORMATS, "otlp")
"""`otlp` (OpenTelemetry JSON) is read by `mascope.integrations`, which writes through the store."""


@runs_app.command("import")
@user_errors
def import_runs(
    fmt: Annotated[
        str, typer.Argument(metavar="FORMAT", help=f"One of: {', '.join(IMPORT_CHOICES)}.")
    ],
    paths: Annotated[
        list[Path], typer.Argument(help="Files, or folders to search for .json/.jsonl files.")
    ],
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Import traces: Who&When files, MAD/MAST-Data records, mascope JSONL or OTLP JSON."""
    from mascope.traces import import_paths

    if fmt not in IMPORT_CHOICES:
        raise ConfigError(
            f"unknown import format {fmt!r}{did_you_mean(fmt, IMPORT_CHOICES)}; use one of {', '.join(IMPORT_CHOICES)}"
        )
    with removed_if_failed(db), open_store(db, create=True, write=True) as store:
        if fmt == "otlp":
            from mascope.integrations import import_otlp

            report = import_otlp(store, paths)
        else:
            report = import_paths(store, fmt, paths)
    if as_json:
        print(
            json.dumps(
                {
                    "files": report.files,
                    "runs": report.runs,
                    "skipped": report.skipped,
                    "steps": report.steps,
                }
            )
        )
        return
    skipped = f"; {report.skipped} already in the store" if report.skipped else ""
    out.print(
        f"imported {report.runs} run{'s' if report.runs != 1 else ''} ({report.steps:,} steps) "
        f"from {report.files} file{'s' if report.files != 1 else ''} into {store.where}{skipped}"
    )


@runs_app.command("export")
@user_errors
def export(
    run_ids: Annotated[
        list[str] | None, typer.Argument(help="Run ids (or unique prefixes).")
    ] = None,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            help=f"One of: {', '.join(EXPORT_FORMATS)} (default jsonl; otel with --endpoint).",
        ),
    ] = None,
    out_file: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="File to write (replaced atomically; default runs.jsonl, or runs.otel.jsonl for otel).",
        ),
    ] = None,
    endpoint: Annotated[
        str | None,
        typer.Option(
            "--endpoint",
            help="Send the OpenTelemetry spans to this OTLP/HTTP endpoint (e.g. http://127.0.0.1:4318) "
            "instead of writing a file; headers from OTEL_EXPORTER_OTLP_HEADERS.",
        ),
    ] = None,
    timeout: Annotated[
        float,
        typer.Option("--timeout", min=0.1, help="Seconds to keep trying the endpoint."),
    ] = 10.0,
    all_runs: Annotated[bool, typer.Option("--all", help="Export every run in the store.")] = False,
    db: DbOpt = None,
) -> None:
    """Export runs as mascope JSONL (lossless) or OpenTelemetry GenAI spans (OTLP JSON, or
    sent to an OTLP endpoint)."""
    from mascope.traces import export_runs

    fmt = fmt or ("otel" if endpoint else "jsonl")
    if fmt not in EXPORT_FORMATS:
        raise ConfigError(
            f"unknown export format {fmt!r}{did_you_mean(fmt, EXPORT_FORMATS)}; use one of {', '.join(EXPORT_FORMATS)}"
        )
    if endpoint is not None and fmt != "otel":
        raise ConfigError(
            "--endpoint sends OpenTelemetry spans; use --format otel (or leave it out)"
        )
    if endpoint is not None and out_file is not None:
        raise ConfigError(
            "--endpoint sends the spans instead of writing a file; pass --out or --endpoint, not both"
        )
    if not run_ids and not all_runs:
        raise ConfigError("name the runs to export, or pass --all")
    target = out_file or Path("runs.otel.jsonl" if fmt == "otel" else "runs.jsonl")
    with open_store(db) as store:
        ids = list(run_ids or [])
        if all_runs:
            ids = store.all_run_ids()
        if endpoint is not None:
            from mascope.integrations import send_otel

            sent = send_otel(store, ids, endpoint, timeout_s=timeout)
            err.print(
                f"sent {sent.runs} run{'s' if sent.runs != 1 else ''} ({sent.spans:,} spans) to {sent.endpoint}"
            )
            return
        if fmt == "otel":
            from mascope.integrations import export_otel

            count = export_otel(store, ids, target)
        else:
            count = export_runs(store, ids, fmt, target)
    err.print(f"wrote {count} run{'s' if count != 1 else ''} to {target} ({fmt})")
