"""How runs, steps and labels look in the TUI (plain functions over store rows)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from rich.console import Group, RenderableType
from rich.text import Text

from mascope._style import STATUS_STYLE, agent_style, when
from mascope.traces import PAUSE_EVENT, pause_question

# Only for types: the TUI paints its first screen before SQLModel and pydantic
# are imported (see `_source.py`); MAST is imported where a label is drawn.
if TYPE_CHECKING:
    from mascope.traces import Annotation, Attribution, InputMessage, Run

SHOWN_CHARS = 20_000
"""How much of a step's content the detail pane shows (a huge step would stall drawing)."""
_KIND_STYLE = {"error": "bold red", "refusal": "red", "retry": "yellow", "event": "dim"}


def first_line(text: str, width: int = 200) -> str:
    """The first non-blank line of `text`, cut to `width` characters."""
    for line in text[: max(width * 4, 1000)].splitlines():
        if line.strip():
            flat = " ".join(line.split())
            return flat if len(flat) <= width else flat[: width - 1] + "…"
    return ""


class RunLike(Protocol):
    """What the TUI shows of a run: a `Run`, or a `RunRow` read before the store was open."""

    @property
    def id(self) -> str: ...
    @property
    def parent_run_id(self) -> str | None: ...
    @property
    def team(self) -> str: ...
    @property
    def task(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def started_at(self) -> datetime: ...
    @property
    def input_tokens(self) -> int: ...
    @property
    def output_tokens(self) -> int: ...
    @property
    def cost_usd(self) -> float | None: ...
    @property
    def step_count(self) -> int: ...
    @property
    def fork_step(self) -> int | None: ...
    @property
    def final_answer(self) -> str | None: ...


class StepLike(Protocol):
    """What the TUI shows of a step: a `Step`, or a `StepRow` read before the store was open."""

    @property
    def index(self) -> int: ...
    @property
    def agent(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def content(self) -> str: ...
    @property
    def data(self) -> dict[str, Any] | None: ...
    @property
    def model(self) -> str | None: ...
    @property
    def input_tokens(self) -> int | None: ...
    @property
    def output_tokens(self) -> int | None: ...
    @property
    def latency_s(self) -> float | None: ...
    @property
    def cost_usd(self) -> float | None: ...
    @property
    def checkpoint_id(self) -> str | None: ...
    @property
    def error(self) -> str | None: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def inputs(self) -> list[dict[str, Any]] | None: ...


def tokens(run: RunLike) -> int:
    return run.input_tokens + run.output_tokens


def cost(value: float | None) -> str:
    return "-" if value is None else f"${value:.4f}"


def status_text(status: str) -> Text:
    return Text(status, style=STATUS_STYLE.get(status, ""))


def verdict_passed(step: StepLike) -> bool | None:
    """For a verifier's verdict, whether it passed; None for other steps."""
    if step.kind != "verdict" or not isinstance(step.data, dict):
        return None
    passed = step.data.get("passed")
    return passed if isinstance(passed, bool) else None


def is_pause(step: StepLike) -> bool:
    """The question of a pause for a person (see docs/runtime.md, Pausing for a person)."""
    return (
        step.kind == "event"
        and isinstance(step.data, dict)
        and step.data.get("event") == PAUSE_EVENT
    )


def step_row(step: StepLike, marks: str, width: int) -> Text:
    """One timeline line: index, marks, agent, kind, first line of content."""
    line = Text(no_wrap=True, overflow="ellipsis")
    line.append(f"{step.index:>5} ", style="dim")
    line.append(f"{marks:<2} ", style="bold red" if "★" in marks else "bold yellow")
    line.append(f"{(step.agent or '?')[:12]:<12} ", style=f"bold {agent_style(step.agent)}")
    passed = verdict_passed(step)
    if passed is not None:
        line.append(
            "✓ verdict   " if passed else "✗ verdict   ",
            style="bold green" if passed else "bold white on red",
        )
    elif is_pause(step):
        line.append(f"{'⏸ asks':<11} ", style="bold cyan")
    else:
        line.append(f"{step.kind[:11]:<11} ", style=_KIND_STYLE.get(step.kind, "dim"))
    if step.error:
        line.append(f"error: {first_line(step.error, width)} ", style="bold red")
    line.append(first_line(step.content, width))
    return line


def step_detail(step: StepLike, *, inputs: RenderableType | None = None) -> RenderableType:
    """Everything about one step; `inputs` (what its model was sent) goes after its content."""
    head = Text()
    head.append(f"step {step.index}  ", style="bold")
    head.append(step.agent or "?", style=f"bold {agent_style(step.agent)}")
    head.append(f"  {step.kind}", style=_KIND_STYLE.get(step.kind, ""))
    passed = verdict_passed(step)
    if passed is not None:
        head.append(
            "  PASSED" if passed else "  FAILED", style="bold green" if passed else "bold red"
        )
    facts = []
    if step.model:
        facts.append(f"model {step.model}")
    if step.input_tokens is not None or step.output_tokens is not None:
        facts.append(f"tokens {step.input_tokens or 0} in / {step.output_tokens or 0} out")
    if step.latency_s is not None:
        facts.append(f"latency {step.latency_s:.2f} s")
    if step.cost_usd is not None:
        facts.append(f"cost {cost(step.cost_usd)}")
    facts.append(f"at {when(step.created_at)} UTC")
    parts: list[RenderableType] = [head, Text(" · ".join(facts), style="dim")]
    if step.error:
        parts.append(Text(f"error: {step.error}", style="bold red"))
    content = step.content
    if len(content) > SHOWN_CHARS:
        content = (
            f"{content[:SHOWN_CHARS]}\n… {len(step.content) - SHOWN_CHARS:,} more characters "
            "(y copies all of it, e exports the run)"
        )
    parts += [Text(""), Text(content or "(no content)", style="" if content else "dim")]
    if inputs is not None:
        parts += [Text(""), inputs]
    if step.data:
        parts += [Text(""), Text(_data_title(step), style="bold"), Text(_json(step.data))]
    if step.checkpoint_id:
        parts += [Text(""), Text(f"checkpoint {step.checkpoint_id}", style="dim")]
    return Group(*parts)


def _data_title(step: StepLike) -> str:
    return {
        "tool_call": "tool arguments",
        "tool_result": "tool result",
        "verdict": "verdict",
        "model_call": "model call",
    }.get(step.kind, "data")


def _json(value: Any) -> str:
    text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    if len(text) > SHOWN_CHARS:
        return f"{text[:SHOWN_CHARS]}\n… {len(text) - SHOWN_CHARS:,} more characters (e exports the run)"
    return text


def run_summary(run: RunLike, steps: int) -> Text:
    """The run screen's header line."""
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(f"run {run.id}  ", style="bold")
    text.append_text(status_text(run.status))
    text.append(f"  {run.team or '-'}", style="bold")
    text.append(f"  {steps:,} steps · {tokens(run):,} tokens · {cost(run.cost_usd)}", style="dim")
    if run.parent_run_id:
        text.append(f"  ⑂ from {run.parent_run_id} at step {run.fork_step}", style="magenta")
    text.append("\n")
    text.append("task ", style="dim")
    text.append(first_line(run.task, 300) or "-")
    if run.final_answer is not None:
        text.append("\nanswer ", style="dim")
        text.append(first_line(run.final_answer, 300))
    if run.status == "paused":
        # A row read before the store opened has no metadata: the question shows
        # once the full run is read (the next poll).
        question = pause_question(getattr(run, "metadata_", None))
        text.append("\nwaiting ", style="dim")
        text.append(first_line(question or "for a person's input", 200), style="bold cyan")
        text.append(f"  (mascope runs resume {run.id} --input TEXT)", style="dim")
    return text


def category_of(mode: str) -> str:
    """The MAST category name of a mode id, or `other`."""
    from mascope.taxonomy import MAST

    try:
        cat = MAST.mode(mode).category
    except KeyError:
        return "Other"
    return next((c.name for c in MAST.categories if c.id == cat), cat)


def mode_label(a: Annotation) -> str:
    from mascope.taxonomy import MAST

    try:
        name = MAST.mode(a.mode).name.lower()
    except KeyError:
        name = ""
    conf = "" if a.confidence is None else f" {a.confidence:.2f}"
    return f"{a.mode} {name} [{a.annotator}{conf}]".replace("  ", " ")


def evidence_steps(a: Annotation) -> list[int]:
    steps = set(a.evidence_steps)
    if a.step_index is not None:
        steps.add(a.step_index)
    return sorted(steps)


def attribution_label(att: Attribution) -> str:
    where = "?" if att.step_index is None else str(att.step_index)
    verified = {True: ", verified by replay", False: ", replay did not flip", None: ""}
    return f"★ step {where} {att.agent or '?'} ({att.method}{verified[att.verified]})"


def branch_label(child: Run, *, replay: bool) -> str:
    kind = "counterfactual replay" if replay else "fork"
    return f"⑂ step {child.fork_step} {kind} {child.id} {child.status}"


_ROLE_STYLE = {"system": "magenta", "user": "cyan", "assistant": "green", "tool": "yellow"}


def input_detail(messages: Sequence[InputMessage], *, expanded: bool) -> RenderableType:
    """The messages a step's model was sent: a line per message, or all of each when expanded."""
    count = f"{len(messages)} message{'s' if len(messages) != 1 else ''}"
    toggle = "i: one line each" if expanded else "i shows them in full"
    parts: list[RenderableType] = [
        Text.assemble((f"input: {count} sent to the model", "bold"), (f"  ({toggle})", "dim"))
    ]
    budget = SHOWN_CHARS
    for m in messages:
        content = m.content or ""
        head = Text("▾ " if expanded else "▸ ", no_wrap=not expanded, overflow="ellipsis")
        head.append(m.role, style=f"bold {_ROLE_STYLE.get(m.role, '')}")
        if m.name:
            head.append(f" {m.name}", style="dim")
        head.append(f" · {len(content):,} chars", style="dim")
        calls = [f"{c.get('name', '?')}({json.dumps(c.get('arguments', {}), ensure_ascii=False)})" for c in m.tool_calls]  # fmt: skip
        if not expanded:
            if calls:
                head.append(" · calls " + ", ".join(calls), style="dim")
            head.append("  " + first_line(content, 100), style="dim")
            parts.append(head)
            continue
        parts.append(head)
        # One budget for all messages: a long run's prompts would stall drawing.
        shown = content[: max(budget, 0)]
        budget -= len(shown)
        if len(shown) < len(content):
            shown += f"\n… {len(content) - len(shown):,} more characters (e exports the run)"
        if shown or not calls:
            parts.append(Text(shown or "(empty)", style="" if shown else "dim"))
        parts.extend(Text(f"→ {call[:SHOWN_CHARS]}", style="dim") for call in calls)
    return Group(*parts)
