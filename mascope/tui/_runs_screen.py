"""The runs screen: every run in the store, a page at a time, sorted and filtered.

Every read runs in a worker thread and comes back as a message; a read that
belongs to an older sort or filter (the user changed it meanwhile) is dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, cast

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Input, Select, Static

from mascope.traces import HOW_TO_MAKE_ONE, RUN_SORTS, RUN_STATUSES, RunSort

from ._format import RunLike, cost, first_line, status_text, tokens
from ._navigation import Navigator
from ._source import FIRST_PAGE, Read, ReadFailed, StoreSource, read_in_worker

if TYPE_CHECKING:
    from mascope.traces import TraceStore

PAGE = FIRST_PAGE
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


@dataclass
class _Rows:
    """Runs read for the table, with what their rows show besides the run."""

    runs: list[RunLike] = field(default_factory=list)
    modes: dict[str, list[str]] = field(default_factory=dict)
    live: dict[str, int] = field(default_factory=dict)
    next: str | None = None


@dataclass
class _First:
    """The first page(s) after a reload."""

    total: int
    store_total: int
    labels_mark: str | None
    rows: _Rows
    keep: str | None
    teams: list[str] | None = None


@dataclass
class _Polled:
    total: int
    labels_mark: str | None
    rows: _Rows
    """The running runs, read again."""
    due: dict[str, list[str]]
    """Failure modes of rows on screen whose labels may have changed."""
    generation: int


def _read_rows(
    store: TraceStore, filters: dict[str, str | None], sort: RunSort, ascending: bool,
    cursor: str | None, limit: int,
) -> _Rows:  # fmt: skip
    page = store.page_runs(**filters, sort=sort, ascending=ascending, limit=limit, cursor=cursor)
    ids = [r.id for r in page.runs]
    live = store.live_step_counts([r.id for r in page.runs if r.status == "running"])
    return _Rows(list(page.runs), store.modes_by_run(ids), live, page.next)


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

    def __init__(self, store: StoreSource, *, poll_interval: float = 1.0) -> None:
        super().__init__()
        self.source = store
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
        self._generation = 0
        """Bumped by every reload; reads of an older generation are dropped."""
        self._busy = False
        """A reload or a page is being read (another page waits for it)."""
        self._polling = False
        self._options: dict[str, list[tuple[str | Text, str]]] = {"team": [], "mode": []}
        """The team and mode selects' options, kept here until the selects are mounted."""
        self._selects_mounted = False

    def compose(self) -> ComposeResult:
        with Horizontal(id="filters"):
            yield Input(placeholder="search tasks  ( / )", id="search")
            # The selects are mounted in here just after the first paint
            # (`_mount_selects`): building and painting three of them costs about a
            # fifth of a bare Textual app's whole start. Their room is kept meanwhile.
            yield Horizontal(id="filter-selects")
        yield RunTable(id="runs", cursor_type="row", zebra_stripes=True)
        yield Static(id="empty")
        yield Static(id="runs-status")
        yield Footer()

    def on_mount(self) -> None:
        self.call_after_refresh(self._mount_selects)
        table = self.query_one(RunTable)
        for key, label, width in _COLUMNS:
            table.add_column(self._header(key, label), key=key, width=width)
        if self.poll_interval > 0:
            self.set_interval(self.poll_interval, self.poll)
        first, self.source.first_runs = self.source.first_runs, None
        if first is not None:
            # Read before the store was open: shown before the first paint (rows
            # added after it would draw the table twice), the store opened after it
            # (its imports hold the GIL and would slow the paint down).
            self._started = True
            rows = _Rows(list(first.runs), first.modes, first.live, first.next)
            self._show_first(
                _First(first.total, first.total, first.labels_mark, rows, None, first.teams)
            )
            self.call_after_refresh(self._read_options_later)

    def on_screen_resume(self) -> None:
        # Read the store the first time the screen shows: `mascope tui RUN`
        # opens a run on top of it and should not wait for the runs.
        if self.is_current and not self._started:
            self._started = True
            self.reload(teams=True)
            self._read_options_later()

    def _mount_selects(self) -> None:
        options = dict(self._options)
        selects: list[Select[str]] = [
            Select([(s, s) for s in RUN_STATUSES], prompt="any status", id="status", compact=True),
            Select[str](options["team"], prompt="any team", id="team", compact=True),
            # The failure modes come with the store (MAST is pydantic: not before the first paint).
            Select[str](options["mode"], prompt="any failure mode", id="mode", compact=True),
        ]

        async def mount() -> None:
            await self.query_one("#filter-selects", Horizontal).mount_all(selects)
            self._selects_mounted = True
            for name, given in options.items():
                if self._options[name] is not given:  # read while they were mounting
                    self.query_one(f"#{name}", Select).set_options(self._options[name])

        self.run_worker(mount(), group="mount")

    def _set_options(self, name: str, options: list[tuple[str | Text, str]]) -> None:
        self._options[name] = options
        if self._selects_mounted:
            self.query_one(f"#{name}", Select).set_options(options)

    def _read_options_later(self) -> None:
        self._run(self._read_options, self._show_options, generation=None)

    # -- reading in the background ---------------------------------------------

    def _run(
        self,
        read: Callable[[TraceStore], Any],
        apply: Callable[[Any], None],
        *,
        generation: int | None,
    ) -> None:
        """`read(store)` in a worker thread, then `apply(result)` here, unless a reload
        came in between (`generation` None: never dropped)."""

        def apply_if_current(result: object) -> None:
            if generation is None or generation == self._generation:
                apply(result)
            # else: read for a sort or filter that is gone

        read_in_worker(self, self.source, read, apply_if_current)

    @on(Read)
    def _on_read(self, message: Read) -> None:
        message.stop()
        message.apply(message.result)

    @staticmethod
    def _read_options(store: TraceStore) -> list[tuple[str, str]]:
        from mascope.taxonomy import MAST

        return [(f"{m.id} {m.name}", m.id) for m in MAST.modes]

    def _show_options(self, result: object) -> None:
        if isinstance(result, list):
            self._set_options("mode", result)
        elif isinstance(result, ReadFailed):
            self.notify(f"cannot read the store: {result}", severity="error")

    # -- loading -----------------------------------------------------------------

    def filters(self) -> dict[str, str | None]:
        def value(name: str) -> str | None:
            if not self._selects_mounted:
                return None  # nothing chosen in them yet
            v = self.query_one(f"#{name}", Select).value
            return v if isinstance(v, str) else None

        search = self.query_one("#search", Input).value.strip()
        return {
            "status": value("status"),
            "team": value("team"),
            "mode": value("mode"),
            "search": search or None,
        }

    def reload(self, *, keep: str | None = None, rows: int = PAGE, teams: bool = False) -> None:
        """Read the first page(s) again; keep the cursor on run `keep` if it is still there.

        The rows on screen stay until the new ones arrive."""
        table = self.query_one(RunTable)
        if keep is None and table.row_count:
            keep = self.current_run_id()
        self._generation += 1
        self._busy = True
        filters, sort, ascending = self.filters(), self.sort, self.ascending

        def read(store: TraceStore) -> _First:
            mark = store.labels_mark()
            total = store.count_runs(**filters)
            store_total = total if not any(filters.values()) else store.count_runs()
            got = _Rows()
            while True:
                page = _read_rows(store, filters, sort, ascending, got.next, PAGE)
                got.runs += page.runs
                got.modes.update(page.modes)
                got.live.update(page.live)
                got.next = page.next
                if got.next is None or len(got.runs) >= rows:
                    break
            return _First(total, store_total, mark, got, keep, store.teams() if teams else None)

        self._run(read, self._show_first, generation=self._generation)

    def _show_first(self, result: object) -> None:
        self._busy = False
        if isinstance(result, ReadFailed):
            self.notify(f"cannot read the runs: {result}", severity="error")
            return
        assert isinstance(result, _First)
        if result.teams is not None:
            self._set_options("team", [(Text(t or "(none)"), t) for t in result.teams])
        table = self.query_one(RunTable)
        table.clear()
        self._labels_mark = result.labels_mark
        self._stale_labels.clear()
        self.total, self.store_total = result.total, result.store_total
        self._loaded, self._exhausted, self._cursor = 0, False, None
        self._add_rows(result.rows)
        keep = result.keep
        if keep is not None and keep in table.rows:
            table.move_cursor(row=table.get_row_index(keep), animate=False)
        self._show_state()

    def load_page(self) -> None:
        """Read the next page in the background (if there is one and no read is under way)."""
        if self._exhausted or self._busy:
            return
        self._busy = True
        filters, sort, ascending, cursor = self.filters(), self.sort, self.ascending, self._cursor
        self._run(
            lambda store: _read_rows(store, filters, sort, ascending, cursor, PAGE),
            self._show_page,
            generation=self._generation,
        )

    def _show_page(self, result: object) -> None:
        self._busy = False
        if isinstance(result, ReadFailed):
            self.notify(f"cannot read more runs: {result}", severity="error")
            return
        assert isinstance(result, _Rows)
        self._add_rows(result)
        table = self.query_one(RunTable)
        if table.row_count and table.cursor_row >= table.row_count - 20:
            self.load_page()  # the cursor went on down while this page was read

    def _add_rows(self, rows: _Rows) -> None:
        table = self.query_one(RunTable)
        for run in rows.runs:
            if run.id not in table.rows:
                table.add_row(*self._cells(run, rows.modes.get(run.id, []), rows.live), key=run.id)
        self._loaded += len(rows.runs)
        self._exhausted = rows.next is None
        self._cursor = rows.next
        self._show_state()

    @staticmethod
    def _cells(run: RunLike, modes: list[str], live: dict[str, int]) -> list[Any]:
        steps = live.get(run.id, 0) if run.status == "running" else run.step_count
        return [
            run.started_at.strftime("%Y-%m-%d %H:%M"),
            # Text, not str: a str cell is read as Rich markup, and a trace's
            # team and task are untrusted (`[link=...]` would become a link).
            Text(first_line(run.team, 12) or "-"),
            Text(("⑂ " if run.parent_run_id else "") + first_line(run.task, 38)),
            status_text(run.status),
            Text(f"{steps:,}", justify="right"),
            Text(f"{tokens(run):,}", justify="right"),
            Text(cost(run.cost_usd), justify="right"),
            Text(", ".join(modes), style="yellow"),
        ]

    def _show_state(self) -> None:
        table = self.query_one(RunTable)
        empty = self.query_one("#empty", Static)
        where = self.source.where
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
            for select in self.query("#filter-selects > Select").results(Select):
                select.clear()
        self.reload()

    def action_reload(self) -> None:
        self.reload()

    # -- live --------------------------------------------------------------------

    def poll(self) -> None:
        """New runs appear, running runs count their steps, finished runs settle.

        Labels added since the rows were read (a batch judging in the background)
        show too: one cheap query per tick notices them; only the rows on screen
        are read again, and the others when they scroll into view.
        """
        if not (self.is_current and self._started) or self._polling or self._busy:
            return
        table = self.query_one(RunTable)
        running = [
            str(k.value) for k in table.rows if table.get_cell(k, "status").plain == "running"
        ]
        first = int(table.scroll_y)
        shown = [
            str(row.key.value)
            for row in table.ordered_rows[first : first + max(1, table.size.height)]
        ]
        filters, known_total, known_mark = self.filters(), self.total, self._labels_mark
        gen = self._generation
        stale = [rid for rid in shown if rid in self._stale_labels]

        def read(store: TraceStore) -> _Polled:
            total = store.count_runs(**filters)
            if total != known_total:
                return _Polled(total, known_mark, _Rows(), {}, gen)
            mark = store.labels_mark()
            due = shown if mark != known_mark else stale
            runs: list[RunLike] = [store.get_run(rid) for rid in running]
            rows = _Rows(runs, store.modes_by_run(running), store.live_step_counts(running))
            return _Polled(total, mark, rows, store.modes_by_run(due), gen)

        self._polling = True
        self._run(read, self._show_polled, generation=None)  # never dropped: it clears _polling

    def _show_polled(self, result: object) -> None:
        self._polling = False
        if isinstance(result, ReadFailed):
            if not self._poll_failed:
                self.notify(f"cannot refresh: {result}", severity="error")
            self._poll_failed = True
            return
        self._poll_failed = False
        assert isinstance(result, _Polled)
        if result.generation != self._generation:
            return  # the rows it read for were reloaded meanwhile
        if result.total != self.total:
            self.reload(rows=max(self._loaded, PAGE))
            return
        table = self.query_one(RunTable)
        if result.labels_mark != self._labels_mark:
            self._labels_mark = result.labels_mark
            self._stale_labels = {str(k.value) for k in table.rows}
        for rid, modes in result.due.items():
            if rid in table.rows:
                table.update_cell(rid, "modes", Text(", ".join(modes), style="yellow"))
        self._stale_labels.difference_update(result.due)
        for run in result.rows.runs:
            if run.id not in table.rows:
                continue
            cells = self._cells(run, result.rows.modes.get(run.id, []), result.rows.live)
            for (key, _, _), value in zip(_COLUMNS, cells, strict=True):
                table.update_cell(run.id, key, value)
