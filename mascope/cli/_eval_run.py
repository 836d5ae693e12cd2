"""`mascope eval run`: a team over a dataset of tasks, with a success rate and its interval."""

from __future__ import annotations

import json
import math
import signal
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import TextColumn
from rich.table import Table

from ._common import DbOpt, JsonOpt, err, removed_if_failed, user_errors
from ._progress import progress_bar, run_interruptible, stop_if_interrupted
from ._run import ModelOpt, _store
from ._workers import RayAddressOpt, WorkersOpt, ray_workers


@user_errors
def eval_run(
    team_file: Annotated[Path, typer.Argument(metavar="TEAM.yaml", help="The team to evaluate.")],
    tasks: Annotated[
        Path,
        typer.Option(
            "--tasks",
            help='JSONL, one task a line: {"id": ..., "task": "...", "ground_truth": "..."}.',
        ),
    ],
    model: ModelOpt = None,
    concurrency: Annotated[
        int,
        typer.Option(help="Tasks run at once (by each worker, with --workers).", min=1, max=256),
    ] = 4,
    workers: WorkersOpt = None,
    ray_address: RayAddressOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run a team on every task of a dataset and report its success rate; resumable.

    Every task is a recorded run. Rerunning the same command (same team, model
    and tasks) continues a stopped eval without running finished tasks again,
    and other processes running it at the same time share the tasks.
    """
    from mascope.evals import aeval_run, eval_on_ray, load_tasks
    from mascope.graphs import Team, load_team_file

    # Every mistake in the flags, the team or the task file is reported before anything is created.
    workers = ray_workers(workers, ray_address)
    spec = load_team_file(team_file)
    dataset = load_tasks(tasks)
    Team.from_spec(spec, model=model, source=str(team_file)).check_models()
    with removed_if_failed(db):
        store = _store(db)
    if workers is not None:
        with progress_bar(f"{spec.name}: {workers} Ray worker(s) at work", None):
            done = eval_on_ray(
                store, spec, dataset, workers=workers, ray_address=ray_address, model=model,
                source=str(team_file), concurrency=concurrency,
            )  # fmt: skip
        interrupted = done.batch is not None and done.batch.interrupted
        _finish(done, store, as_json, signal.SIGINT if interrupted else None)
        return
    extra = [TextColumn("[dim]{task.fields[flight]} running[/]")]

    async def main() -> Any:
        with progress_bar(f"{spec.name}: tasks", len(dataset), extra=extra, flight=0) as bar:

            def update(p: Any) -> None:
                bar.set(p.done + p.skipped + p.failed, p.total, flight=p.in_flight)

            return await aeval_run(
                store, spec, dataset, model=model, source=str(team_file),
                concurrency=concurrency, on_progress=update,
            )  # fmt: skip

    report, signum = run_interruptible(main)
    if report is None:
        stop_if_interrupted(signum, err, shown=False)
        return
    _finish(report, store, as_json, signum)


def _finish(report: Any, store: Any, as_json: bool, signum: int | None) -> None:
    if as_json:
        print(json.dumps({**report.as_dict(), "db": str(store.path or store.url)}))
    else:
        _summary(report, store)
    stop_if_interrupted(signum, err)
    if report.not_run or report.pending:
        raise typer.Exit(1)


def _summary(report: Any, store: Any) -> None:
    out = Console(highlight=False, width=None if Console().is_terminal else 200)
    table = Table(
        title=f"{report.team} over {report.total} tasks (job {report.job_id})",
        title_justify="left",
        box=None,
        header_style="bold",
    )
    # Coverage and risk matter once runs may abstain; without abstentions they are 1 and 1 - rate.
    selective = report.abstained > 0
    columns = ["runs", "succeeded", "success rate [95% CI]"]
    columns += ["abstained", "coverage", "risk"] if selective else []
    for column in (*columns, "tokens in / out", "cost"):
        table.add_column(column, justify="right")
    rate = "-"
    if report.answered:
        low, high = report.interval
        rate = f"{report.success_rate:.2f} [{low:.2f}, {high:.2f}]"
    cost = "unknown" if report.cost_usd is None else f"${report.cost_usd:.4f}"
    cells = [str(report.runs), str(report.succeeded), rate]
    if selective:
        risk = f"{report.risk:.2f}" if report.answered else "-"
        cells += [str(report.abstained), f"{report.coverage:.2f}", risk]
    table.add_row(*cells, f"{report.input_tokens:,} / {report.output_tokens:,}", cost)
    out.print(table)
    statuses = ", ".join(f"{n} {s}" for s, n in sorted(report.statuses.items()))
    b = report.batch
    pace = ""
    if b and b.judged and b.elapsed_s > 0 and not math.isnan(b.elapsed_s):
        pace = f" ({b.judged / b.elapsed_s:.1f} tasks/s)"
    out.print(
        f"runs: {statuses or 'none'}; {b.judged if b else 0} run now in {b.elapsed_s if b else 0:.1f}s{pace}"
    )
    if b and b.skipped:
        out.print(f"{b.skipped} task(s) already run under this eval were not run again")
    for key, why in list(report.not_run.items())[:5]:
        out.print(f"[red]not run[/] {key}: {why}", markup=True)
    if report.pending:
        out.print(
            f"partial: {report.pending} task(s) not run yet; rerun the same command to continue"
        )
    where = "" if str(store.path) == "mascope.db" else f" --db {store.path or store.url}"
    out.print(f"next:    mascope runs list --team {report.team}{where}", markup=False)


@user_errors
def eval_tasks(
    suite: Annotated[
        str,
        typer.Argument(
            metavar="SUITE",
            help="humaneval (OpenAI's HumanEval, hidden tests as ground truth) or words (generated word problems).",
        ),
    ],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="The JSONL file to write (default: stdout).")
    ] = None,
    limit: Annotated[
        int | None, typer.Option(help="humaneval: at most this many problems.", min=1)
    ] = None,
    start: Annotated[int, typer.Option(help="humaneval: the first problem's index.", min=0)] = 0,
    count: Annotated[int, typer.Option(help="words: how many problems.", min=1)] = 30,
    steps: Annotated[
        int, typer.Option(help="words: arithmetic steps per problem.", min=1, max=8)
    ] = 2,
    seed: Annotated[int, typer.Option(help="words: the generator's seed.")] = 0,
) -> None:
    """Write a task set for `mascope eval run`: HumanEval problems or word problems.

    HumanEval tasks name their problem as ground truth; score them with
    `scoring: mascope.evals:humaneval_passes`, which runs the official tests
    (see mascope/examples/humaneval_coder.yaml).
    """
    from mascope._files import write_atomically
    from mascope.errors import ConfigError
    from mascope.evals import humaneval_tasks, word_problems

    if suite == "humaneval":
        rows = humaneval_tasks(limit, start)
    elif suite == "words":
        rows = word_problems(count, seed=seed, steps=steps)
    else:
        raise ConfigError(f"unknown task suite {suite!r}; use humaneval or words")
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    if out is None:
        typer.echo(text, nl=False)
        return
    write_atomically(out, lambda fh: fh.write(text))
    err.print(f"{len(rows)} task(s) written to {out}")
