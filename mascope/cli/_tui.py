"""`mascope tui`: browse the trace store in the terminal."""

from __future__ import annotations

from typing import Annotated

import typer

from ._common import DbOpt, user_errors


@user_errors
def tui(
    run_id: Annotated[
        str | None, typer.Argument(help="Open this run first (an id or a unique prefix).")
    ] = None,
    db: DbOpt = None,
    interval: Annotated[
        float,
        typer.Option(help="Seconds between looks for new runs and steps; 0 turns live off.", min=0),
    ] = 1.0,
) -> None:
    """Browse runs, steps, verdicts, failure modes, attributions and branches, live."""
    # Textual is imported here, not at the top, so `mascope --help` stays fast.
    from mascope.tui import TraceApp, open_for_viewing

    store = open_for_viewing(db)
    try:
        rid = store.resolve_run_id(run_id) if run_id else None
        TraceApp(store, run_id=rid, poll_interval=interval).run()
    finally:
        store.close()
