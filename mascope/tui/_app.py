"""The Textual app: a runs screen at the bottom, run screens pushed on top."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual.app import App
from textual.binding import Binding, BindingType
from textual.screen import Screen

from ._source import StoreSource

if TYPE_CHECKING:
    from mascope.traces import TraceStore

    from ._runs_screen import RunsScreen

# The screens are imported when first shown: each screen module costs a few
# milliseconds to import, and the first paint needs only one of them.

CSS = """
#filters { height: 1; margin: 0 0 1 0; }
#filters > Input { width: 1fr; height: 1; border: none; padding: 0 1; }
#filter-selects { width: 85; }  /* the selects' widths and margins: mounted after the first paint */
#filter-selects > Select { width: 24; margin-left: 1; }
#filter-selects > #mode { width: 34; }
#runs { height: 1fr; }
#empty { height: 1fr; padding: 2 4; color: $text-muted; }
#runs-status { height: 1; padding: 0 1; background: $panel; }
#run-header { height: auto; max-height: 4; padding: 0 1; background: $panel; }
#run-body { height: 1fr; }
#timeline { width: 1fr; border: round $primary-muted; }
#timeline:focus { border: round $primary; }
#run-side { width: 1fr; }
#detail-scroll { height: 3fr; border: round $primary-muted; padding: 0 1; }
#detail-scroll:focus { border: round $primary; }
#labels { height: 2fr; border: round $primary-muted; }
#labels:focus { border: round $primary; }
HelpScreen { align: center middle; }
#help { width: 90; height: auto; max-height: 90%; border: round $primary; padding: 1 2; background: $surface; }
"""


class TraceApp(App[None]):
    """Browse a trace store: runs, steps, failure modes, attributions, branches.

    Args:
        store: an open store; the app only reads it (`browse` passes a source
            that opens it in the background).
        run_id: open this run first (escape goes back to the runs).
        poll_interval: seconds between looks at the store for new runs and steps;
            0 turns live updates off.
    """

    TITLE = "mascope"
    CSS = CSS
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Help"),
    ]

    def __init__(
        self,
        store: TraceStore | StoreSource,
        *,
        run_id: str | None = None,
        poll_interval: float = 1.0,
    ) -> None:
        super().__init__()
        self.source = store if isinstance(store, StoreSource) else StoreSource(store=store)
        self.first_run = run_id
        self.poll_interval = poll_interval
        self.sub_title = self.source.where

    def get_default_screen(self) -> Screen[None]:
        # Opened on one run, the runs screen is built only if the user goes back.
        if self.first_run is not None:
            from ._run_screen import RunScreen

            return RunScreen(self.source, self.first_run, poll_interval=self.poll_interval)
        return self.runs_screen()

    def runs_screen(self) -> RunsScreen:
        from ._runs_screen import RunsScreen

        return RunsScreen(self.source, poll_interval=self.poll_interval)

    def open_run(self, run_id: str) -> None:
        """Show one run on top of whatever is on screen."""
        from ._run_screen import RunScreen

        self.push_screen(RunScreen(self.source, run_id, poll_interval=self.poll_interval))

    def action_help(self) -> None:
        from ._help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())
