"""`mascope eval ...`: measure diagnosis against public benchmarks."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from mascope.settings import Settings

from ._common import MAX_COUNT, JsonOpt, err, user_errors
from ._progress import partial_note, progress_bar, run_interruptible, stop_if_interrupted

eval_app = typer.Typer(
    help="Run a team over a task set (eval run, eval tasks); measure the judge and attribution on public benchmarks.",
    no_args_is_help=True,
    add_completion=False,
)


MethodModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model", "-m", help="The model for the LLM methods (default $MASCOPE_MODEL or local)."
    ),
]


def _ended_early_or_json(result: Any, signum: int | None, as_json: bool) -> bool:
    """Stop an interrupted evaluation with nothing to show, or print its JSON; True if done."""
    if result is None:
        stop_if_interrupted(signum, err, shown=False)
        return True
    if as_json:
        print(json.dumps(result.as_dict()))
        stop_if_interrupted(signum, err)
        return True
    return False


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

    from mascope.diagnosis import JudgeConfig
    from mascope.errors import ConfigError
    from mascope.evals import MAST_PUBLISHED, aevaluate_mast, mast_eval_dict
    from mascope.models import get_model

    if not file.is_file():
        raise ConfigError(f"{file} does not exist")
    settings = Settings.load(model=model)
    llm = get_model(settings.model, settings=settings)
    config = JudgeConfig(model=settings.model, samples=samples, few_shot=few_shot)

    async def main() -> Any:
        with progress_bar("judging traces", None) as bar:
            return await aevaluate_mast(
                file, config, model=llm, on_trace=lambda i, n: bar.set(i, n)
            )

    result, signum = run_interruptible(main)
    if result is None:
        stop_if_interrupted(signum, err, shown=False)
        return
    if as_json:
        print(
            json.dumps(
                {**mast_eval_dict(result), "done": result.done, "interrupted": result.interrupted}
            )
        )
        stop_if_interrupted(signum, err)
        return
    out = Console(highlight=False, width=None if Console().is_terminal else 200)
    pooled = result.pooled
    partial = (
        f"{partial_note(result.done, result.traces, 'traces')}; " if result.interrupted else ""
    )
    table = Table(
        title=f"{partial}{llm.model_id} vs human MAST labels ({result.done} traces, {pooled.n} trace-mode pairs; 95% intervals)",
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
    for who, figures in MAST_PUBLISHED.items():
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
    stop_if_interrupted(signum, err)


@eval_app.command("whowhen")
@user_errors
def whowhen(
    folder: Annotated[
        Path,
        typer.Argument(help="The Who&When folder (with Algorithm-Generated/ and Hand-Crafted/)."),
    ],
    subset: Annotated[
        str, typer.Option(help="algorithm-generated or hand-crafted.")
    ] = "algorithm-generated",
    method: Annotated[
        str, typer.Option(help="all-at-once, step-by-step, binary-search or a2p.")
    ] = "all-at-once",
    model: Annotated[
        str | None,
        typer.Option(
            "--model", "-m", help="The attributing model (default $MASCOPE_MODEL or local)."
        ),
    ] = None,
    with_ground_truth: Annotated[
        bool, typer.Option("--with-ground-truth/--without-ground-truth")
    ] = True,
    limit: Annotated[
        int | None,
        typer.Option(help="Only the first N runs (by file number).", min=1, max=MAX_COUNT),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Attribution accuracy on Who&When, beside trivial baselines and published numbers."""

    from mascope.errors import ConfigError
    from mascope.evals import WHOWHEN_PUBLISHED, aevaluate_whowhen
    from mascope.models import get_model

    if method == "counterfactual":
        raise ConfigError(
            "Who&When runs are imported and cannot be re-run; use a2p (what counterfactual falls back to)"
        )
    settings = Settings.load(model=model)
    llm = get_model(settings.model, settings=settings)

    async def main() -> Any:
        with progress_bar("attributing runs", None) as bar:
            return await aevaluate_whowhen(
                folder,
                subset=subset,
                method=method,
                model=llm,
                with_ground_truth=with_ground_truth,
                limit=limit,
                on_run=lambda i, n: bar.set(i, n),
            )

    r, signum = run_interruptible(main)
    if r is None:
        stop_if_interrupted(signum, err, shown=False)
        return
    if as_json:
        print(json.dumps({"done": r.done, "total": r.total, "interrupted": r.interrupted,
            "subset": r.subset, "method": r.method, "model": r.model, "with_ground_truth": r.with_ground_truth,
            "scores": r.scores.as_dict(), "always_step_0": r.always_step_0.as_dict(),
            "most_frequent_agent": {"agent": r.most_frequent_agent[0], **r.most_frequent_agent[1].as_dict()},
            "published": {k: v[subset] for k, v in WHOWHEN_PUBLISHED.items()}, "failures": r.failures,
        }))  # fmt: skip
        stop_if_interrupted(signum, err)
        return
    s = r.scores
    out = Console(highlight=False, width=None if Console().is_terminal else 200)
    truth = "with" if with_ground_truth else "without"
    partial = f"{partial_note(r.done, r.total, 'runs')}; " if r.interrupted else ""
    table = Table(
        title=f"{partial}Who&When {subset}: {s.n} runs, {truth} the ground truth (%, 95% Wilson intervals)",
        title_justify="left",
        header_style="bold",
    )
    for col in (
        "who",
        "step (exact)",
        "step (substring, original script)",
        "step +-1",
        "step +-3",
        "agent",
    ):
        table.add_column(col)

    from mascope.diagnosis import wilson

    def pct(hits: int, sc: Any) -> str:
        low, high = wilson(hits, sc.n)
        return f"{100 * hits / sc.n:.1f} [{100 * low:.0f}, {100 * high:.0f}]" if sc.n else "-"

    table.add_row(
        f"{method}, {r.model}",
        pct(s.step_exact, s),
        pct(s.step_substring, s),
        pct(s.step_within_1, s),
        pct(s.step_within_3, s),
        pct(s.agent, s),
    )
    z = r.always_step_0
    table.add_row(
        "always step 0",
        pct(z.step_exact, z),
        pct(z.step_substring, z),
        pct(z.step_within_1, z),
        pct(z.step_within_3, z),
        "",
    )
    name, f = r.most_frequent_agent
    table.add_row(f"always {name}", "", "", "", "", pct(f.agent, f))
    for who, figures in WHOWHEN_PUBLISHED.items():
        step, agent = figures[subset]
        table.add_row(f"{who} (published)", f"{step:.1f}", "", "", "", f"{agent:.1f}")
    out.print(table)
    if r.failures:
        out.print(
            f"[yellow]{len(r.failures)} run(s) could not be attributed (invalid answers after a repair); scored as misses[/]"
        )
    stop_if_interrupted(signum, err)


@eval_app.command("planted")
@user_errors
def planted(
    methods: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated: reroll, counterfactual+reference, counterfactual, a2p, "
            "all-at-once, step-by-step, binary-search, rules, judge; or all. Default: the methods "
            "that need no LLM (counterfactual+reference, rules; and reroll with --fault-rate)."
        ),
    ] = None,
    model: MethodModelOpt = None,
    limit: Annotated[
        int | None,
        typer.Option(
            help="At most N cases, taking every team shape and fault in turn.", min=1, max=MAX_COUNT
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the generated tasks.")] = 0,
    max_replays: Annotated[
        int, typer.Option(help="Counterfactual: most re-runs per failed run.", min=1, max=50)
    ] = 5,
    with_ground_truth: Annotated[
        bool, typer.Option("--with-ground-truth/--without-ground-truth")
    ] = True,
    keep: Annotated[
        str | None,  # a str, like --db: a Path would mangle a URL's `//`
        typer.Option(
            "--keep", help="Keep the runs in this store, a path or URL (default: a temporary one)."
        ),
    ] = None,
    fault_rate: Annotated[
        float | None,
        typer.Option(
            "--fault-rate",
            help="Each fault fires with this probability each time its turn runs (default: always).",
        ),
    ] = None,
    samples: Annotated[
        int | None, typer.Option(help="Reroll: re-rolls that decide a step (default 12).", min=1)
    ] = None,
    reroll_max_replays: Annotated[
        int | None, typer.Option(help="Reroll: most re-rolls per failed run (default 60).", min=1)
    ] = None,
    concurrency: Annotated[int, typer.Option(help="Reroll: re-rolls run at once.", min=1)] = 4,
    family: Annotated[
        str,
        typer.Option(
            help="function: teams of deterministic function agents (132 cases); embedded: teams of "
            "embedded-model agents on generated arithmetic, one agent's turn corrupted with the fault "
            "rate (default 0.5; 60 cases unless --limit)."
        ),
    ] = "function",
    as_json: JsonOpt = False,
) -> None:
    """Attribution and failure labelling scored against faults planted in working teams."""

    from mascope.errors import ConfigError, did_you_mean
    from mascope.evals import (
        EMBEDDED_FAULT_RATE,
        NEEDS_MODEL,
        PLANTED_FAMILIES,
        PLANTED_METHODS,
        aevaluate_planted,
        planted_methods,
    )
    from mascope.models import get_model

    if family not in PLANTED_FAMILIES:  # before anything loads or runs
        raise ConfigError(
            f"unknown --family {family!r}{did_you_mean(family, PLANTED_FAMILIES)}; choose from {', '.join(PLANTED_FAMILIES)}"
        )
    if fault_rate is not None and not 0 < fault_rate < 1:
        raise ConfigError(f"--fault-rate must be above 0 and below 1 (got {fault_rate:g})")
    chosen = planted_methods(methods, stochastic=fault_rate is not None or family == "embedded")
    if not methods:
        rest = ",".join(m for m in PLANTED_METHODS if m not in chosen and m != "reroll")
        err.print(
            f"[dim]running the methods that need no LLM ({', '.join(chosen)}); for the LLM methods too pass "
            f"--methods all, or a list such as --methods {rest}[/]",
            soft_wrap=True,
        )
    llm = None
    if any(m in NEEDS_MODEL for m in chosen):
        settings = Settings.load(model=model)
        llm = get_model(settings.model, settings=settings)

    async def main() -> Any:
        with progress_bar("planted cases", None) as bar:
            return await aevaluate_planted(
                methods=chosen, model=llm, limit=limit, seed=seed, max_replays=max_replays,
                with_ground_truth=with_ground_truth, db=keep, on_case=lambda i, n: bar.set(i, n),
                fault_rate=fault_rate, samples=samples, reroll_replays=reroll_max_replays,
                concurrency=concurrency, family=family,
            )  # fmt: skip

    r, signum = run_interruptible(main)
    if _ended_early_or_json(r, signum, as_json):
        return
    assert r is not None
    out = Console(highlight=False, width=None if Console().is_terminal else 200)
    shapes = ", ".join(f"{n} {s}" for s, n in r.shapes.items())
    partial = f"{partial_note(r.done, r.total, 'cases')}; " if r.interrupted else ""
    rate = EMBEDDED_FAULT_RATE if fault_rate is None and family == "embedded" else fault_rate
    out.print(
        f"{partial}{r.cases} planted failures ({shapes}) in {r.seconds:.0f} s"
        + (f"; faults fire with probability {rate:g}" if rate is not None else "")
        + (f"; model {r.model}" if r.model else "")
        + (
            f"; {len(r.not_decisive)} fault(s) did not make the run fail"
            if r.not_decisive and family != "embedded"
            else ""
        )
    )
    if family == "embedded":
        ok, runs = r.fault_free
        out.print(f"fault-free team succeeded in {ok} of {runs} runs (its base success rate)")
        for why, ids in r.skipped.items():
            out.print(f"skipped {len(ids)} case(s): {why}")
    if r.attribution:
        table = Table(
            title="Attribution against the planted agent and step (95% Wilson intervals)",
            title_justify="left",
            header_style="bold",
        )
        for col in ("method", "step", "agent", "step +-1", "replays/run", "verified", "s/run"):
            table.add_column(col)
        for a in r.attribution:
            d = a.as_dict()
            table.add_row(
                a.method, _fmt(d["step_accuracy"], d["step_ci"]), _fmt(d["agent_accuracy"], d["agent_ci"]),
                _fmt(d["step_within_1"]),
                "" if d["replays_per_run"] is None else f"{d['replays_per_run']:.1f} (median {d['replays_median']:g})",
                "" if d["verified"] is None else f"{d['verified']}/{a.n}", _fmt(d["seconds_per_run"]),
            )  # fmt: skip
        for b in r.baselines:
            d = b.as_dict()
            table.add_row(
                f"{b.method} (trivial)", _fmt(d["step_accuracy"], d["step_ci"]),
                _fmt(d["agent_accuracy"], d["agent_ci"]), _fmt(d["step_within_1"]), "", "", "",
            )  # fmt: skip
        out.print(table)
        out.print(
            _by_fault("step accuracy by planted fault", "method", sorted(r.faults),
                      {a.method: a.as_dict()["step_accuracy_by_fault"] for a in r.attribution})
        )  # fmt: skip
    if r.labelling:
        table = Table(
            title="Failure labelling: is the planted MAST mode found? (95% Wilson intervals)",
            title_justify="left",
            header_style="bold",
        )
        for col in (
            "labeller",
            "mode found",
            "evidence at the step (+-1)",
            "other modes/run",
            "s/run",
        ):
            table.add_column(col)
        for x in r.labelling:
            d = x.as_dict()
            table.add_row(
                x.labeller, _fmt(d["planted_mode_found"], d["found_ci"]), _fmt(d["evidence_at_planted_step"]),
                _fmt(d["other_modes_per_run"]), _fmt(d["seconds_per_run"]),
            )  # fmt: skip
        out.print(table)
        out.print(
            _by_fault("planted mode found, by fault", "labeller", sorted(r.faults),
                      {x.labeller: x.as_dict()["found_by_fault"] for x in r.labelling})
        )  # fmt: skip
    stop_if_interrupted(signum, err)


def _by_fault(title: str, who: str, kinds: list[str], rates: dict[str, dict[str, Any]]) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold", box=None)
    for col in (who, *kinds):
        table.add_column(col)
    for name, by_kind in rates.items():
        table.add_row(name, *(_fmt(by_kind.get(k)) for k in kinds))
    return table


@eval_app.command("repair")
@user_errors
def repair(
    runs: Annotated[int, typer.Option(help="Failed runs to collect and repair.")] = 50,
    seed: Annotated[int, typer.Option(help="Seed of the generated tasks.")] = 0,
    samples: Annotated[
        int, typer.Option(help="Re-runs of each repair, and of the baseline from scratch (K).")
    ] = 4,
    methods: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated: reroll, counterfactual, a2p, all-at-once, step-by-step, "
            "binary-search; or all (default)."
        ),
    ] = None,
    model: MethodModelOpt = None,
    shapes: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated team shapes: solver-checker, solver-reviewer, "
            "planner-coder-tester (default: all, in turn)."
        ),
    ] = None,
    temperature: Annotated[
        float | None,
        typer.Option(help="Sampling temperature of the generated teams' agents (default 0.8)."),
    ] = None,
    reroll_samples: Annotated[int, typer.Option(help="Reroll: re-rolls that decide a step.")] = 4,
    reroll_max_replays: Annotated[
        int, typer.Option(help="Reroll: most re-rolls per failed run.")
    ] = 16,
    max_replays: Annotated[
        int, typer.Option(help="Counterfactual: most forks per failed run.")
    ] = 3,
    max_attempts: Annotated[
        int | None,
        typer.Option(help="Most generated runs before giving up (default 10 x --runs)."),
    ] = None,
    with_ground_truth: Annotated[
        bool, typer.Option("--with-ground-truth/--without-ground-truth")
    ] = True,
    concurrency: Annotated[int, typer.Option(help="Re-runs run at once.")] = 1,
    db: Annotated[
        str | None,  # a str: a Path would mangle a URL's `//`
        typer.Option(
            "--db",
            help="Keep everything in this store, a path or URL, and reuse what it holds when "
            "started again (default: a temporary store).",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Repair rate of every attribution method on real failed runs, beside re-running from scratch."""

    from mascope.errors import ConfigError
    from mascope.evals import (
        NEEDS_MODEL,
        REPAIR_SHAPES,
        aevaluate_repair,
        check_repair_arguments,
        repair_methods,
    )
    from mascope.models import get_model

    chosen = repair_methods(methods)
    shape_list = tuple(s.strip() for s in shapes.split(",") if s.strip()) if shapes else None
    if shapes is not None and not shape_list:
        raise ConfigError(f"--shapes is empty; choose from {', '.join(REPAIR_SHAPES)}")
    # Every argument is checked before a model is loaded or a store is opened.
    check_repair_arguments(runs, samples, chosen, shape_list or REPAIR_SHAPES, temperature,
           reroll_samples, reroll_max_replays, max_attempts, concurrency)  # fmt: skip
    if max_replays < 1:
        raise ConfigError(f"--max-replays must be at least 1 (got {max_replays})")
    llm = None
    if any(m in NEEDS_MODEL for m in chosen):
        settings = Settings.load(model=model)
        llm = get_model(settings.model, settings=settings)

    async def main() -> Any:
        with progress_bar("failed runs repaired", None) as bar:
            return await aevaluate_repair(
                runs=runs, seed=seed, samples=samples, methods=chosen, model=llm, db=db,
                shapes=shape_list, temperature=temperature, reroll_samples=reroll_samples,
                reroll_max_replays=reroll_max_replays, max_replays=max_replays,
                max_attempts=max_attempts, with_ground_truth=with_ground_truth,
                concurrency=concurrency, on_run=lambda i, n: bar.set(i, n),
            )  # fmt: skip

    r, signum = run_interruptible(main)
    if _ended_early_or_json(r, signum, as_json):
        return
    assert r is not None
    out = Console(highlight=False, width=None if Console().is_terminal else 200)
    out.print(repair_summary(r))
    out.print(repair_table(r))
    if r.runs < r.wanted and not r.interrupted:
        out.print(
            f"[yellow]only {r.runs} of {r.wanted} runs failed within {r.attempts} attempts; "
            "raise --max-attempts or --temperature[/]"
        )
    stop_if_interrupted(signum, err)


def repair_summary(r: Any) -> str:
    """One line: what was generated and measured."""
    shapes = ", ".join(
        f"{shape} {n - ok}/{n} failed" for shape, (ok, n) in sorted(r.attempts_by_shape.items())
    )
    partial = "interrupted; " if r.interrupted else ""
    return (
        f"{partial}{r.runs} failed runs repaired, from {r.attempts} generated runs ({shapes}); "
        f"K={r.samples} re-runs per repair"
        + (f"; teams at temperature {r.temperature:g}" if r.temperature is not None else "")
        + (f"; model {r.model}" if r.model else "")
        + (f"; {r.reused} result(s) reused from the store" if r.reused else "")
        + f"; {r.seconds:.0f} s"
    )


def repair_table(r: Any) -> Table:
    """Per method: repair rate with its Wilson interval, beside the baseline."""
    table = Table(
        title="Repair rate: re-runs of each method's repair that succeed (95% Wilson intervals)",
        title_justify="left",
        header_style="bold",
    )
    for col in ("method", "repair rate", "x baseline", "runs repaired", "repairs (how)",
                "replays/run", "model calls/run", "s/run"):  # fmt: skip
        table.add_column(col)
    rows = [*r.methods, r.baseline]
    for score in rows:
        d = score.as_dict()
        times = r.times_baseline(score)
        ratio = "-" if times is None else f"{times:.1f}"
        how = ", ".join(f"{n} {k}" for k, n in sorted(d["how"].items()))
        name = f"{score.method} (baseline)" if score is r.baseline else score.method
        table.add_row(
            name, _fmt(d["repair_rate"], tuple(d["ci"])) + f" ({d['successes']}/{d['trials']})",
            ratio, f"{d['repaired_runs']}/{d['runs']}", how,
            "" if score is r.baseline else f"{d['replays_per_run']:.1f}" if d["replays_per_run"] is not None else "-",
            "" if score is r.baseline else _fmt(d["model_calls_per_run"]),
            "" if score is r.baseline else _fmt(d["seconds_per_run"]),
        )  # fmt: skip
    return table
