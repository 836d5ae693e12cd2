"""`mascope tui` without Typer: the console script's fast way to the TUI.

Importing Typer and click costs about a third of a bare Textual app's start,
so plain arguments (a run id, `--db`, `--interval`) are read here and the TUI
starts at once; anything else (`--help`, a typo, a bad number) goes to the
Typer command in `_tui.py`, which parses and reports it as every command does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

_OPTIONS = ("--db", "--interval")


def parse(args: Sequence[str]) -> tuple[str | None, str | None, float] | None:
    """(run id, db, interval) from the arguments after `tui`; None unless they are plain."""
    run_id: str | None = None
    given: dict[str, str] = {}
    rest = list(args)
    while rest:
        arg = rest.pop(0)
        name, eq, value = arg.partition("=")
        if name in _OPTIONS:
            if not eq:
                if not rest:
                    return None
                value = rest.pop(0)
            if name in given:
                return None
            given[name] = value
        elif arg.startswith("-") or run_id is not None:
            return None
        else:
            run_id = arg
    try:
        interval = float(given.get("--interval", "1.0"))
    except ValueError:
        return None
    if not math.isfinite(interval) or interval < 0:
        return None
    return run_id, given.get("--db"), interval


def fast_tui(args: Sequence[str]) -> bool:
    """Run `mascope tui ARGS` if the arguments are plain; False: let Typer parse them."""
    parsed = parse(args)
    if parsed is None:
        return False
    run_id, db, interval = parsed
    try:
        from mascope.tui import browse

        browse(db, run_id=run_id, poll_interval=interval)
    except (Exception, KeyboardInterrupt) as exc:
        from ._common import exit_for  # the errors' one-line form, only when needed

        exit_for(exc, ["tui", *args])
    return True
