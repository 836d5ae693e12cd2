"""`mascope tui`: browse the trace store in the terminal."""

from __future__ import annotations

from typing import Annotated

import typer

from ._common import EXIT_CODES_HELP, DbOpt, OneLineGroup, user_errors


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
    from mascope.tui import browse

    browse(db, run_id=run_id, poll_interval=interval)


def tui_app() -> typer.Typer:
    """A `mascope` app holding only `tui`: what `mascope tui ...` runs, without
    importing the other commands (see `mascope.cli.main`)."""
    app = typer.Typer(
        name="mascope",
        epilog=EXIT_CODES_HELP,
        cls=OneLineGroup,
        pretty_exceptions_enable=False,
        add_completion=False,
    )

    @app.callback()
    def root() -> None:
        """Run teams of LLM agents and find out why they failed."""

    app.command()(tui)
    return app
