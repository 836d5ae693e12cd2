"""The step timeline: a virtual list over a run's steps, read from the store a page at a time.

Only the pages on screen are fetched, so a 10,000-step run opens as fast as a
10-step one, and a run still being recorded grows at the bottom. Pages are
read in worker threads: a line whose page is not read yet is drawn blank and
filled in when the page comes.
"""

from __future__ import annotations

from collections import OrderedDict
from functools import partial
from typing import ClassVar

from rich.style import Style
from textual import events, on
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from ._format import StepLike, step_row
from ._source import STEP_PAGE, Read, ReadFailed, StoreSource, read_in_worker

PAGE = STEP_PAGE
_KEEP_PAGES = 16


class StepTimeline(ScrollView, can_focus=True):
    """One line per step: index, marks, agent, kind, first line of content."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"timeline--cursor"}
    DEFAULT_CSS = """
    StepTimeline { overflow-x: hidden; }
    StepTimeline > .timeline--cursor { background: $boost; text-style: bold; }
    StepTimeline:focus > .timeline--cursor {
        background: $block-cursor-background;
        color: $block-cursor-foreground;
        text-style: bold;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "move(-1)", "Up", show=False),
        Binding("down,j", "move(1)", "Down", show=False),
        Binding("pageup,ctrl+b,ctrl+u", "page(-1)", "Page up", show=False),
        Binding("pagedown,ctrl+f,ctrl+d", "page(1)", "Page down", show=False),
        Binding("home,g", "first", "First step", show=False),
        Binding("end,G", "last", "Last step", show=False),
    ]

    cursor: reactive[int] = reactive(0, always_update=False)

    class Highlighted(Message):
        """The cursor moved to another step."""

        def __init__(self, timeline: StepTimeline, index: int) -> None:
            super().__init__()
            self.timeline = timeline
            self.index = index

    def __init__(
        self, source: StoreSource, run_id: str, *, total: int, id: str | None = None
    ) -> None:
        super().__init__(id=id)
        self.source = source
        self.run_id = run_id
        self.total = total
        self.marks: dict[int, str] = {}
        self._pages: OrderedDict[int, list[StepLike]] = OrderedDict()
        self._reading: set[int] = set()
        self._generation = 0
        """Bumped when the pages read so far may be out of date; older reads are dropped."""
        self._failed = False
        self.virtual_size = Size(0, total)

    # -- data ------------------------------------------------------------------

    def step_at(self, index: int) -> StepLike | None:
        """The step at `index` if its page is read; else None, and the page is asked for
        (`Highlighted` comes again for the cursor's step when it arrives)."""
        if not 0 <= index < self.total:
            return None
        page_no = index // PAGE
        page = self._pages.get(page_no)
        offset = index - page_no * PAGE
        if page is None or offset >= len(page):
            self._read_page(page_no)
            return None
        self._pages.move_to_end(page_no)
        return page[offset]

    def is_read(self, index: int) -> bool:
        page = self._pages.get(index // PAGE)
        return page is not None and index % PAGE < len(page)

    def start(self, total: int, first_page: list[StepLike]) -> None:
        """The run's step count and its first page, read with the run."""
        self._generation += 1
        self._pages.clear()
        self._reading.clear()
        self.total = total
        self.virtual_size = Size(0, total)
        if first_page:
            self._pages[0] = first_page
        self.cursor = min(self.cursor, max(total - 1, 0))
        self.refresh()

    def _read_page(self, page_no: int) -> None:
        if page_no in self._reading:
            return
        self._reading.add(page_no)
        run_id = self.run_id
        read_in_worker(
            self,
            self.source,
            lambda store: store.steps(run_id, offset=page_no * PAGE, limit=PAGE),
            partial(self._got_page, page_no, self._generation),
        )

    def _got_page(self, page_no: int, generation: int, result: object) -> None:
        if generation != self._generation:
            return
        self._reading.discard(page_no)
        if isinstance(result, ReadFailed):
            if not self._failed:
                self.notify(f"cannot read steps: {result}", severity="error")
            self._failed = True
            return
        self._failed = False
        assert isinstance(result, list)
        self._pages[page_no] = result
        while len(self._pages) > _KEEP_PAGES:
            self._pages.popitem(last=False)
        self.refresh()
        if self.cursor // PAGE == page_no:
            self.post_message(self.Highlighted(self, self.cursor))

    @on(Read)
    def _on_read(self, message: Read) -> None:
        message.stop()
        message.apply(message.result)

    def set_total(self, total: int) -> None:
        """The run now has `total` steps (it grew, or a resume rewrote its tail)."""
        if total == self.total:
            return
        follow = self.total == 0 or self.cursor >= self.total - 1
        self._generation += 1  # a page read before now may be short or stale
        self._reading.clear()
        if total < self.total:
            self._pages.clear()
        else:
            self._pages.pop(self.total // PAGE, None)  # the partial last page
        self.total = total
        self.virtual_size = Size(0, total)
        if follow and total:
            self.go_to(total - 1)
        else:
            self.cursor = min(self.cursor, max(total - 1, 0))
        self.refresh()

    def set_marks(self, marks: dict[int, str]) -> None:
        self.marks = marks
        self.refresh()

    # -- cursor ----------------------------------------------------------------

    def go_to(self, index: int) -> None:
        """Move the cursor to step `index` and scroll it into view."""
        if not self.total:
            return
        self.cursor = max(0, min(index, self.total - 1))
        self._scroll_to_cursor()

    def _scroll_to_cursor(self) -> None:
        height = max(self.scrollable_content_region.height, 1)
        top = round(self.scroll_y)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, force=True, immediate=True)
        elif self.cursor >= top + height:
            self.scroll_to(y=self.cursor - height + 1, animate=False, force=True, immediate=True)

    def watch_cursor(self, old: int, new: int) -> None:
        self.refresh()
        self.post_message(self.Highlighted(self, new))

    def action_move(self, delta: int) -> None:
        self.go_to(self.cursor + delta)

    def action_page(self, direction: int) -> None:
        self.go_to(self.cursor + direction * max(self.scrollable_content_region.height - 1, 1))

    def action_first(self) -> None:
        self.go_to(0)

    def action_last(self) -> None:
        self.go_to(self.total - 1)

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is not None:
            self.go_to(round(self.scroll_y) + offset.y)

    def on_resize(self, event: events.Resize) -> None:
        self._scroll_to_cursor()

    # -- drawing ---------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        index = round(self.scroll_y) + y
        width = self.scrollable_content_region.width
        base = self.rich_style
        step = self.step_at(index)
        if step is None:
            return Strip.blank(width, base)
        text = step_row(step, self.marks.get(index, ""), width)
        text.truncate(width, overflow="ellipsis")
        style: Style = base
        if index == self.cursor:
            style = base + self.get_component_rich_style("timeline--cursor")
        strip = Strip(text.render(self.app.console)).apply_style(style)
        return strip.crop_extend(0, width, style)
