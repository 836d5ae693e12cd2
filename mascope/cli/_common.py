"""What every command shares: the stderr console and one-line errors."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from mascope.errors import MascopeError

P = ParamSpec("P")
R = TypeVar("R")

err = Console(stderr=True, highlight=False)


def user_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Print a MascopeError as one line on stderr and exit 2, without a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except MascopeError as exc:
            from mascope.traces import Redactor

            # Messages may quote user input (a task, a file's content): mask secrets in it.
            message = Redactor().text(str(exc))
            err.print(f"[bold red]error:[/] {one_line(message)}", soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None

    return wrapper


def one_line(text: str) -> str:
    return escape(" ".join(text.split()))


DbOpt = Annotated[
    Path | None,
    typer.Option(
        "--db",
        help="Trace store: a SQLite file or SQLAlchemy URL. Default: $MASCOPE_DB or ./mascope.db.",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
