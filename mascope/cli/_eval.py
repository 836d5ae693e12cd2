"""`mascope eval ...`: measure diagnosis against public benchmarks."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from mascope.settings import Settings

from ._common import JsonOpt, err, user_errors

eval_app = typer.Typer(
    help="Measure the judge and attribution on public benchmarks.",
    no_args_is_help=True,
    add_completion=False,
)


def _fmt(x: float | None, ci: tuple[float, float] | None = None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    text = f"{x:.2f}"
    if ci and not any(math.isnan(v) for v in ci):
        text += f" [{ci[0]:.2f}, {ci[1]:.2f}]"
    return text


@eval_app.command("mast")
@user_errors
def mast(
    file: Annotated[Path, typer.Argument(help="MAD human-labelled records (JSON).")],
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="The judge's model (default $MASCOPE_MODEL or local)."),
    ] = None,
    samples: Annotated[
        int, typer.Option(help="Self-consistency samples per window.", min=1, max=15)
    ] = 1,
    few_shot: Annotated[
        bool, typer.Option("--few-shot", help="Show the judge a worked example.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Agreement of the judge with human MAST labels, beside human-human agreement and published figures."""
    import asyncio

    from mascope.diagnosis import JudgeConfig
    from mascope.diagnosis._eval_mast import PUBLISHED, aevaluate_mast, eval_dict
    from mascope.errors import ConfigError
    from mascope.models import get_model

    if not file.is_file():
        raise ConfigError(f"{file} does not exist")
    settings = Settings.load(model=model)
    llm = get_model(settings.model, settings=settings)
    config = JudgeConfig(model=settings.model, samples=samples, few_shot=few_shot)

    def tick(i: int, n: int) -> None:
        if not as_json:
            err.print(f"[dim]judged {i}/{n}[/]")

    result = asyncio.run(aevaluate_mast(file, config, model=llm, on_trace=tick))
    if as_json:
        print(json.dumps(eval_dict(result)))
        return
    out = Console(highlight=False, width=None if Console().is_terminal else 200)
    pooled = result.pooled
    table = Table(
        title=f"{llm.model_id} vs human MAST labels ({result.traces} traces, {pooled.n} trace-mode pairs; 95% intervals)",
        title_justify="left",
        header_style="bold",
    )
    for col in ("who", "accuracy", "precision", "recall", "F1", "kappa"):
        table.add_column(col)
    table.add_row(
        f"{llm.model_id} (this run)", _fmt(pooled.accuracy, pooled.accuracy_ci), _fmt(pooled.precision, pooled.precision_ci),
        _fmt(pooled.recall, pooled.recall_ci), _fmt(pooled.f1), _fmt(pooled.kappa, pooled.kappa_ci),
    )  # fmt: skip
    table.add_row("humans among themselves (this file)", "", "", "", "", _fmt(result.humans_kappa))
    for who, figures in PUBLISHED.items():
        table.add_row(
            who, *(_fmt(figures.get(k)) for k in ("accuracy", "precision", "recall", "f1", "kappa"))
        )
    out.print(table)
    modes = Table(title="per mode", title_justify="left", header_style="bold", box=None)
    for col in ("mode", "n", "human yes", "judge yes", "accuracy", "F1", "kappa"):
        modes.add_column(col)
    for mode, a in result.per_mode.items():
        modes.add_row(
            mode,
            str(a.n),
            str(a.tp + a.fn),
            str(a.tp + a.fp),
            _fmt(a.accuracy),
            _fmt(a.f1),
            _fmt(a.kappa),
        )
    out.print(modes)
    if result.not_judged:
        out.print(
            f"[yellow]{len(result.not_judged)} trace(s) not judged (invalid answers after a repair)[/]"
        )
