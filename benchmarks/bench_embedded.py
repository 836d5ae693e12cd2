"""Attribution on planted faults in embedded-model teams, and every method on the function family.

    # measure (resumable: each chunk of cases is appended to the results file as it finishes)
    .venv/bin/python benchmarks/bench_embedded.py run --results R.jsonl --methods reroll,rules --chunks 5
    # write the tables
    .venv/bin/python benchmarks/bench_embedded.py report --results R.jsonl [--function F.jsonl ...] --write docs/benchmarks.md

`run` measures the embedded family (`mascope eval planted --family embedded`) in
chunks of cases, one seed per chunk (a chunk of 6 takes each team shape, fault
kind and faulty agent once), and appends each chunk's raw scores to a JSONL
file, so a long measurement can be stopped and continued, and split across
processes by method. `report` pools the chunks, and adds the function family's
`mascope eval planted --json` outputs given with `--function`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _report import machine, write_section
from _report import pct as rate_pct

from mascope.diagnosis import wilson
from mascope.evals import (
    EMBEDDED_FAULT_RATE,
    NEEDS_MODEL,
    AttributionScore,
    aevaluate_planted,
    planted_methods,
)
from mascope.models import get_model

COMBOS = 6


def run(args: argparse.Namespace) -> None:
    methods = planted_methods(args.methods, stochastic=True)
    llm = get_model(args.model) if any(m in NEEDS_MODEL for m in methods) else None
    done = (
        {json.loads(line)["seed"] for line in args.results.read_text().splitlines()}
        if args.results.exists()
        else set()
    )
    for seed in range(args.first_seed, args.first_seed + args.chunks):
        if seed in done:
            continue
        started = time.perf_counter()
        r = asyncio.run(
            aevaluate_planted(
                methods=methods, model=llm, limit=args.chunk, seed=seed, family="embedded",
                fault_rate=args.fault_rate, samples=args.samples, reroll_replays=args.max_replays,
                concurrency=args.concurrency,
            )
        )  # fmt: skip
        record = {
            "seed": seed, "fault_rate": args.fault_rate, "methods": methods, "model": r.model,
            "cases": r.cases, "skipped": r.skipped, "fault_free": list(r.fault_free),
            "shapes": r.shapes, "seconds": time.perf_counter() - started,
            "scores": [asdict(a) for a in [*r.attribution, *r.baselines]],
            "labels": [x.as_dict() for x in r.labelling],
            "samples": args.samples,
            "max_replays": args.max_replays,
            "interrupted": r.interrupted,
        }  # fmt: skip
        with args.results.open("a") as f:
            f.write(json.dumps(record) + "\n")
        print(
            f"seed {seed}: {r.cases} cases, skipped {sum(map(len, r.skipped.values()))}", flush=True
        )
        if r.interrupted:  # Ctrl-C: the finished cases are kept; the rest is for the next run
            break


def _pool(records: list[dict[str, Any]]) -> dict[str, AttributionScore]:
    pooled: dict[str, AttributionScore] = {}
    for rec in records:
        for s in rec["scores"]:
            p = pooled.setdefault(s["method"], AttributionScore(s["method"]))
            for k in ("n", "step", "agent", "within_1", "no_answer", "verified"):
                setattr(p, k, getattr(p, k) + s[k])
            p.replays += s["replays"]
            p.seconds += s["seconds"]
            for kind, (hits, n) in s["by_fault"].items():
                got = p.by_fault.setdefault(kind, [0, 0])
                got[0] += hits
                got[1] += n
    return pooled


def _model_name(model: str | None) -> str | None:
    return "SmolLM2-135M" if model == "local" else model


def pct(hits: int, n: int) -> str:
    return rate_pct(hits / n if n else None, list(wilson(hits, n)))


def row(label: str, s: AttributionScore, model: str | None) -> str:
    trivial = s.method.startswith("always")
    replays = (
        f"{statistics.median(s.replays):g} ({statistics.fmean(s.replays):.1f})" if s.replays else ""
    )
    who = f"{s.method}{' (trivial)' if trivial else ''}{', ' + model if model and not trivial and s.method not in ('reroll', 'counterfactual+reference') else ''}"
    secs = "" if trivial or not s.seconds else f"{statistics.median(s.seconds):.1f}"
    return (
        f"| {label} | {who} | {s.n} | {pct(s.step, s.n)} | {pct(s.agent, s.n)} | {replays} "
        f"| {'' if trivial else s.no_answer} | {secs} |"
    )


HEADER = [
    "| family, P | method | cases | step % [95% CI] | agent % [95% CI] | replays/run median (mean) | undecided / no answer | s/run (median) |",
    "|---|---|---:|---:|---:|---:|---:|---:|",
]


def report(args: argparse.Namespace) -> None:
    records = [
        json.loads(line)
        for path in args.results
        for line in path.read_text().splitlines()
        if line.strip()
    ]
    rate = records[0]["fault_rate"] if records else None
    model = _model_name(next((r["model"] for r in records if r["model"]), None))
    table = list(HEADER)
    seen_baselines = False
    pooled_by_run: list[tuple[list[dict[str, Any]], dict[str, AttributionScore]]] = []
    for methods in dict.fromkeys(tuple(r["methods"]) for r in records):
        group = [r for r in records if tuple(r["methods"]) == methods]
        pooled = _pool(group)
        pooled_by_run.append((group, pooled))
        for name, s in pooled.items():
            if name.startswith("always") and seen_baselines:
                continue
            table.append(row(f"embedded, {rate:g}", s, model))
        seen_baselines = True
    group0 = pooled_by_run[0][0] if pooled_by_run else []
    ok = sum(r["fault_free"][0] for r in records)
    runs = sum(r["fault_free"][1] for r in records)
    skipped: dict[str, int] = {}
    for r in records:
        for why, ids in r["skipped"].items():
            skipped[why] = skipped.get(why, 0) + len(ids)
    for path in args.function or []:
        data = json.loads(Path(path).read_text())
        label = f"function, {path.name.split('_p')[-1].removesuffix('.json')}"
        for a in [*data["attribution"], *data["baselines"]]:
            hits_s, hits_a = round(a["step_accuracy"] * a["n"]), round(a["agent_accuracy"] * a["n"])
            replays = (
                ""
                if a["replays_per_run"] is None
                else f"{a['replays_median']:g} ({a['replays_per_run']:.1f})"
            )
            who = a["method"] + (" (trivial)" if a["method"].startswith("always") else "")
            if (
                data.get("model")
                and a["method"] not in ("counterfactual+reference",)
                and not a["method"].startswith("always")
            ):
                who += f", {_model_name(data['model'])}"
            secs = (
                ""
                if a["seconds_per_run"] is None or a["method"].startswith("always")
                else f"{a['seconds_per_run']:.1f}"
            )
            table.append(
                f"| {label} | {who} | {a['n']} | {pct(hits_s, a['n'])} | {pct(hits_a, a['n'])} | {replays} "
                f"| {'' if a['method'].startswith('always') else a['no_answer']} | {secs} |"
            )
    kinds = sorted({k for _, p in pooled_by_run for s in p.values() for k in s.by_fault})
    by_fault = ["| method | " + " | ".join(kinds) + " |", "|---|" + "---:|" * len(kinds)]
    for _, pooled in pooled_by_run:
        for name, s in pooled.items():
            cells = [pct(*s.by_fault[k]) if k in s.by_fault else "-" for k in kinds]
            by_fault.append(f"| {name} | " + " | ".join(cells) + " |")
    shapes: dict[str, int] = {}
    for r in group0:
        for k, v in r["shapes"].items():
            shapes[k] = shapes.get(k, 0) + v
    body = "\n".join(
        [
            "## Attribution on embedded-model teams with injected faults",
            "",
            f"Measured on {machine()} while three other sessions shared the two cores, so the seconds "
            "are several times an idle machine's and the sample is what the time allowed. The embedded "
            "family (`mascope eval planted --family embedded`, see docs/attribution.md): SmolLM2-135M "
            "agents on generated sums and products, one agent's first turn corrupted with probability P; "
            "the truth is the step of the faulty turn whose fault fired on the failed run. reroll ran with "
            "a smaller budget than its defaults (4 re-rolls decide a step, at most 16 per run, 2 at once) "
            "to fit the time; the LLM methods ran in a second process on their own planted runs of the "
            "same cases (one case per seed, seeds 0, 1, 2, ...), so their case counts differ. Undecided "
            "reroll runs and methods that gave no usable answer count as misses.",
            "",
            f"Base success: the fault-free teams succeeded in {ok} of {runs} runs ({pct(ok, runs)} %). "
            "Cases left out (no failed run that the fault decided): "
            + ("; ".join(f"{n}: {why}" for why, n in skipped.items()) or "none")
            + ".",
            "",
            "Reproduce (`MASCOPE_LOCAL_THREADS=1` made each model call 2.6 times faster on the "
            "oversubscribed machine):",
            "",
            "```",
            "MASCOPE_LOCAL_THREADS=1 .venv/bin/python benchmarks/bench_embedded.py run --results R.jsonl "
            "--methods reroll,counterfactual+reference,rules --samples 4 --max-replays 16 --concurrency 2 "
            "--chunk 1 --chunks 36",
            "MASCOPE_LOCAL_THREADS=1 .venv/bin/python benchmarks/bench_embedded.py run --results L.jsonl "
            "--methods counterfactual,a2p,all-at-once,step-by-step,binary-search --chunk 1 --chunks 36",
            "mascope eval planted --fault-rate P --methods counterfactual+reference,rules --json > fast_pP.json"
            "          # P = 0.2, 0.8: all 132 cases",
            "mascope eval planted --fault-rate P --methods counterfactual,a2p,all-at-once,step-by-step,"
            "binary-search --limit N --json > llm_pP.json   # stratified sample",
            ".venv/bin/python benchmarks/bench_embedded.py report --results R.jsonl L.jsonl "
            "--function fast_p0.2.json llm_p0.2.json fast_p0.8.json llm_p0.8.json --write docs/benchmarks.md",
            "```",
            "",
            "One command for the embedded family: `mascope eval planted --family embedded --fault-rate 0.5 "
            "--methods all --limit N`. The function family's reroll rows are in the re-roll section above.",
            "",
            *table,
            "",
            "Step accuracy by fault kind on the embedded family (% [95% CI]):",
            "",
            *by_fault,
        ]
    )
    print(body)
    if args.write:
        write_section(args.write, "embedded", body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="measure the embedded family in chunks")
    r.add_argument("--results", type=Path, required=True)
    r.add_argument("--methods", default="reroll,counterfactual+reference,rules")
    r.add_argument("--model", default="local", help="the LLM methods' model")
    r.add_argument("--fault-rate", type=float, default=EMBEDDED_FAULT_RATE)
    r.add_argument(
        "--chunk", type=int, default=COMBOS, help="cases per chunk (6: each combination once)"
    )
    r.add_argument("--chunks", type=int, default=5)
    r.add_argument("--first-seed", type=int, default=0)
    r.add_argument("--samples", type=int, default=None)
    r.add_argument("--max-replays", type=int, default=None)
    r.add_argument("--concurrency", type=int, default=4)
    p = sub.add_parser("report", help="pool the chunks and write the tables")
    p.add_argument("--results", type=Path, nargs="+", required=True)
    p.add_argument("--function", type=Path, nargs="*", help="`mascope eval planted --json` outputs")
    p.add_argument("--write", type=Path, default=None)
    args = parser.parse_args()
    (run if args.command == "run" else report)(args)


if __name__ == "__main__":
    main()
