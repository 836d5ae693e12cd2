"""Long commands: a progress bar with an estimate on stderr, and Ctrl-C that keeps partial results.

The bar is live only on a terminal; written to a file or a pipe, stderr gets
just the bar's final line, and stdout (tables, `--json`) is never touched.
SIGINT and SIGTERM cancel the command's task; a diagnosis that catches the
cancellation returns what it has, which the command prints labelled partial
before exiting 130 (SIGINT) or 143 (SIGTERM).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Coroutine, Iterator, Sequence
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

T = TypeVar("T")


class Bar:
    """One task on a rich progress display: `advance` / `set` with a total that may grow."""

    def __init__(self, progress: Progress, task: TaskID):
        self._progress = progress
        self._task = task

    def set(self, done: int, total: int | None = None, **fields: Any) -> None:
        """Show `done` of `total` (and any extra column fields)."""
        self._progress.update(self._task, completed=done, total=total, **fields)

    def describe(self, text: str) -> None:
        """Change the bar's label."""
        self._progress.update(self._task, description=text)


@contextlib.contextmanager
def progress_bar(
    label: str, total: int | None, *, extra: Sequence[ProgressColumn] = (), **fields: Any
) -> Iterator[Bar]:
    """A bar on stderr: label, bar, n/N, elapsed, and an ETA from the pace so far."""
    columns: list[ProgressColumn] = [
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        *extra,
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    ]
    console = Console(stderr=True, highlight=False)
    with Progress(*columns, console=console, transient=False) as progress:
        yield Bar(progress, progress.add_task(label, total=total, **fields))


@contextlib.contextmanager
def lazy_progress_bar(label: str) -> Iterator[Callable[[int, int | None], None]]:
    """A bar that appears on the first update, so a command that fails its checks first prints only its error."""
    with contextlib.ExitStack() as stack:
        bar: Bar | None = None

        def update(done: int, total: int | None) -> None:
            nonlocal bar
            if bar is None:
                bar = stack.enter_context(progress_bar(label, total))
            bar.set(done, total)

        yield update


def interrupt_code(signum: int) -> int:
    """The shell's exit code for a command ended by `signum` (130 for SIGINT, 143 for SIGTERM)."""
    return 128 + signum


def run_interruptible(main: Callable[[], Coroutine[Any, Any, T]]) -> tuple[T | None, int | None]:
    """Run `main()` until it ends or SIGINT/SIGTERM arrives.

    A signal cancels the task once; if the coroutine catches the cancellation
    and returns partial results, they come back with the signal's number.
    Returns (result, None) when it ran to the end, (None, signum) when it was
    stopped with nothing to show.
    """

    async def runner() -> tuple[T | None, int | None]:
        loop = asyncio.get_running_loop()
        task = asyncio.ensure_future(main())
        got: list[int] = []

        def on_signal(signum: int) -> None:
            if not got:
                got.append(signum)
                task.cancel()

        handled = []
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(signum, on_signal, signum)
                handled.append(signum)
        try:
            result = await task
        except asyncio.CancelledError:
            return None, got[0] if got else int(signal.SIGINT)
        finally:
            for signum in handled:
                loop.remove_signal_handler(signum)
        return result, got[0] if got else None

    return asyncio.run(runner())


def stop_if_interrupted(signum: int | None, err: Console, *, shown: bool = True) -> None:
    """Exit 130/143 after an interrupted command has printed what it had (`shown`)."""
    if signum is not None:
        name = "SIGTERM" if signum == signal.SIGTERM else "Ctrl-C"
        tail = "; the results printed are partial" if shown else ""
        err.print(f"interrupted ({name}){tail}")
        raise typer.Exit(interrupt_code(signum))


def end_batch(report: Any, signum: int | None, err: Console, *, verb: str) -> None:
    """How a judge or attribute batch ends: 130/143 when interrupted, a one-line
    error when the endpoint gave out, 1 when there was work and none of it got done."""
    from mascope.errors import EndpointError

    if signum is None and report.interrupted:  # Ctrl-C stopped Ray workers, not this loop
        signum = signal.SIGINT
    stop_if_interrupted(signum, err)
    if report.stopped and report.stopped.startswith("the endpoint failed"):
        raise EndpointError(
            f"{report.stopped}; rerun the same command to continue where it stopped"
        )
    if report.nothing_done:
        done = {"judge": "judged", "attribute": "attributed"}.get(verb, verb)
        err.print(
            f"[bold red]error:[/] none of the {report.not_judged} run(s) to {verb} could be {done} "
            "(no valid answer from the model); see the reasons above or try another --model",
            soft_wrap=True,
        )
        raise typer.Exit(1)


def partial_note(done: int, total: int, what: str) -> str:
    """'partial: 3 of 10 runs' for a title."""
    return f"partial: {done} of {total} {what}"
