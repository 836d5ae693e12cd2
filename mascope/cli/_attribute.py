"""`mascope attribute`: who failed, and when."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console

from mascope.settings import Settings

from ._common import DbOpt, JsonOpt, err, user_errors

METHOD_HELP = (
    "all-at-once, step-by-step, binary-search, a2p or counterfactual (re-runs the team to verify)."
)


@user_errors
def attribute(
    run_ids: Annotated[
        list[str], typer.Argument(help="Failed runs to attribute (ids or unique prefixes).")
    ],
    method: Annotated[str, typer.Option("--method", help=METHOD_HELP)] = "a2p",
    model: Annotated[
        str | None,
        typer.Option(
            "--model", "-m", help="The model that attributes (default $MASCOPE_MODEL or local)."
        ),
    ] = None,
    with_ground_truth: Annotated[
        bool,
        typer.Option(
            "--with-ground-truth/--without-ground-truth",
            help="Show the attributor the correct answer.",
        ),
    ] = True,
    max_replays: Annotated[
        int, typer.Option(help="Counterfactual: most re-runs per run.", min=1, max=50)
    ] = 5,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Name the agent and the step whose mistake decided each failed run."""
    import asyncio

    from mascope.diagnosis import aattribute
    from mascope.models import get_model
    from mascope.traces import TraceStore

    settings = Settings.load(db=str(db) if db else None, model=model)
    store = TraceStore(settings.db, create=False, settings=settings)
    llm = get_model(settings.model, settings=settings)
    out = Console(highlight=False, width=None if Console().is_terminal else 200)
    results = []
    for run_id in run_ids:
        result = asyncio.run(
            aattribute(
                store,
                run_id,
                method=method,
                model=llm,
                with_ground_truth=with_ground_truth,
                max_replays=max_replays,
            )
        )
        results.append(result)
        if as_json:
            continue
        verified = (
            " (verified by replay " + (result.replay_run_id or "") + ")" if result.verified else ""
        )
        out.print(
            f"run {result.run_id}: [bold]{result.agent}[/] at step [bold]{result.step}[/]{verified} ({result.method})"
        )
        if result.reason:
            out.print(f"  why: {result.reason}", markup=False)
        if result.intervention:
            out.print(f"  fix: {result.intervention[:300]}", markup=False)
        for r in result.replays:
            out.print(
                f"  replay from step {r['step']}: {r['status']} (run {r['run_id']})", markup=False
            )
        for note in result.notes:
            err.print(f"[dim]{note}[/]")
    if as_json:
        print(
            json.dumps([{k: v for k, v in r.__dict__.items()} for r in results], ensure_ascii=False)
        )
