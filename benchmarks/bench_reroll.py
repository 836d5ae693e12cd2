"""Re-roll attribution on the stochastic planted benchmark (faults that fire with probability P).

    .venv/bin/python benchmarks/bench_reroll.py --write docs/benchmarks.md

Every case of `mascope eval planted` (every fault kind and team shape), with
each fault firing with probability P each time its turn runs; the faulty team
is run until a run fails, and that run is attributed. reroll asks no model:
it re-executes the run from probed steps and measures where success drops.
Beside it, counterfactual replay with the fault-free run's corrections (the
answer handed to it) and the trivial baselines. Same command per rate:
`mascope eval planted --fault-rate P --methods reroll,counterfactual+reference`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _report import machine, pct, write_section

from mascope.evals import PlantedEval, aevaluate_planted

RATES = (0.5, 0.2, 0.8)
METHODS = ["reroll", "counterfactual+reference"]


def rows(r: PlantedEval, rate: float) -> list[str]:
    out = []
    for a in [*r.attribution, *r.baselines]:
        d = a.as_dict()
        trivial = a.method.startswith("always")
        replays = (
            ""
            if d["replays_per_run"] is None
            else f"{d['replays_median']:g} ({d['replays_per_run']:.1f})"
        )
        out.append(
            f"| {rate:g} | {a.method}{' (trivial)' if trivial else ''} | {a.n} "
            f"| {pct(d['step_accuracy'], d['step_ci'])} | {pct(d['agent_accuracy'], d['agent_ci'])} "
            f"| {replays} | {'' if trivial else a.no_answer} "
            f"| {'' if trivial else a.n - a.step - a.no_answer} "
            f"| {'' if trivial or d['verified'] is None else d['verified']} "
            f"| {'' if trivial else format(d['seconds_per_run'], '.2f')} |"
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="cases per rate (default: all 132)")
    parser.add_argument("--write", type=Path, default=None)
    args = parser.parse_args()
    table = [
        "| P | method | cases | step accuracy % [95% CI] | agent accuracy % | replays/run median (mean) | undecided | wrong step | verified | s/run |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    by_fault: list[str] = []
    started = time.perf_counter()
    for rate in RATES:
        r = asyncio.run(
            aevaluate_planted(methods=METHODS, model=None, limit=args.limit, fault_rate=rate)
        )
        table += rows(r, rate)
        reroll = r.attribution[0].as_dict()["step_accuracy_by_fault"]
        by_fault.append(
            f"| {rate:g} | " + " | ".join(pct(reroll.get(k)) for k in sorted(r.faults)) + " |"
        )
        kinds = sorted(r.faults)
        shapes = ", ".join(f"{n} {s}" for s, n in r.shapes.items())
        print(f"P={rate}: {r.cases} failed runs ({shapes}); not failing: {len(r.not_decisive)}")
    body = "\n".join(
        [
            "## Re-roll attribution on stochastic planted faults",
            "",
            f"Measured on {machine()} in {time.perf_counter() - started:.0f} s "
            f"(`.venv/bin/python benchmarks/bench_reroll.py --write docs/benchmarks.md`; one rate: "
            "`mascope eval planted --fault-rate 0.5 --methods reroll,counterfactual+reference`). "
            "Every fault kind and team shape of the planted benchmark; each fault fires with probability P "
            "each time its turn runs, so a re-roll from the faulty step or before it succeeds with "
            "probability 1 - P. reroll runs with its defaults (12 re-rolls decide a step, at most 60 per run, "
            "4 at once) and asks no model; counterfactual+reference is handed the fault-free run's outputs as "
            "corrections (an upper bound, not a method a user has). Undecided runs (the budget ran out "
            'before a step was settled; nothing is blamed) count as misses; "wrong step" counts runs '
            "where a step other than the planted one was blamed.",
            "",
            *table,
            "",
            "reroll step accuracy by fault kind (%):",
            "",
            "| P | " + " | ".join(kinds) + " |",
            "|---|" + "---|" * len(kinds),
            *by_fault,
        ]
    )
    print(body)
    if args.write:
        write_section(args.write, "reroll", body)


if __name__ == "__main__":
    main()
