"""The `?` screen: every key, per screen."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS: list[tuple[str, list[tuple[str, str]]]] = [
    (
        "Everywhere",
        [
            ("?", "this help"),
            ("q", "quit"),
            ("tab / shift+tab", "next / previous pane"),
            ("j k ↓ ↑", "move down / up"),
            ("ctrl+d ctrl+u, pgdn pgup", "page down / up"),
            ("g G, home end", "first / last"),
        ],
    ),
    (
        "Runs",
        [
            ("enter, l", "open the run"),
            ("/", "search task text (enter: back to the table)"),
            ("s / S", "sort by the next column / reverse the order (or click a header)"),
            ("x", "clear the filters (status, team, failure mode, search)"),
            ("r", "reload"),
        ],
    ),
    (
        "Run",
        [
            ("escape, backspace, h", "back to the runs (or the parent run)"),
            ("n / N", "next / previous marked step (★ blamed, ◆ evidence, ⑂ branch)"),
            ("enter on a label", "jump to its step, or open its run"),
            ("b", "open the branch forked at this step (or the only one)"),
            ("y, c", "copy the step's content to the clipboard"),
            ("i", "show the messages the step's model was sent in full / one line each"),
            ("e", "export the run as JSONL into the current folder"),
            ("r", "reload (a running run also refreshes by itself)"),
        ],
    ),
]


def help_table() -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column()
    for section, keys in KEYS:
        table.add_row(Text(section, style="bold underline"), "")
        for key, what in keys:
            table.add_row(key, what)
        table.add_row("", "")
    table.add_row("", Text("Marks in the timeline: ★ blamed step, ◆ evidence of a failure mode, "
                           "⑂ a branch forks here; ✗ a verifier said no.", style="dim"))  # fmt: skip
    return table


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "dismiss", "Close", show=False)
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Static(help_table())

    def on_mount(self) -> None:
        self.query_one("#help").border_title = "mascope tui: keys"
