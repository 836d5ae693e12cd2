"""Repair rate of every attribution method on real failed runs of embedded-model teams.

    .venv/bin/python benchmarks/bench_repair.py --runs 50 --db repair.db --write docs/benchmarks.md

The same measurement as `mascope eval repair` (see its --help and
docs/attribution.md), written into docs/benchmarks.md as a table. Everything
is kept in --db: started again with the same store and settings, it reuses
the generated runs and finished outcomes, so a long run can be stopped and
its table written from what it measured (`--runs` no more than it finished).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _report import machine, pct, write_section

from mascope.evals import (
    NEEDS_MODEL,
    RepairEval,
    aevaluate_repair,
    repair_measured_runs,
    repair_methods,
)
from mascope.models import get_model


def table(r: RepairEval) -> list[str]:
    out = [
        "| method | repair rate % [95% Wilson] | re-runs | x baseline | runs repaired | repairs (how) | replays/run | model calls/run | s/run (median) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for score in [*r.methods, r.baseline]:
        d = score.as_dict()
        is_base = score is r.baseline
        times = r.times_baseline(score)
        ratio = "-" if times is None else f"{times:.1f}"
        how = ", ".join(f"{n} {k}" for k, n in sorted(d["how"].items()))
        out.append(
            f"| {score.method}{' (baseline)' if is_base else ''} | {pct(d['repair_rate'], d['ci'])} "
            f"| {d['successes']}/{d['trials']} | {ratio} | {d['repaired_runs']}/{d['runs']} | {how} "
            + (
                "| | | |"
                if is_base
                else f"| {d['replays_per_run']:.1f} | {d['model_calls_per_run']:.1f} | {d['seconds_per_run']:.0f} |"
            )
        )
    return out


def measured(db: str, seed: int, methods: list[str]) -> int:
    """How many of the store's failed runs of `seed` have an outcome for every method
    (they are measured in order, so these are the first ones)."""
    from mascope.traces import TraceStore

    with TraceStore(db, create=False) as store:
        return repair_measured_runs(store, seed, methods)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--seed", type=int, default=[0], nargs="+")
    parser.add_argument("--samples", type=int, default=3, help="K re-runs per repair")
    parser.add_argument("--reroll-samples", type=int, default=3)
    parser.add_argument("--reroll-max-replays", type=int, default=12)
    parser.add_argument("--max-replays", type=int, default=2, help="counterfactual's forks")
    parser.add_argument("--methods", type=str, default=None, help="comma-separated (default: all)")
    parser.add_argument(
        "--db", type=str, required=True, nargs="+",
        help="one store per --seed, in the same order (several processes can measure different seeds at once)",
    )  # fmt: skip
    parser.add_argument(
        "--measured-only", action="store_true",
        help="report the failed runs each store has finished measuring, and measure nothing new",
    )  # fmt: skip
    parser.add_argument(
        "--section", type=str, default="repair", help="section of --write to replace"
    )
    parser.add_argument("--write", type=Path, default=None)
    args = parser.parse_args()
    methods = repair_methods(args.methods)
    if len(args.db) != len(args.seed):
        parser.error("give one --seed per --db")
    model = get_model("local") if any(m in NEEDS_MODEL for m in methods) else None
    parts: list[tuple[str, int, RepairEval]] = []  # (store, seed, what it measured)
    for db, seed in zip(args.db, args.seed, strict=True):
        runs = measured(db, seed, methods) if args.measured_only else args.runs
        if runs:
            parts.append((db, seed, asyncio.run(
                aevaluate_repair(
                    runs=runs, seed=seed, samples=args.samples, methods=methods, model=model, db=db,
                    reroll_samples=args.reroll_samples, reroll_max_replays=args.reroll_max_replays,
                    max_replays=args.max_replays,
                )
            )))  # fmt: skip
    if not parts:
        parser.error("no store has a failed run measured with every method yet")
    command = "; ".join(  # each part's own runs: before merging adds them into the first
        f"mascope eval repair --runs {part.runs} --seed {seed} --samples {args.samples} "
        f"--reroll-samples {args.reroll_samples} --reroll-max-replays {args.reroll_max_replays} "
        f"--max-replays {args.max_replays} --db {Path(db).name}"
        + (f" --methods {args.methods}" if args.methods else "")
        for db, seed, part in parts
    )
    r = parts[0][2]
    for _, _, part in parts[1:]:
        r.merge(part)
    shapes = ", ".join(
        f"{shape}: {n - ok} of {n} failed" for shape, (ok, n) in sorted(r.attempts_by_shape.items())
    )
    body = "\n".join(
        [
            "## Repair rate of every attribution method"
            if args.methods is None
            else f"## Repair rate of {', '.join(methods)} beside re-running from scratch (seeds {', '.join(map(str, args.seed))})",
            "",
            f"Measured on {machine()}, shared with other jobs (`{command}`, or "
            f"`.venv/bin/python benchmarks/bench_repair.py` with the same settings). "
            f"{r.runs} real failed runs of SmolLM2-135M teams at temperature {r.temperature:g} "
            f"from {r.attempts} generated runs on seeded tasks with exact answers ({shapes}). "
            f"Each method diagnosed each failed run; its repair (a fork at the blamed step with its "
            f"correction, or a re-roll from the blamed step for methods that propose none; the baseline's "
            f"re-runs for a method that named no step) was re-run K={r.samples} times, beside K re-runs "
            "of the team from scratch. Replays/run and s/run are the diagnosis's own (reroll's re-rolls, "
            "counterfactual's forks), not the K repair re-runs."
            + (
                " The LLM methods use the embedded model with the ground truth."
                if any(m in NEEDS_MODEL for m in methods)
                else ""
            ),
            "",
            *table(r),
        ]
    )
    print(body)
    if args.write:
        write_section(args.write, args.section, body)


if __name__ == "__main__":
    main()
