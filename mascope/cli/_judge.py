"""`mascope judge`: label stored runs with the MAST judge, in batches."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import TextColumn
from rich.table import Table

from mascope.errors import ConfigError
from mascope.settings import Settings

from ._common import DbOpt, JsonOpt, SafeConsole, err, user_errors
from ._progress import end_batch, progress_bar, run_interruptible, stop_if_interrupted
from ._workers import RayAddressOpt, WorkersOpt, ray_workers


@user_errors
def judge(
    run_ids: Annotated[
        list[str] | None, typer.Argument(help="Runs to judge (ids or unique prefixes).")
    ] = None,
    all_runs: Annotated[
        bool, typer.Option("--all", help="Judge every run matching --status/--team.")
    ] = False,
    status: Annotated[
        str | None, typer.Option(help="With --all: only runs with this status (e.g. failed).")
    ] = None,
    team: Annotated[str | None, typer.Option(help="With --all: only runs of this team.")] = None,
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="The judge's model (default $MASCOPE_MODEL or local)."),
    ] = None,
    concurrency: Annotated[int, typer.Option(help="Runs judged at once.", min=1, max=256)] = 4,
    rpm: Annotated[
        float | None, typer.Option(help="Most model requests per minute.", min=0.1)
    ] = None,
    max_cost: Annotated[
        float | None,
        typer.Option(
            "--max-cost", help="Stop starting new runs once this many USD are spent.", min=0
        ),
    ] = None,
    samples: Annotated[
        int,
        typer.Option(
            help="Self-consistency: judge each window this many times, majority per mode.",
            min=1,
            max=15,
        ),
    ] = 1,
    few_shot: Annotated[
        bool, typer.Option("--few-shot", help="Show the judge a worked example.")
    ] = False,
    min_agreement: Annotated[
        float | None,
        typer.Option(
            "--min-agreement",
            help="With --samples: the share of samples that must say a mode is present "
            "(with evidence that checks out); below it the mode is uncertain, not present. "
            "Default 0.6, a strict majority of up to five samples.",
            min=0.01,
            max=1.0,
        ),
    ] = None,
    workers: WorkersOpt = None,
    ray_address: RayAddressOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Label runs with failure modes: rule detectors, then the LLM judge; resumable and idempotent."""

    from mascope.diagnosis import MIN_AGREEMENT, JudgeConfig
    from mascope.models import get_model
    from mascope.traces import TraceStore

    settings = Settings.load(db=db or None, model=model)
    workers = ray_workers(workers, ray_address)
    if not run_ids and not all_runs:
        raise ConfigError(
            "name runs to judge, or pass --all (with --status failed to judge only failures)"
        )
    store = TraceStore(settings.db, create=False, settings=settings, read_only=False)
    store.recover_interrupted()
    ids = [store.resolve_run_id(r) for r in run_ids or []]
    if all_runs:
        ids += store.all_run_ids(status=status, team=team)
    if not ids:
        err.print("no runs to judge")
        return
    config = JudgeConfig(
        model=settings.model,
        samples=samples,
        few_shot=few_shot,
        min_agreement=MIN_AGREEMENT if min_agreement is None else min_agreement,
    )
    llm = get_model(settings.model, settings=settings)
    if max_cost is not None and llm.prices.price(llm.name) is None and llm.backend == "openai":
        err.print(
            f"[yellow]warning:[/] no price is known for {llm.model_id}, so --max-cost cannot stop this job (set MASCOPE_PRICES)"
        )
    report: Any
    signum: int | None = None
    if workers is not None:
        from mascope.diagnosis import judge_on_ray

        with progress_bar(f"judging on {workers} Ray worker(s)", None):
            report = judge_on_ray(
                store,
                ids,
                config=config,
                workers=workers,
                ray_address=ray_address,
                concurrency=concurrency,
                rpm=rpm,
                max_cost=max_cost,
            )
    else:
        report, signum = run_interruptible(
            lambda: _with_progress(
                store, ids, config, llm, concurrency=concurrency, rpm=rpm, max_cost=max_cost
            )
        )
    if report is None:
        stop_if_interrupted(signum, err, shown=False)
        return
    if as_json:
        print(json.dumps({
            "job": report.job_id, "total": report.total, "judged": report.judged, "skipped": report.skipped,
            "not_judged": report.not_judged, "running": report.running, "elsewhere": report.elsewhere,
            "cost_usd": report.cost_usd if report.cost_known else None, "interrupted": report.interrupted,
            "stopped": report.stopped, "modes": dict(report.modes), "uncertain": dict(report.uncertain), "failures": report.failures, "elapsed_s": round(report.elapsed_s, 3),
        }))  # fmt: skip
    else:
        _summary(report)
    end_batch(report, signum, err, verb="judge")


async def _with_progress(
    store: Any,
    ids: list[str],
    config: Any,
    llm: Any,
    *,
    concurrency: int,
    rpm: float | None,
    max_cost: float | None,
) -> Any:
    from mascope.diagnosis import ajudge_many
    from mascope.jobs import BatchProgress

    if len(ids) == 1:  # one run: show its windows, the only steps there are
        with progress_bar(f"judging {ids[0]}: window", None) as bar:
            return await ajudge_many(
                store, ids, config=config, concurrency=1, rpm=rpm, max_cost=max_cost, model=llm,
                on_window=lambda _run, done, total: bar.set(done, total),
            )  # fmt: skip
    extra = [
        TextColumn("{task.fields[spend]}"),
        TextColumn("[dim]{task.fields[flight]} in flight[/]"),
    ]
    with progress_bar("judging", len(ids), extra=extra, spend="$0.0000", flight=0) as bar:

        def update(p: BatchProgress) -> None:
            bar.set(
                p.done + p.skipped + p.failed,
                p.total,
                spend=f"${p.cost_usd:.4f}",
                flight=p.in_flight,
            )

        return await ajudge_many(
            store,
            ids,
            config=config,
            concurrency=concurrency,
            rpm=rpm,
            max_cost=max_cost,
            model=llm,
            on_progress=update,
        )


def _summary(report: Any) -> None:
    from mascope.taxonomy import MAST

    out = SafeConsole(highlight=False, width=None if Console().is_terminal else 200)
    cost = f"${report.cost_usd:.4f}" if report.cost_known else "unknown (no price for this model)"
    out.print(
        f"job {report.job_id}: {report.judged} judged, {report.skipped} already judged, {report.not_judged} not judged; spent {cost} in {report.elapsed_s:.1f}s"
    )
    if report.interrupted:
        out.print(
            f"partial: interrupted after {report.judged + report.not_judged} of {report.total} runs; rerun the same command to continue"
        )
    if report.running:
        out.print(
            f"{report.running} run(s) still running, left for later: rerun the same command once they finish"
        )
    if report.elsewhere:
        out.print(f"{report.elsewhere} run(s) being judged by another worker, left to it")
    if report.stopped and not report.interrupted:
        out.print(f"[yellow]stopped early:[/] {report.stopped}")
    for run_id, why in list(report.failures.items())[:5]:
        out.print(f"[red]not judged[/] {run_id}: {why}", markup=True)
    if report.modes or report.uncertain:
        table = Table(
            title="failure modes found (by the LLM judge, in the runs judged now)",
            title_justify="left",
            box=None,
            header_style="bold",
        )
        table.add_column("mode")
        table.add_column("name")
        table.add_column("present in", justify="right")
        table.add_column("uncertain in", justify="right")
        for m in MAST.modes:
            if report.modes.get(m.id) or report.uncertain.get(m.id):
                table.add_row(
                    m.id, m.name, str(report.modes.get(m.id, 0)), str(report.uncertain.get(m.id, 0))
                )
        out.print(table)
        if report.uncertain:
            out.print(
                "uncertain: the judge said present, but the steps or quotes it cited do not show it "
                "(or its samples disagreed); not counted as present (see `mascope runs show RUN`)"
            )
