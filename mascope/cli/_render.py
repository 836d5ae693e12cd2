"""Rich renderings of runs for the terminal."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence

from rich.console import Group, RenderableType
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from mascope._style import STATUS_STYLE, agent_style, when
from mascope.taxonomy import MAST
from mascope.traces import Annotation, Attribution, InputMessage, Run, Step

_KIND_STYLE = {
    "verdict": "bold",
    "error": "red",
    "refusal": "red",
    "retry": "yellow",
    "event": "dim",
}


def short(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def runs_table(
    runs: Sequence[Run],
    modes: dict[str, list[str]],
    live_counts: dict[str, int],
    *,
    width: int = 200,
) -> Table:
    """Runs as a table; narrow terminals get the columns that matter most."""
    wide = width >= 130
    table = Table(box=None, header_style="bold", pad_edge=False, expand=False)
    table.add_column("run", no_wrap=True, min_width=26)
    if wide:
        table.add_column("started (UTC)", no_wrap=True, min_width=11)
    table.add_column("status", no_wrap=True, min_width=11)
    table.add_column("steps", justify="right", no_wrap=True)
    if wide:
        table.add_column("tokens", justify="right", no_wrap=True)
        table.add_column("cost", justify="right", no_wrap=True)
    with_modes = width >= 110
    team_width = 24 if wide else 14
    fixed = 26 + 11 + 5 + team_width + (30 if with_modes else 0) + 12
    task_width = 48 if wide else max(10, width - fixed)
    table.add_column("team", max_width=team_width, overflow="ellipsis", no_wrap=True)
    table.add_column("task", max_width=task_width, overflow="ellipsis", no_wrap=True)
    if with_modes:
        table.add_column("failure modes", max_width=30, overflow="fold")
    for run in runs:
        steps = (
            live_counts.get(run.id, run.step_count) if run.status == "running" else run.step_count
        )
        cost = "-" if run.cost_usd is None else f"${run.cost_usd:.4f}"
        cells: list[RenderableType] = [run.id]
        if wide:
            cells.append(run.started_at.strftime("%m-%d %H:%M"))
        cells += [Text(run.status, style=STATUS_STYLE.get(run.status, "")), str(steps)]
        if wide:
            cells += [f"{run.input_tokens + run.output_tokens:,}", cost]
        cells += [escape(run.team), escape(short(run.task, task_width))]
        if with_modes:
            cells.append(", ".join(modes.get(run.id, [])))
        table.add_row(*cells)
    return table


def scoring_text(scoring: dict[str, object]) -> str:
    """How a run's answer was scored: `contains: matched '330' at characters 17-20`."""
    matcher = str(scoring.get("matcher") or "?")
    if not scoring.get("matched"):
        return f"{matcher}: no match"
    found, span = scoring.get("found"), scoring.get("span")
    where = (
        f" at characters {span[0]}-{span[1]}" if isinstance(span, list) and len(span) == 2 else ""
    )
    return f"{matcher}: matched" + (f" {short(str(found), 60)!r}" if found else "") + where


def run_header(run: Run) -> Panel:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("status", Text(run.status, style=STATUS_STYLE.get(run.status, "")))
    grid.add_row("team", escape(run.team or "-"))
    grid.add_row("task", escape(short(run.task, 400)))
    if run.ground_truth is not None:
        grid.add_row("ground truth", escape(short(run.ground_truth, 200)))
    if run.final_answer is not None:
        grid.add_row("final answer", escape(short(run.final_answer, 200)))
    scoring = (run.metadata_ or {}).get("scoring")
    if isinstance(scoring, dict):
        grid.add_row("scored by", escape(scoring_text(scoring)))
    ended = run.termination_reason or ("-" if run.status == "running" else "")
    grid.add_row("ended by", escape(ended))
    grid.add_row(
        "started",
        f"{when(run.started_at)} UTC"
        + (f", finished {when(run.finished_at)}" if run.finished_at else ""),
    )
    cost = "" if run.cost_usd is None else f", ${run.cost_usd:.4f}"
    grid.add_row(
        "usage",
        f"{run.step_count} steps, {run.input_tokens:,} in / {run.output_tokens:,} out tokens{cost}",
    )
    if run.parent_run_id:
        grid.add_row("forked from", f"{run.parent_run_id} at step {run.fork_step}")
    grid.add_row("source", run.source)
    return Panel(
        grid,
        title=f"run {run.id}",
        title_align="left",
        border_style=STATUS_STYLE.get(run.status, "white"),
        expand=False,
    )


def step_lines(
    steps: Iterable[Step],
    annotations: Sequence[Annotation],
    attributions: Sequence[Attribution],
    *,
    full: bool = False,
    max_lines: int = 4,
) -> Iterable[RenderableType]:
    """Each step, numbered and coloured by agent, with the labels that point at it."""
    by_step: dict[int, list[Annotation]] = defaultdict(list)
    for a in annotations:
        if not a.present:
            continue
        for i in sorted(
            set(a.evidence_steps) | ({a.step_index} if a.step_index is not None else set())
        ):
            by_step[i].append(a)
    blamed: dict[int, list[Attribution]] = defaultdict(list)
    for att in attributions:
        if att.step_index is not None:
            blamed[att.step_index].append(att)
    for step in steps:
        head = Text()
        head.append(f"{step.index:>4} ", style="dim")
        head.append(step.agent or "?", style=f"bold {agent_style(step.agent)}")
        head.append(f" ({step.kind})", style=_KIND_STYLE.get(step.kind, "dim"))
        meta = []
        if step.model:
            meta.append(step.model)
        if step.input_tokens or step.output_tokens:
            meta.append(f"{step.input_tokens or 0}+{step.output_tokens or 0} tok")
        if step.latency_s:
            meta.append(f"{step.latency_s:.2f}s")
        if meta:
            head.append("  " + ", ".join(meta), style="dim")
        yield head
        body = step.content.rstrip()
        lines = body.splitlines() or [""]
        if not full and len(lines) > max_lines:
            lines = [
                *lines[:max_lines],
                f"… {len(body.splitlines()) - max_lines} more lines (--full)",
            ]
        for line in lines:
            if not full and len(line) > 200:
                line = line[:199] + "…"
            yield Text("       " + line, style="red" if step.error else "")
        if step.error:
            yield Text(f"       error: {step.error}", style="bold red")
        for a in by_step.get(step.index, []):
            yield Text(
                f"       ◀ {a.mode} {_mode_name(a.mode)} [{a.annotator}]", style="bold yellow"
            )
        for att in blamed.get(step.index, []):
            verified = " verified by replay" if att.verified else ""
            yield Text(
                f"       ★ blamed: {att.agent or '?'} ({att.method}{verified}): {short(att.reason, 160)}",
                style="bold red",
            )


def labels_summary(
    annotations: Sequence[Annotation], attributions: Sequence[Attribution]
) -> RenderableType:
    """Failure modes grouped by MAST category, then the attributions."""
    parts: list[RenderableType] = []
    present = [a for a in annotations if a.label_status == "present"]
    uncertain = [a for a in annotations if a.label_status == "uncertain"]
    if present:
        table = Table(box=None, header_style="bold", pad_edge=False)
        for name in ("category", "mode", "annotator", "evidence", "rationale"):
            table.add_column(name, overflow="fold")
        categories = {c.id: c.name for c in MAST.categories}

        def key(a: Annotation) -> tuple[str, str, str]:
            return (_category(a.mode), a.mode, a.annotator)

        for a in sorted(present, key=key):
            cat = categories.get(_category(a.mode), a.taxonomy)
            evidence = ", ".join(str(i) for i in a.evidence_steps) or (
                "-" if a.step_index is None else str(a.step_index)
            )
            table.add_row(
                cat,
                f"{a.mode} {_mode_name(a.mode)}",
                a.annotator,
                evidence,
                escape(short(a.rationale, 80)),
            )
        parts.append(
            Panel(
                table,
                title="failure modes",
                title_align="left",
                border_style="yellow",
                expand=False,
            )
        )
    if uncertain:
        table = Table(box=None, header_style="bold", pad_edge=False)
        for name in ("mode", "annotator", "cited", "why uncertain"):
            table.add_column(name, overflow="fold")
        for a in sorted(uncertain, key=lambda a: (a.mode, a.annotator)):
            table.add_row(
                f"{a.mode} {_mode_name(a.mode)}",
                a.annotator,
                ", ".join(str(i) for i in a.evidence_steps) or "-",
                escape(short(a.status_reason or "", 100)),
            )
        parts.append(
            Panel(
                table,
                title="uncertain (said present, evidence does not check out; not counted)",
                title_align="left",
                border_style="dim",
                expand=False,
            )
        )
    absent = len(annotations) - len(present) - len(uncertain)
    if absent:
        parts.append(Text(f"{absent} label(s) say a mode is absent (see --json)", style="dim"))
    if attributions:
        table = Table(box=None, header_style="bold", pad_edge=False)
        for name in ("method", "agent", "step", "verified", "reason"):
            table.add_column(name, overflow="fold")
        for att in attributions:
            verified = "-" if att.verified is None else ("yes" if att.verified else "no")
            table.add_row(
                att.method,
                escape(att.agent or "-"),
                "-" if att.step_index is None else str(att.step_index),
                verified,
                escape(short(att.reason, 120)),
            )
        parts.append(
            Panel(
                table,
                title="attributions (who and when)",
                title_align="left",
                border_style="red",
                expand=False,
            )
        )
    return Group(*parts)


def _category(mode_id: str) -> str:
    try:
        return MAST.mode(mode_id).category
    except KeyError:
        return "other"


def _mode_name(mode_id: str) -> str:
    try:
        return MAST.mode(mode_id).name.lower()
    except KeyError:
        return ""


_ROLE_STYLE = {"system": "bold magenta", "user": "bold cyan", "assistant": "bold green", "tool": "bold yellow"}  # fmt: skip


def input_lines(messages: Sequence[InputMessage]) -> Iterable[RenderableType]:
    """The messages a step's model was sent, each under a line naming its role."""
    count = f"{len(messages)} message{'s' if len(messages) != 1 else ''}"
    yield Text(f"── input: {count} sent to the model ──", style="bold")
    for m in messages:
        head = Text()
        head.append(f"[{m.role}]", style=_ROLE_STYLE.get(m.role, "bold"))
        if m.name:
            head.append(f" {m.name}", style="dim")
        if m.tool_call_id:
            head.append(f" (answers call {m.tool_call_id})", style="dim")
        if m.content is not None:
            head.append(f"  {len(m.content):,} chars", style="dim")
        yield head
        # Text, not markup: a trace's content is untrusted and may hold [brackets].
        for line in (m.content or "").rstrip().splitlines():
            yield Text("    " + line)
        for call in m.tool_calls:
            yield Text(
                f"    → {call.get('name', '?')}({short(json.dumps(call.get('arguments', {}), ensure_ascii=False), 200)})",
                style="dim",
            )
