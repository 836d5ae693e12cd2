"""What every command shares: the stderr console, one-line errors and exit codes."""

from __future__ import annotations

import functools
import glob
import os
import re
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.segment import Segment
from typer.core import TyperGroup

from mascope.errors import MascopeError

P = ParamSpec("P")
R = TypeVar("R")

# Terminal controls other than line breaks and tabs: ESC starts sequences that clear
# the screen, retitle the window or hide text; C1 codes do the same on some terminals.
_TERMINAL_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _control_picture(m: re.Match[str]) -> str:
    code = ord(m.group(0))
    return chr(0x2400 + code) if code < 0x20 else "\u2421" if code == 0x7F else "\ufffd"


class SafeConsole(Console):
    """A rich console that shows control characters in text as symbols (`␛`) instead of
    sending them: whatever a trace holds is printed, and none of it reaches the terminal
    as a command."""

    def _render_buffer(self, buffer: Iterable[Segment]) -> str:
        return super()._render_buffer(
            Segment(_TERMINAL_CONTROL.sub(_control_picture, seg.text), seg.style, seg.control)
            if seg.control is None
            else seg
            for seg in buffer
        )


err = SafeConsole(stderr=True, highlight=False)

EXIT_OK = 0
EXIT_FAILED = 1
"""The run (or the task) failed: a team that did not succeed, a batch that judged nothing."""
EXIT_USER_ERROR = 2
"""Bad input: a flag, a file, a store; the one-line message says what to fix."""
EXIT_INTERNAL = 3
"""mascope itself failed (a bug); MASCOPE_DEBUG=1 prints the traceback."""
EXIT_INTERRUPTED = 130

EXIT_CODES_HELP = (
    "Exit codes: 0 ok; 1 the run or task failed; 2 bad input (flag, file, store); "
    "3 mascope itself failed (set MASCOPE_DEBUG=1 for the traceback); 130 interrupted."
)


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
            raise typer.Exit(EXIT_USER_ERROR) from None
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(EXIT_INTERRUPTED) from None

    return wrapper


def one_line(text: str) -> str:
    return escape(" ".join(text.split()))


def _say(message: str) -> None:
    err.print(f"[bold red]error:[/] {one_line(message)}", soft_wrap=True)


class OneLineGroup(TyperGroup):
    """The root command: every usage error is one line and exit 2, every unexpected
    exception one line and exit 3, whether run as a program or by CliRunner."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except (Exception, KeyboardInterrupt) as exc:
            exit_for(exc, sys.argv[1:] if args is None else args)
        sys.exit(rv if isinstance(rv, int) else EXIT_OK)


def exit_for(exc: BaseException, args: Sequence[str]) -> NoReturn:
    """Say what `exc` means in one line on stderr and exit with its code (see `OneLineGroup`)."""
    if isinstance(exc, typer.Exit):
        sys.exit(exc.exit_code)
    if isinstance(exc, typer.Abort | KeyboardInterrupt):
        err.print("interrupted")
        sys.exit(EXIT_INTERRUPTED)
    if isinstance(exc, MascopeError):  # a command without @user_errors
        from mascope.traces import Redactor

        _say(Redactor().text(str(exc)))  # messages may quote user input
        sys.exit(EXIT_USER_ERROR)
    if isinstance(exc, RecursionError):
        _say("input nests too deeply to process; simplify it")
        sys.exit(EXIT_USER_ERROR)
    if _is_usage_error(exc):
        _usage_error(exc, args)
    if os.environ.get("MASCOPE_DEBUG"):
        traceback.print_exception(exc)
    hint = "" if os.environ.get("MASCOPE_DEBUG") else "; set MASCOPE_DEBUG=1 to see the traceback"
    _say(
        f"mascope failed unexpectedly ({type(exc).__name__}: {exc}); this is a bug in mascope{hint}"
    )
    sys.exit(EXIT_INTERNAL)


def _is_usage_error(exc: BaseException) -> bool:
    # Typer vendors its own copy of click (typer._click) in newer releases, so
    # click's exception classes are recognised by shape, not by class.
    return hasattr(exc, "format_message") and isinstance(getattr(exc, "exit_code", None), int)


def _usage_error(exc: Any, args: Sequence[str]) -> None:
    ctx = getattr(exc, "ctx", None)
    if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
        # `mascope` or `mascope runs` alone: Typer has printed the help already.
        sys.exit(EXIT_USER_ERROR)
    message = exc.format_message().rstrip(".")
    message = message.replace("Input should be greater than or equal to", "must be at least")
    message = message.replace("Input should be less than or equal to", "must be at most")
    given = _given_value(getattr(exc, "param", None), args)
    if given is not None and "(got " not in message:
        message += f" (got {given!r})"
    where = f" (see {ctx.command_path} --help)" if ctx is not None else ""
    _say(f"{message}{where}")
    code = exc.exit_code
    sys.exit(EXIT_USER_ERROR if code in (1, 2) else code)


def _given_value(param: Any, args: Sequence[str]) -> str | None:
    """What the user typed for an option click refused, to echo it back."""
    opts = list(getattr(param, "opts", None) or []) + list(
        getattr(param, "secondary_opts", None) or []
    )
    if not opts or getattr(param, "param_type_name", "") != "option":
        return None
    args = list(args)
    for i, arg in enumerate(args):
        for opt in opts:
            if arg == opt and i + 1 < len(args):
                return args[i + 1]
            if arg.startswith(opt + "="):
                return arg[len(opt) + 1 :]
    return None


DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Trace store: a SQLite file or SQLAlchemy URL (sqlite:////abs/path.db, "
        "postgresql://host/db). Default: $MASCOPE_DB or ./mascope.db.",
    ),
]
"""A string, not a Path: a Path would collapse the `//` of a URL."""
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]

MAX_COUNT = 1_000_000_000
"""Largest count or index a flag accepts: beyond it a database integer overflows."""


@contextmanager
def removed_if_failed(db: str | None) -> Iterator[None]:
    """Remove the store files (and checkpoint files) this command created if it fails.

    A run that never started must not leave an empty store behind. Only files
    that did not exist before are removed, only for a SQLite store, and only
    while the new store holds no run.
    """
    from mascope.settings import Settings

    target = Settings.load(db=db).db
    path: Path | None
    if "://" in target:
        from sqlalchemy.engine import make_url

        try:
            url = make_url(target)
        except Exception:
            path = None
        else:
            ok = url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:")
            path = Path(url.database) if ok and url.database else None
    else:
        path = Path(target).expanduser()
    before = _store_files(path)
    try:
        yield
    except Exception:
        if path is not None and path not in before and path.exists() and not _holds_runs(path):
            for f in _store_files(path) - before:  # after the check, which may add a -shm
                f.unlink(missing_ok=True)
        raise


def _holds_runs(path: Path) -> bool:
    """Whether a store file holds any run (then it is a record worth keeping)."""
    import sqlite3

    try:
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            return con.execute("SELECT 1 FROM runs LIMIT 1").fetchone() is not None
        finally:
            con.close()
    except sqlite3.Error:
        return False


def _store_files(path: Path | None) -> set[Path]:
    if path is None or not path.parent.is_dir():
        return set()
    stem = path.stem
    return {
        f
        for f in path.parent.glob(f"{glob.escape(stem)}*")
        if f.name == path.name or f.name.startswith((path.name + "-", f"{stem}.checkpoints"))
    }
