"""The `mascope` command line: parses, calls the library, renders with rich.

`mascope tui` is dispatched before the other commands (and Typer) are imported:
the TUI should paint about as fast as a bare Textual app, and importing every
command module would cost more than the TUI's own start.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from mascope._lazy import lazy_exports

if TYPE_CHECKING:
    from ._app import app

__getattr__, __dir__ = lazy_exports(__name__, {"app": "._app"})


def main() -> None:
    """Entry point of the `mascope` console script."""
    if sys.argv[1:2] == ["tui"]:
        from ._tui_fast import fast_tui

        if fast_tui(sys.argv[2:]):
            sys.exit(0)
        from ._tui import tui_app

        tui_app()(prog_name="mascope")
        return
    from ._app import app

    app()


__all__ = ["app", "main"]
