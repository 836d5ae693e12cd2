"""The runs screen: every run in the store, a page at a time, sorted and filtered."""

from __future__ import annotations

from typing import Any, ClassVar, cast

from rich.text import Text
from sqlalchemy.exc import SQLAlchemyError
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Input, Select, Static

from mascope.errors import MascopeError
from mascope.taxonomy import MAST
from mascope.traces import HOW_TO_MAKE_ONE, RUN_SORTS, RUN_STATUSES, Run, RunSort, TraceStore

from ._format import cost, first_line, status_text, tokens
from ._navigation import Navigator

PAGE = 100
_COLUMNS: list[tuple[str, str, int | None]] = [
    ("time", "started (UTC)", 16),
    ("team", "team", 12),
    ("task", "task", 38),
    ("status", "status", 11),
    ("steps", "steps", 7),
    ("tokens", "tokens", 9),
    ("cost", "cost", 8),
    ("modes", "failure modes", None),
]
_SORTS = RUN_SORTS  # the store's orders, in the order `s` cycles through them


class RunTable(DataTable[Any]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("l", "select_cursor", "Open", show=False),
        Binding("k", "cursor_up", "Up", show=False),
        Binding("j", "cursor_down", "Down", show=False),
        Binding("g", "scroll_top", "Top", show=False),
        Binding("G", "scroll_bottom", "Bottom", show=False),
        Binding("ctrl+f,ctrl+d", "page_down", "Page down", show=False),
        Binding("ctrl+b,ctrl+u", "page_up", "Page up", show=False),
    ]


class RunsScreen(Screen[None]):
    """A table of runs: newest first, sortable, filterable, searched by task text."""

    AUTO_FOCUS = "#runs"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "search", "Search"),
        Binding("s", "sort(1)", "Sort"),
        Binding("S", "reverse", "Reverse", show=False),
        Binding("x", "clear_filters", "Clear filters"),
        Binding("r", "reload", "Reload", show=False),
        Binding("escape", "focus_table", "Table", show=False),
    ]

    def __init__(self, store: TraceStore, *, poll_interval: float = 1.0) -> None:
        super().__init__()
        self.store = store
        self.poll_interval = poll_interval
        self.sort: RunSort = "time"
        self.ascending = False
        self.total = 0
        self.store_total = 0
        self._loaded = 0
        self._exhausted = True
        self._cursor: str | None = None
        """Where the next page starts (the store's opaque cursor; it knows the sort)."""
        self._search_timer: Timer | None = None
        self._poll_failed = False
        self._started = False
        self._labels_mark: str | None = None
        self._stale_labels: set[str] = set()
        """Rows whose failure modes may be out of date (labels were added since they were read)."""

    def compose(self) -> ComposeResult:
        with Horizontal(id="filters"):
            yield Input(placeholder="search tasks  ( / )", id="search")
            yield Select(
                [(s, s) for s in RUN_STATUSES], prompt="any status", id="status", compact=True
            )
            yield Select[str]([], prompt="any team", id="team", compact=True)
            yield Select(
                [(f"{m.id} {m.name}", m.id) for m in MAST.modes],
                prompt="any failure mode",
                id="mode",
                compact=True,
            )
        yield RunTable(id="runs", cursor_type="row", zebra_stripes=True)
        yield Static(id="empty")
        yield Static(id="runs-status")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(RunTable)
        for key, label, width in _COLUMNS:
            table.add_column(self._header(key, label), key=key, width=width)
        if self.poll_interval > 0:
            self.set_interval(self.poll_interval, self.poll)

    def on_screen_resume(self) -> None:
        # Read the store the first time the screen shows: `mascope tui RUN`
        # opens a run on top of it and should not wait for the runs.
        if self.is_current and not self._started:
            self._started = True
            teams = self.store.teams()
            self.query_one("#team", Select).set_options((t or "(none)", t) for t in teams)
            self.reload()

    # -- loading -----------------------------------------------------------------

    def filters(self) -> dict[str, str | None]:
        def value(name: str) -> str | None:
            v = self.query_one(f"#{name}", Select).value
            return v if isinstance(v, str) else None

        search = self.query_one("#search", Input).value.strip()
        return {
            "status": value("status"),
            "team": value("team"),
            "mode": value("mode"),
            "search": search or None,
        }

    def reload(self, *, keep: str | None = None, rows: int = PAGE) -> None:
        """Read the first page(s) again; keep the cursor on run `keep` if it is still there."""
        table = self.query_one(RunTable)
        if keep is None and table.row_count:
            keep = self.current_run_id()
        table.clear()
        self._labels_mark = self.store.labels_mark()
        self._stale_labels.clear()
        self._loaded, self._exhausted, self._cursor = 0, False, None
        filters = self.filters()
        self.total = self.store.count_runs(**filters)
        self.store_total = self.total if not any(filters.values()) else self.store.count_runs()
        while not self._exhausted and self._loaded < rows:
            self.load_page()
        if keep is not None and keep in table.rows:
            table.move_cursor(row=table.get_row_index(keep), animate=False)
        self._show_state()

    def load_page(self) -> None:
        if self._exhausted:
            return
        page = self.store.page_runs(
            **self.filters(),
            sort=self.sort,
            ascending=self.ascending,
            limit=PAGE,
            cursor=self._cursor,
        )
        runs = page.runs
        ids = [r.id for r in runs]
        modes = self.store.modes_by_run(ids)
        live = self.store.live_step_counts([r.id for r in runs if r.status == "running"])
        table = self.query_one(RunTable)
        for run in runs:
            if run.id not in table.rows:
                table.add_row(*self._cells(run, modes.get(run.id, []), live), key=run.id)
        self._loaded += len(runs)
        self._exhausted = page.next is None
        self._cursor = page.next
        self._show_state()

    @staticmethod
    def _cells(run: Run, modes: list[str], live: dict[str, int]) -> list[Any]:
        steps = live.get(run.id, 0) if run.status == "running" else run.step_count
        return [
            run.started_at.strftime("%Y-%m-%d %H:%M"),
            first_line(run.team, 12) or "-",
            ("⑂ " if run.parent_run_id else "") + first_line(run.task, 38),
            status_text(run.status),
            Text(f"{steps:,}", justify="right"),
            Text(f"{tokens(run):,}", justify="right"),
            Text(cost(run.cost_usd), justify="right"),
            Text(", ".join(modes), style="yellow"),
        ]

    def _show_state(self) -> None:
        table = self.query_one(RunTable)
        empty = self.query_one("#empty", Static)
        where = self.store.where
        if self.total == 0:
            if self.store_total == 0:
                empty.update(
                    f"No runs in {where} yet.\n\n"
                    f"To {HOW_TO_MAKE_ONE.removeprefix('make one ')}; they show up here as they run.\n"
                    "For example:  mascope demo"
                )
            else:
                empty.update(
                    f"No runs match these filters ({self.store_total:,} runs in the store). "
                    "Press x to clear the filters."
                )
        empty.display = self.total == 0
        table.display = self.total > 0
        arrow = "↑" if self.ascending else "↓"
        shown = f"{table.row_count:,} of {self.total:,} runs"
        if self.total != self.store_total:
            shown += f" (of {self.store_total:,} in the store)"
        self.query_one("#runs-status", Static).update(
            Text.assemble(
                (shown, "bold"),
                f" · sorted by {self.sort} {arrow} · {where}",
                style="dim" if not self.total else "",
            )
        )

    def current_run_id(self) -> str | None:
        table = self.query_one(RunTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return None if key.value is None else str(key.value)

    # -- events ------------------------------------------------------------------

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.cursor_row >= self.query_one(RunTable).row_count - 20:
            self.load_page()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None:
            app = cast(Navigator, self.app)
            app.open_run(str(event.row_key.value))

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        key = str(event.column_key.value)
        if key not in _SORTS:
            self.notify(f"runs cannot be sorted by {key}", severity="warning")
            return
        if key == self.sort:
            self.ascending = not self.ascending
        else:
            self._set_sort(key)  # type: ignore[arg-type]
        self._resort()

    def on_select_changed(self, event: Select.Changed) -> None:
        self.reload()

    def on_input_changed(self, event: Input.Changed) -> None:
        if self._search_timer is not None:
            self._search_timer.stop()
        self._search_timer = self.set_timer(0.3, self.reload)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if self._search_timer is not None:
            self._search_timer.stop()
        self.reload()
        self.query_one(RunTable).focus()

    # -- actions -----------------------------------------------------------------

    def _set_sort(self, key: RunSort) -> None:
        self.sort = key
        self.ascending = key in ("team", "status")

    def _resort(self) -> None:
        labels = {key: label for key, label, _ in _COLUMNS}
        for column in self.query_one(RunTable).columns.values():
            key = str(column.key.value)
            column.label = Text(self._header(key, labels[key]))
        self.reload()  # clears the table's caches, so the new headers show

    def _header(self, key: str, label: str) -> str:
        if key != self.sort:
            return label
        return f"{label} {'↑' if self.ascending else '↓'}"

    def action_sort(self, step: int) -> None:
        self._set_sort(_SORTS[(_SORTS.index(self.sort) + step) % len(_SORTS)])
        self._resort()

    def action_reverse(self) -> None:
        self.ascending = not self.ascending
        self._resort()

    def action_search(self) -> None:
        self.query_one("#search", Input).focus()

    def action_focus_table(self) -> None:
        self.query_one(RunTable).focus()

    def action_clear_filters(self) -> None:
        with self.prevent(Select.Changed, Input.Changed):
            self.query_one("#search", Input).value = ""
            for name in ("status", "team", "mode"):
                self.query_one(f"#{name}", Select).clear()
        self.reload()

    def action_reload(self) -> None:
        self.reload()

    # -- live --------------------------------------------------------------------

    def poll(self) -> None:
        """New runs appear, running runs count their steps, finished runs settle."""
        if not (self.is_current and self._started):
            return
        table = self.query_one(RunTable)
        try:
            total = self.store.count_runs(**self.filters())
            if total != self.total:
                self.reload(rows=max(self._loaded, PAGE))
                return
            running = [
                str(k.value) for k in table.rows if table.get_cell(k, "status").plain == "running"
            ]
            self._refresh_labels(table)
            runs = [self.store.get_run(rid) for rid in running]
            modes = self.store.modes_by_run(running)
            live = self.store.live_step_counts(running) if running else {}
        except (SQLAlchemyError, MascopeError) as exc:
            if not self._poll_failed:
                self.notify(f"cannot refresh: {first_line(str(exc))}", severity="error")
            self._poll_failed = True
            return
        self._poll_failed = False
        for run in runs:
            for (key, _, _), value in zip(
                _COLUMNS, self._cells(run, modes.get(run.id, []), live), strict=True
            ):
                table.update_cell(run.id, key, value)

    def _refresh_labels(self, table: RunTable) -> None:
        """Show labels added since the rows were read (a batch judging in the background).

        One cheap query per tick notices new labels; only the rows on screen are
        read again, and the others when they scroll into view.
        """
        mark = self.store.labels_mark()
        if mark != self._labels_mark:
            self._labels_mark = mark
            self._stale_labels = {str(k.value) for k in table.rows}
        if not self._stale_labels:
            return
        first = int(table.scroll_y)
        shown = [
            str(row.key.value)
            for row in table.ordered_rows[first : first + max(1, table.size.height)]
        ]
        due = [rid for rid in shown if rid in self._stale_labels]
        if not due:
            return
        modes = self.store.modes_by_run(due)
        for rid in due:
            table.update_cell(rid, "modes", Text(", ".join(modes.get(rid, [])), style="yellow"))
        self._stale_labels.difference_update(due)
