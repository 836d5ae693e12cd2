"""`mascope attribute`: who failed, and when."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console

from mascope.settings import Settings

from ._common import DbOpt, JsonOpt, SafeConsole, err, user_errors
from ._progress import (
    end_batch,
    lazy_progress_bar,
    progress_bar,
    run_interruptible,
    stop_if_interrupted,
)
from ._workers import RayAddressOpt, WorkersOpt, ray_workers

METHOD_HELP = (
    "all-at-once, step-by-step, binary-search, a2p, counterfactual (re-runs the team to verify) "
    "or reroll (re-executes the run from probed steps and measures where success drops; no model)."
)


@user_errors
def attribute(
    run_ids: Annotated[
        list[str] | None, typer.Argument(help="Failed runs to attribute (ids or unique prefixes).")
    ] = None,
    all_runs: Annotated[
        bool, typer.Option("--all", help="Attribute every failed run (a resumable batch job).")
    ] = False,
    team: Annotated[str | None, typer.Option(help="With --all: only runs of this team.")] = None,
    concurrency: Annotated[
        int,
        typer.Option(
            help="Batch: runs attributed at once; reroll: re-rolls run at once.", min=1, max=256
        ),
    ] = 4,
    rpm: Annotated[
        float | None, typer.Option(help="Batch: most runs started per minute.", min=0.1)
    ] = None,
    max_cost: Annotated[
        float | None,
        typer.Option(
            "--max-cost", help="Batch: stop starting runs once this many USD are spent.", min=0
        ),
    ] = None,
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
        int | None,
        typer.Option(
            help="Most re-runs per run: counterfactual (default 5), reroll (default 60).",
            min=1,
            max=100_000,
        ),
    ] = None,
    samples: Annotated[
        int | None,
        typer.Option(help="Reroll: re-rolls that decide a step (default 12).", min=1, max=10_000),
    ] = None,
    temperature: Annotated[
        float | None,
        typer.Option(
            help="Reroll: sample the team's model agents at this temperature (needed at temperature 0).",
            min=0,
            max=2,
        ),
    ] = None,
    max_seconds: Annotated[
        float | None,
        typer.Option(
            help="Reroll: start no new re-roll after this many seconds (then report what was measured).",
            min=0.001,
        ),
    ] = None,
    workers: WorkersOpt = None,
    ray_address: RayAddressOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Name the agent and the step whose mistake decided each failed run."""

    from mascope.diagnosis import aattribute
    from mascope.errors import ConfigError
    from mascope.models import get_model
    from mascope.traces import TraceStore

    settings = Settings.load(db=db or None, model=model)
    workers = ray_workers(workers, ray_address)
    store = TraceStore(settings.db, create=False, settings=settings, read_only=False)
    out = SafeConsole(highlight=False, width=None if Console().is_terminal else 200)
    if not run_ids and not all_runs:
        raise ConfigError("name runs to attribute, or pass --all to attribute every failed run")
    if method == "reroll":
        if all_runs or len(run_ids or []) > 1:
            raise ConfigError("reroll attributes one run at a time; name a single run id")
        from ._reroll import print_reroll

        async def reroll() -> Any:
            with lazy_progress_bar("re-rolling") as update:
                return await aattribute(
                    store, (run_ids or [""])[0], method="reroll", max_replays=max_replays,
                    samples=samples, temperature=temperature, concurrency=concurrency,
                    max_seconds=max_seconds, on_replay=update,
                )  # fmt: skip

        # A killed or interrupted search loses nothing: its finished re-rolls are
        # child runs, counted again (not redone) when it is started again.
        found, signum = run_interruptible(reroll)
        if found is None:
            stop_if_interrupted(signum, err, shown=False)
            return
        if as_json:
            print(json.dumps(found.__dict__, ensure_ascii=False))
        else:
            print_reroll(out, found)
        return
    llm = get_model(settings.model, settings=settings)
    if all_runs or len(run_ids or []) > 1:
        ids = [store.resolve_run_id(r) for r in run_ids or []]
        if all_runs:
            ids += store.all_run_ids(status="failed", team=team)
        _batch(
            store,
            ids,
            method=method,
            llm=llm,
            with_ground_truth=with_ground_truth,
            max_replays=max_replays or 5,
            concurrency=concurrency,
            rpm=rpm,
            max_cost=max_cost,
            as_json=as_json,
            out=out,
            workers=workers,
            ray_address=ray_address,
            model_ref=settings.model,
        )
        return
    results = []
    for run_id in run_ids or []:

        async def one(run_id: str = run_id) -> Any:
            # No estimate is possible inside one attribution: the bar shows it is alive.
            with progress_bar(f"attributing {run_id} ({method})", None):
                return await aattribute(
                    store,
                    run_id,
                    method=method,
                    model=llm,
                    with_ground_truth=with_ground_truth,
                    max_replays=max_replays,
                )

        result, signum = run_interruptible(one)
        if result is None:
            stop_if_interrupted(signum, err, shown=False)
            return
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


def _batch(store: Any, ids: list[str], *, method: str, llm: Any, with_ground_truth: bool, max_replays: int,
           concurrency: int, rpm: float | None, max_cost: float | None, as_json: bool, out: Console,
           workers: int | None = None, ray_address: str | None = None, model_ref: str = "") -> None:  # fmt: skip

    from mascope.diagnosis import aattribute_many, attribute_on_ray

    async def main() -> Any:
        with progress_bar("attributing", len(ids)) as bar:
            return await aattribute_many(
                store,
                ids,
                method=method,
                model=llm,
                with_ground_truth=with_ground_truth,
                max_replays=max_replays,
                concurrency=concurrency,
                rpm=rpm,
                max_cost=max_cost,
                on_progress=lambda p: bar.set(p.done + p.skipped + p.failed, p.total),
                model_ref=model_ref or None,
            )

    report: Any
    signum: int | None = None
    if workers is not None:
        with progress_bar(f"attributing on {workers} Ray worker(s)", None):
            report = attribute_on_ray(
                store, ids, method=method, model=model_ref, model_id=llm.model_id, with_ground_truth=with_ground_truth,
                max_replays=max_replays, workers=workers, ray_address=ray_address,
                concurrency=concurrency, rpm=rpm, max_cost=max_cost,
            )  # fmt: skip
    else:
        report, signum = run_interruptible(main)
    if report is None:
        stop_if_interrupted(signum, err, shown=False)
        return
    if as_json:
        print(json.dumps({"job": report.job_id, "total": report.total, "attributed": report.judged, "skipped": report.skipped,
                          "not_attributed": report.not_judged, "running": report.running, "elsewhere": report.elsewhere,
                          "cost_usd": report.cost_usd if report.cost_known else None, "interrupted": report.interrupted,
                          "stopped": report.stopped, "blamed_agents": dict(report.modes), "failures": report.failures}))  # fmt: skip
    else:
        out.print(
            f"job {report.job_id}: {report.judged} attributed, {report.skipped} already attributed, {report.not_judged} not attributed"
        )
        if report.interrupted:
            out.print(
                f"partial: interrupted after {report.judged + report.not_judged} of {report.total} runs; rerun the same command to continue"
            )
        elif report.stopped:
            out.print(f"stopped early: {report.stopped}", markup=False)
        if report.running:
            out.print(
                f"{report.running} run(s) still running, left for later: rerun the same command once they finish"
            )
        if report.elsewhere:
            out.print(f"{report.elsewhere} run(s) being attributed by another worker, left to it")
        for run_id, why in list(report.failures.items())[:5]:
            out.print(f"not attributed {run_id}: {why}", markup=False)
        for agent, count in report.modes.most_common(10):
            out.print(f"  {agent}: blamed in {count} run(s)", markup=False)
    end_batch(report, signum, err, verb="attribute")
