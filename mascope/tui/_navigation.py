"""What a screen asks of the app: open a run, show the runs. A protocol, so the
screens do not import `_app`, which imports them."""

from __future__ import annotations

from typing import Protocol

from textual.screen import Screen


class Navigator(Protocol):
    def open_run(self, run_id: str) -> None: ...
    def runs_screen(self) -> Screen[None]: ...  # a RunsScreen
