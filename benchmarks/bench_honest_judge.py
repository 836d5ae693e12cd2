"""The embedded judge before and after the evidence check, from one judging pass.

Each run is judged once; "before" counts every mode the model marked present
(what the judge stored up to prompt judge-v2), "after" only those whose cited
steps and quotes check out (judge-v3; the rest are uncertain). With one sample
per window the two views come from the same answers, so the difference is the
check alone, not sampling noise.

    .venv/bin/python benchmarks/bench_honest_judge.py [--planted 3] [--mast FILE] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _report import machine, write_section

from mascope.diagnosis import JudgeConfig, Judgement, ModeResult, ajudge
from mascope.evals import aevaluate_mast, aevaluate_planted, mast_eval_dict
from mascope.models import get_model

ROOT = Path(__file__).resolve().parents[1]


def as_before(judgement: Judgement) -> Judgement:
    """The judgement as stored before the evidence check: uncertain was present."""
    modes = {
        m: ModeResult(True, r.confidence, r.evidence_steps, r.rationale, "present")
        if r.status == "uncertain"
        else r
        for m, r in judgement.modes.items()
    }
    return replace(judgement, modes=modes)


def _key(store: Any, run_id: str) -> str:
    """The same run in both passes (each pass stores its runs under new ids)."""
    run = store.get_run(store.resolve_run_id(run_id))
    return f"{run.task}\x00{run.step_count}\x00{run.final_answer}"


class Replay:
    """Judge once: the first pass asks the judge and keeps its answers, the second
    scores the same answers as the judge stored them before the evidence check."""

    def __init__(self) -> None:
        self.cache: dict[str, Judgement] = {}

    async def first(self, store: Any, run_id: str, **kw: Any) -> Judgement:
        j = await ajudge(store, run_id, **kw)
        self.cache[_key(store, run_id)] = j
        return j

    async def again(self, store: Any, run_id: str, **kw: Any) -> Judgement:
        return as_before(self.cache[_key(store, run_id)])


async def planted(limit: int, model: Any) -> dict[str, Any]:
    replay = Replay()
    after = await aevaluate_planted(methods=["judge"], model=model, limit=limit, judge=replay.first)
    before = await aevaluate_planted(
        methods=["judge"], model=model, limit=limit, judge=replay.again
    )
    uncertain = [len(j.uncertain) for j in replay.cache.values()]
    return {
        "before": before.labelling[0].as_dict(),
        "after": after.labelling[0].as_dict(),
        "uncertain_per_run": sum(uncertain) / len(uncertain) if uncertain else None,
    }


async def mast(file: Path, model: Any) -> dict[str, Any]:
    replay = Replay()
    config = JudgeConfig(model=model.model_id)
    after = await aevaluate_mast(file, config, model=model, judge=replay.first)
    before = await aevaluate_mast(file, config, model=model, judge=replay.again)
    uncertain = [len(j.uncertain) for j in replay.cache.values()]
    return {
        "before": mast_eval_dict(before)["pooled"],
        "after": mast_eval_dict(after)["pooled"],
        "traces": after.traces,
        "pairs": after.pooled.n if hasattr(after.pooled, "n") else None,
        "uncertain_per_trace": sum(uncertain) / len(uncertain) if uncertain else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--planted", type=int, default=3, help="planted cases (0: skip)")
    parser.add_argument("--mast", type=Path, help="a MAD human-labelled file (default: skip)")
    parser.add_argument("--model", default="local")
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    model = get_model(args.model)
    out: dict[str, Any] = {"model": model.model_id}
    started = time.perf_counter()
    if args.planted:
        out["planted"] = asyncio.run(planted(args.planted, model))
        print("planted:", json.dumps(out["planted"], default=str), flush=True)
    if args.mast:
        out["mast"] = asyncio.run(mast(args.mast, model))
        print("mast:", json.dumps(out["mast"], default=str), flush=True)
    out["seconds"] = time.perf_counter() - started
    if args.write:
        write_section(args.write, "honest-judge", report(out, args))


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}"


def report(out: dict[str, Any], args: argparse.Namespace) -> str:
    lines = [
        "### The embedded judge before and after the evidence check",
        "",
        f"{machine()}. Reproduce: `.venv/bin/python benchmarks/bench_honest_judge.py --planted {args.planted}"
        + (f" --mast {args.mast}" if args.mast else "")
        + ' --write docs/benchmarks.md` (one judging pass; "before" counts every mode the model '
        'marked present, "after" only those whose cited steps and quotes check out).',
        "",
    ]
    if "planted" in out:
        p = out["planted"]
        lines += [
            "| planted cases, " + out["model"] + " | cases | planted mode found % | other modes present per run | uncertain per run |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]  # fmt: skip
        for name in ("before", "after"):
            r = p[name]
            other = r["other_modes_per_run"]
            lines.append(
                f"| {name} the check | {r['n']} | {_pct(r['planted_mode_found'])} | "
                f"{'-' if other is None else f'{other:.1f}'} | "
                + ("-" if name == "before" else f"{p['uncertain_per_run']:.1f}")
                + " |"
            )
        lines.append("")
    if "mast" in out:
        m = out["mast"]
        lines += [
            f"| MAST sample ({m['traces']} traces), {out['model']} | accuracy | precision | recall | F1 | Cohen's kappa |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for name in ("before", "after"):
            r = m[name]
            lines.append(
                f"| {name} the check | {r.get('accuracy', float('nan')):.2f} | {r.get('precision') or 0:.2f} | "
                f"{r.get('recall') or 0:.2f} | {r.get('f1') or 0:.2f} | {r.get('kappa') or 0:.2f} |"
            )
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
