"""The run screen: step timeline, the selected step in full, labels, branches.

The run, its labels, its steps and a step's input are read in worker threads
(see `_source.py`); the screen shows what it has and fills in the rest.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, cast

from rich.console import Group, RenderableType
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static, Tree
from textual.widgets.tree import TreeNode

from mascope.traces import file_safe

from ._format import (
    RunLike,
    StepLike,
    attribution_label,
    branch_label,
    category_of,
    evidence_steps,
    first_line,
    input_detail,
    mode_label,
    run_summary,
    step_detail,
)
from ._navigation import Navigator
from ._source import Read, ReadFailed, StoreSource, read_in_worker
from ._timeline import PAGE, StepTimeline

if TYPE_CHECKING:
    from mascope.traces import Annotation, Attribution, InputMessage, Run, Step, TraceStore


@dataclass(frozen=True)
class Target:
    """Where a labels-tree node leads: a step of this run, or another run."""

    step: int | None = None
    run: str | None = None


@dataclass
class Labels:
    annotations: list[Annotation] = field(default_factory=list)
    attributions: list[Attribution] = field(default_factory=list)
    branches: list[Run] = field(default_factory=list)

    def signature(self) -> tuple[tuple[str, ...], tuple[str, ...], tuple[tuple[str, str], ...]]:
        return (
            tuple(a.id for a in self.annotations),
            tuple(a.id for a in self.attributions),
            tuple((b.id, b.status) for b in self.branches),
        )


class LabelTree(Tree[Target | None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("k", "cursor_up", "Up", show=False),
        Binding("j", "cursor_down", "Down", show=False),
        Binding("h", "cursor_parent", "Parent", show=False),
        Binding("l", "select_cursor", "Open", show=False),
    ]


class RunScreen(Screen[None]):
    """One run: what each agent did, what the judge found, what the attribution blamed."""

    AUTO_FOCUS = "#timeline"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,backspace,h", "back", "Back"),
        Binding("b", "branch", "Open branch"),
        Binding("n", "next_mark(1)", "Next marked"),
        Binding("N", "next_mark(-1)", "Prev marked", show=False),
        Binding("y,c", "copy", "Copy step"),
        Binding("e", "export", "Export"),
        Binding("r", "reload", "Reload", show=False),
        Binding("i", "toggle_inputs", "Input", show=False),
    ]

    def __init__(self, store: StoreSource, run_id: str, *, poll_interval: float = 1.0) -> None:
        super().__init__()
        self.source = store
        self.run_id = run_id
        self.poll_interval = poll_interval
        self.run: RunLike | None = None
        """None until the run is read."""
        self.labels = Labels()
        self._total = 0
        self._poll_failed = False
        self._polling = False
        self.inputs_expanded = False
        self._inputs: dict[int, list[InputMessage] | ReadFailed] = {}
        """Steps' input messages, as read (they never change)."""

    # -- layout ------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(Text(f"run {self.run_id}  reading…", style="dim"), id="run-header")
        with Horizontal(id="run-body"):
            yield StepTimeline(self.source, self.run_id, total=0, id="timeline")
            with Vertical(id="run-side"):
                with VerticalScroll(id="detail-scroll"):
                    yield Static(id="detail")
                yield LabelTree("labels", id="labels")
        yield Footer()

    def on_mount(self) -> None:
        self._show_labels()
        timeline = self.query_one(StepTimeline)
        timeline.border_title = "steps"
        self.query_one("#detail-scroll").border_title = "step"
        self.query_one(LabelTree).border_title = "failure modes · blame · branches"
        self._show_step(timeline.cursor)
        first = self.source.first_run
        if first is not None and first.run.id == self.run_id:
            # Read with sqlite3 before the store was open: show it, then read the rest.
            self.source.first_run = None
            self.query_one(LabelTree).root.add_leaf(Text("reading labels…", style="dim"))
            self._show_run((first.run, first.total, None, list(first.steps)))
            self.call_after_refresh(self._read_run)
        else:
            self._read_run()
        if self.poll_interval > 0:
            self.set_interval(self.poll_interval, self.poll)

    def _read_run(self) -> None:
        run_id = self.run_id

        def read(store: TraceStore) -> tuple[Run, int, Labels, list[Step]]:
            import mascope.taxonomy  # noqa: F401  (labels are drawn with MAST's names)

            run = store.get_run(run_id)
            total = store.count_steps(run_id)
            first = store.steps(run_id, limit=PAGE)
            return run, total, self._read_labels(store), first

        read_in_worker(self, self.source, read, self._show_run)

    def _show_run(self, result: object) -> None:
        if isinstance(result, ReadFailed):
            self.query_one("#run-header", Static).update(
                Text(f"run {self.run_id}: cannot read it: {result}", style="red")
            )
            return
        run, total, labels, first = cast(tuple[RunLike, int, Labels | None, list[StepLike]], result)
        self.run, self._total = run, total
        self.query_one("#run-header", Static).update(run_summary(run, total))
        self.timeline.start(total, first)
        if labels is not None:  # None: not read yet
            self.labels = labels
            self._show_labels()
        self._show_step(self.timeline.cursor)

    @on(Read)
    def _on_read(self, message: Read) -> None:
        message.stop()
        message.apply(message.result)

    @property
    def timeline(self) -> StepTimeline:
        return self.query_one(StepTimeline)

    # -- data --------------------------------------------------------------------

    def _read_labels(self, store: TraceStore) -> Labels:
        return Labels(
            annotations=store.annotations(self.run_id),
            attributions=store.attributions(self.run_id),
            branches=store.child_runs(self.run_id),
        )

    def poll(self) -> None:
        """Pick up new steps, a changed status and new labels (the run may be live)."""
        if not self.is_current or self.run is None or self._polling:
            return
        run_id = self.run_id

        def read(store: TraceStore) -> tuple[Run, int, Labels]:
            run = store.get_run(run_id)
            # A finished run's row holds its step count; only a live one needs counting.
            total = store.count_steps(run_id) if run.status == "running" else run.step_count
            return run, total, self._read_labels(store)

        self._polling = True
        read_in_worker(self, self.source, read, self._show_polled)

    def _show_polled(self, result: object) -> None:
        self._polling = False
        if isinstance(result, ReadFailed):
            if not self._poll_failed:
                self.notify(f"cannot refresh: {result}", severity="error")
            self._poll_failed = True
            return
        self._poll_failed = False
        run, total, labels = cast(tuple["Run", int, Labels], result)
        assert self.run is not None
        changed = total != self._total or run.status != self.run.status
        self.run, self._total = run, total
        if changed:
            self.query_one("#run-header", Static).update(run_summary(run, total))
            self.timeline.set_total(total)
        if labels.signature() != self.labels.signature():
            self.labels = labels
            self._show_labels()

    # -- labels tree -------------------------------------------------------------

    def _marks(self) -> dict[int, str]:
        marks: dict[int, set[str]] = defaultdict(set)
        for a in self.labels.annotations:
            if a.present:
                for i in evidence_steps(a):
                    marks[i].add("◆")
        for att in self.labels.attributions:
            if att.step_index is not None:
                marks[att.step_index].add("★")
        for child in self.labels.branches:
            if child.fork_step is not None:
                marks[child.fork_step].add("⑂")
        order = "★◆⑂"
        return {i: "".join(c for c in order if c in m) for i, m in marks.items()}

    def _show_labels(self) -> None:
        self.timeline.set_marks(self._marks())
        tree = self.query_one(LabelTree)
        tree.clear()
        tree.show_root = False
        root = tree.root
        present = [a for a in self.labels.annotations if a.label_status == "present"]
        uncertain = [a for a in self.labels.annotations if a.label_status == "uncertain"]
        absent = len(self.labels.annotations) - len(present) - len(uncertain)
        if present:
            modes = root.add(Text(f"Failure modes ({len(present)})", style="bold"), expand=True)
            by_category: dict[str, list[Annotation]] = defaultdict(list)
            for a in sorted(present, key=lambda a: (a.mode, a.annotator)):
                by_category[category_of(a.mode)].append(a)
            for category, items in by_category.items():
                cat = modes.add(Text(category), expand=True)
                for a in items:
                    steps = evidence_steps(a)
                    node = cat.add(
                        Text(mode_label(a), style="yellow"),
                        data=Target(step=steps[0] if steps else None),
                        expand=True,
                    )
                    for i in steps:
                        node.add_leaf(Text(f"◆ step {i}"), data=Target(step=i))
                    if a.rationale:
                        node.add_leaf(Text(first_line(a.rationale, 120), style="dim"))
        if uncertain:
            # Kept apart from the failure modes: the judge said present, the evidence did not show it.
            doubts = root.add(
                Text(f"Uncertain, not counted ({len(uncertain)})", style="bold dim"), expand=True
            )
            for a in sorted(uncertain, key=lambda a: (a.mode, a.annotator)):
                steps = evidence_steps(a)
                node = doubts.add(
                    Text(f"? {mode_label(a)}", style="dim italic"),
                    data=Target(step=steps[0] if steps else None),
                    expand=True,
                )
                if a.status_reason:
                    node.add_leaf(Text(first_line(a.status_reason, 120), style="dim"))
        if absent:
            root.add_leaf(Text(f"{absent} label(s) say a mode is absent", style="dim"))
        replays = {a.replay_run_id for a in self.labels.attributions if a.replay_run_id}
        if self.labels.attributions:
            blamed = root.add(
                Text(f"Blamed ({len(self.labels.attributions)})", style="bold"), expand=True
            )
            for att in self.labels.attributions:
                node = blamed.add(
                    Text(attribution_label(att), style="bold red"),
                    data=Target(step=att.step_index),
                    expand=True,
                )
                if att.reason:
                    node.add_leaf(Text(first_line(att.reason, 120), style="dim"))
                if att.replay_run_id:
                    node.add_leaf(
                        Text(f"⑂ replay {att.replay_run_id}", style="magenta"),
                        data=Target(run=att.replay_run_id),
                    )
        if self.labels.branches:
            branches = root.add(
                Text(f"Branches ({len(self.labels.branches)})", style="bold"), expand=True
            )
            for child in self.labels.branches:
                branches.add_leaf(
                    Text(branch_label(child, replay=child.id in replays), style="magenta"),
                    data=Target(run=child.id),
                )
        if not (present or uncertain or absent or self.labels.attributions or self.labels.branches):
            root.add_leaf(
                Text(
                    f"No labels yet. Find failure modes: mascope judge {self.run_id}; "
                    f"blame a step: mascope attribute {self.run_id}",
                    style="dim",
                )
            )

    def on_tree_node_selected(self, event: Tree.NodeSelected[Target | None]) -> None:
        target = event.node.data
        if target is None:
            return
        event.stop()
        if target.run is not None:
            self._open_run(target.run)
        elif target.step is not None:
            self.timeline.go_to(target.step)
            self.timeline.focus()

    # -- the selected step -------------------------------------------------------

    def on_step_timeline_highlighted(self, event: StepTimeline.Highlighted) -> None:
        self._show_step(event.index)

    def _show_step(self, index: int) -> None:
        detail = self.query_one("#detail", Static)
        step = self.timeline.step_at(index)
        if step is None:
            if self.run is not None and not self._total:
                detail.update(Text("This run has no steps yet.", style="dim"))
            else:  # its page is being read; Highlighted comes again when it is
                detail.update(Text(f"step {index}: reading…", style="dim"))
            return
        notes: list[RenderableType] = []
        for a in self.labels.annotations:
            if a.present and index in evidence_steps(a):
                notes.append(Text(f"◆ evidence for {mode_label(a)}", style="bold yellow"))
        for att in self.labels.attributions:
            if att.step_index == index:
                notes.append(Text(f"{attribution_label(att)}: {att.reason}", style="bold red"))
                if att.intervention:
                    notes.append(Text(f"  fix: {att.intervention}", style="red"))
        for child in self.labels.branches:
            if child.fork_step == index:
                notes.append(
                    Text(f"⑂ branch {child.id} ({child.status}) forks here; b opens it", "magenta")
                )
        if notes:
            notes.append(Text(""))
        inputs: RenderableType | None = None
        if step.inputs:
            messages = self._inputs.get(index)
            if messages is None:
                self._read_inputs(index)
                inputs = Text("input: reading…", style="dim")
            elif isinstance(messages, ReadFailed):
                inputs = Text(f"input not readable: {messages}", "red")
            else:
                inputs = input_detail(messages, expanded=self.inputs_expanded)
        if inputs is not None and self.inputs_expanded:
            # Shown in full, the input comes first: that is what `i` asked to see.
            detail.update(Group(*notes, inputs, Text(""), step_detail(step)))
        else:
            detail.update(Group(*notes, step_detail(step, inputs=inputs)))
        self.query_one("#detail-scroll", VerticalScroll).scroll_home(animate=False)

    def _read_inputs(self, index: int) -> None:
        run_id = self.run_id

        def show(result: object) -> None:
            self._inputs[index] = result  # type: ignore[assignment]
            if self.timeline.cursor == index:
                self._show_step(index)

        read_in_worker(self, self.source, lambda store: store.step_inputs(run_id, index), show)

    # -- actions -----------------------------------------------------------------

    def _open_run(self, run_id: str) -> None:
        app = cast(Navigator, self.app)
        app.open_run(run_id)

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()
        else:  # opened straight on this run: the runs go on top of it
            self.app.push_screen(cast(Navigator, self.app).runs_screen())

    def action_branch(self) -> None:
        """Open the branch forked at the selected step, the labels' selected one, or the only one."""
        branches = self.labels.branches
        tree = self.query_one(LabelTree)
        node: TreeNode[Target | None] | None = tree.cursor_node
        if tree.has_focus and node is not None and node.data and node.data.run:
            self._open_run(node.data.run)
            return
        here = [c for c in branches if c.fork_step == self.timeline.cursor]
        if here:
            self._open_run(here[0].id)
        elif len(branches) == 1:
            self._open_run(branches[0].id)
        elif branches:
            where = ", ".join(sorted({str(c.fork_step) for c in branches}))
            self.notify(
                f"{len(branches)} branches, forked at steps {where}: move to one (n) and press b"
            )
        else:
            self.notify("this run has no branches (forks or counterfactual replays)")

    def action_next_mark(self, direction: int) -> None:
        marked = sorted(self._marks())
        cursor = self.timeline.cursor
        ahead = [i for i in marked if (i > cursor if direction > 0 else i < cursor)]
        if not ahead:
            self.notify("no more marked steps" if marked else "no marked steps in this run")
            return
        self.timeline.go_to(ahead[0] if direction > 0 else ahead[-1])
        self.timeline.focus()

    def action_copy(self) -> None:
        step = self.timeline.step_at(self.timeline.cursor)
        if step is None:
            reading = self._total and not self.timeline.is_read(self.timeline.cursor)
            self.notify(
                "the step is still being read" if reading else "no step to copy", severity="warning"
            )
            return
        self.app.copy_to_clipboard(step.content)
        self.notify(f"copied step {step.index} ({len(step.content):,} characters) to the clipboard")

    def action_export(self) -> None:
        # The id comes from the store, which may hold imported data: never a path as is.
        target = Path.cwd() / f"mascope-run-{file_safe(self.run_id)}.jsonl"
        self.run_worker(lambda: self._export(target), thread=True, exclusive=True, group="export")

    def _export(self, target: Path) -> None:
        from mascope.traces import export_runs

        try:
            self.source.read(lambda store: export_runs(store, [self.run_id], "jsonl", target))
        except (ReadFailed, OSError) as exc:
            self.app.call_from_thread(
                self.notify, f"export failed: {first_line(str(exc))}", severity="error"
            )
            return
        self.app.call_from_thread(self.notify, f"exported run to {target}")

    def action_toggle_inputs(self) -> None:
        """Show the selected step's input messages in full, or one line each."""
        self.inputs_expanded = not self.inputs_expanded
        self._show_step(self.timeline.cursor)

    def action_reload(self) -> None:
        self.poll()
