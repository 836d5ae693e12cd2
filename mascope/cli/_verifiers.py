"""`mascope verifiers calibrate`: each verifier's false-positive and false-negative rates."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from ._common import DbOpt, JsonOpt, err, removed_if_failed, user_errors
from ._progress import progress_bar, run_interruptible, stop_if_interrupted
from ._run import ModelOpt, _store
from ._runs import open_store

verifiers_app = typer.Typer(
    help="Measure how often a team's verifiers are wrong.",
    no_args_is_help=True,
    add_completion=False,
)


def default_out(team_file: Path) -> Path:
    """Where a team's calibration goes by default: beside the team file."""
    return team_file.with_name(f"{team_file.stem}.calibration.json")


@verifiers_app.command("calibrate")
@user_errors
def calibrate(
    team_file: Annotated[Path, typer.Argument(metavar="TEAM.yaml", help="The team to calibrate.")],
    tasks: Annotated[
        Path | None,
        typer.Option(
            "--tasks",
            help='JSONL with ground truth, one task a line: {"id": ..., "task": "...", "ground_truth": "..."}.',
        ),
    ] = None,
    from_db: Annotated[
        bool,
        typer.Option(
            "--from-db",
            help="Run nothing: label the verdicts of this team's stored runs that have a ground truth.",
        ),
    ] = False,
    samples: Annotated[
        int,
        typer.Option(
            "--samples", help="Runs of each task (more labelled candidates).", min=1, max=1000
        ),
    ] = 1,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Calibration file to write (default: TEAM.calibration.json beside the team).",
        ),
    ] = None,
    model: ModelOpt = None,
    concurrency: Annotated[int, typer.Option(help="Tasks run at once.", min=1, max=256)] = 4,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run a team over tasks with known answers and measure each verifier's error rates.

    Every candidate a verifier judged (every verdict is a step in the trace
    store) is labelled right or wrong against the task's ground truth, scored
    as the team scores its answers. Writes a calibration file keyed to the
    team, which a strategy's `penalty` and `calibration` use to choose n.
    """
    from mascope.evals import acalibrate, calibrate_runs, check_calibratable, load_tasks
    from mascope.graphs import Team, load_team_file, without_calibration

    # Every mistake is reported before a model loads or a file is written.
    if from_db == (tasks is not None):
        raise _usage("give --tasks to run the team, or --from-db to use its stored runs (not both)")
    if from_db and samples != 1:
        raise _usage("--samples runs the tasks again; it needs --tasks, not --from-db")
    spec = load_team_file(team_file)
    dataset = load_tasks(tasks) if tasks is not None else None
    check_calibratable(spec, dataset)
    target = out if out is not None else default_out(team_file)
    _check_target(target)
    report: Any = None
    if dataset is None:
        store = open_store(db)
        cal = calibrate_runs(store, without_calibration(spec), model=model)
    else:
        Team.from_spec(without_calibration(spec), model=model, source=str(team_file)).check_models()
        with removed_if_failed(db):
            store = _store(db)

        async def main() -> Any:
            total = samples * sum(t.ground_truth is not None for t in dataset)
            with progress_bar(f"{spec.name}: calibration runs", total) as bar:
                return await acalibrate(
                    store, spec, dataset, samples=samples, model=model, source=str(team_file),
                    concurrency=concurrency,
                    on_progress=lambda p: bar.set(p.done + p.skipped + p.failed, p.total),
                )  # fmt: skip

        done, signum = run_interruptible(main)
        if done is None:
            stop_if_interrupted(signum, err, shown=False)
            return
        cal, report = done
    if not cal.verifiers:
        from mascope.errors import ConfigError

        raise ConfigError(
            f"no verdict of team {spec.name!r} could be labelled (no finished run with a ground truth "
            "whose stages ran a verifier); calibrate with --tasks TASKS.jsonl that have ground_truth"
        )
    cal.write(target)
    if as_json:
        print(json.dumps({**cal.model_dump(mode="json"), "file": str(target)}))
    else:
        _table(cal, target)
    if report is not None and (report.not_run or report.pending):
        raise typer.Exit(1)


def _usage(message: str) -> Exception:
    from mascope.errors import ConfigError

    return ConfigError(message)


def _check_target(target: Path) -> None:
    """Never overwrite a file that is not a calibration (a mistyped --out)."""
    from mascope.agents import CALIBRATION_KIND
    from mascope.errors import ConfigError

    if target.is_dir():
        raise ConfigError(
            f"--out {target} is a folder; give a file name such as team.calibration.json"
        )
    if not target.parent.is_dir():
        raise ConfigError(f"--out {target}: folder {target.parent} does not exist")
    if not os.access(target.parent, os.W_OK):
        raise ConfigError(
            f"--out {target}: folder {target.parent} is not writable; choose another --out"
        )
    if target.exists():
        try:
            kind = json.loads(target.read_text()).get("kind")
        except (OSError, ValueError, AttributeError):
            kind = None
        if kind != CALIBRATION_KIND:
            raise ConfigError(
                f"--out {target} exists and is not a calibration file; choose another path"
            )


def _table(cal: Any, target: Path) -> None:
    out = Console(highlight=False, width=None if Console().is_terminal else 200)
    table = Table(
        title=f"{cal.team} verifiers over {cal.runs} runs of {cal.tasks} tasks",
        title_justify="left",
        box=None,
        header_style="bold",
    )
    for column in (
        "verifier",
        "judged",
        "right",
        "wrong",
        "FPR [95% CI]",
        "FNR [95% CI]",
        "base rate",
    ):
        table.add_column(column, justify="left" if column == "verifier" else "right")
    notes = []
    for name, r in cal.verifiers.items():
        table.add_row(
            name, str(r.candidates), str(r.right), str(r.wrong),
            _rate(r.accepted_wrong, r.fpr, r.fpr_interval), _rate(r.rejected_right, r.fnr, r.fnr_interval),
            _rate(r.right, r.base_rate, r.base_rate_interval),
        )  # fmt: skip
        why = r.insufficient()
        if why is not None:
            notes.append(
                f"{name}: too few labelled candidates to drive a stopping rule ({why}); calibrate on more tasks"
            )
    out.print(table)
    for note in notes:
        out.print(note, markup=False)
    out.print(f"wrote {target}", markup=False)


def _rate(k: int, value: float | None, interval: tuple[float, float] | None) -> str:
    if value is None or interval is None:
        return "-"
    return f"{value:.2f} [{interval[0]:.2f}, {interval[1]:.2f}] ({k})"
