"""The whole `mascope` command line: every command group, registered on one Typer app."""

from __future__ import annotations

from typing import Annotated

import typer

from mascope import __version__

from ._attribute import attribute
from ._chat import chat
from ._common import EXIT_CODES_HELP, OneLineGroup
from ._eval import eval_app
from ._eval_run import eval_run, eval_tasks
from ._judge import judge
from ._run import demo, fork, resume, run
from ._runs import runs_app
from ._serve import serve
from ._taxonomy import taxonomy_app
from ._team import team_app
from ._tui import tui
from ._verifiers import verifiers_app

app = typer.Typer(
    name="mascope",
    help="Run teams of LLM agents and find out why they failed.",
    epilog=EXIT_CODES_HELP,
    cls=OneLineGroup,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        print(f"mascope {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Run teams of LLM agents and find out why they failed."""


app.command()(demo)
app.command()(run)
app.command()(chat)
app.command()(judge)
app.command()(attribute)
app.command()(tui)
eval_app.command("run")(eval_run)
eval_app.command("tasks")(eval_tasks)
app.command()(serve)
runs_app.command("resume")(resume)
runs_app.command("fork")(fork)
app.add_typer(runs_app, name="runs")
app.add_typer(taxonomy_app, name="taxonomy")
app.add_typer(team_app, name="team")
app.add_typer(eval_app, name="eval")
app.add_typer(verifiers_app, name="verifiers")


__all__ = ["app"]
