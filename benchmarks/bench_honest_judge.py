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

from mascope.diagnosis import _eval_mast, _eval_planted
from mascope.diagnosis._judge import JudgeConfig, Judgement, ModeResult
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


async def planted(limit: int, model: Any) -> dict[str, Any]:
    real = _eval_planted.ajudge_run
    judged: dict[str, Judgement] = {}
    before = _eval_planted.LabelScore("judge, before the check")
    uncertain: list[int] = []

    async def spy(store: Any, run_id: str, config: JudgeConfig, **kw: Any) -> Judgement:
        j = await real(store, run_id, config, **kw)
        judged[run_id] = j
        uncertain.append(len(j.uncertain))
        return j

    add = _eval_planted.LabelScore.add

    def add_both(self: Any, p: Any, modes: dict[str, list[int]], seconds: float) -> None:
        add(self, p, modes, seconds)
        if self.labeller == "judge" and p.run_id in judged:
            old = as_before(judged[p.run_id])
            add(
                before, p, {m: r.evidence_steps for m, r in old.modes.items() if r.present}, seconds
            )

    _eval_planted.ajudge_run = spy  # type: ignore[assignment]
    _eval_planted.LabelScore.add = add_both  # type: ignore[method-assign]
    try:
        result = await _eval_planted.aevaluate_planted(methods=["judge"], model=model, limit=limit)
    finally:
        _eval_planted.ajudge_run = real
        _eval_planted.LabelScore.add = add  # type: ignore[method-assign]
    (after,) = result.labelling
    return {
        "before": before.as_dict(),
        "after": after.as_dict(),
        "uncertain_per_run": sum(uncertain) / len(uncertain) if uncertain else None,
    }


async def mast(file: Path, model: Any) -> dict[str, Any]:
    real = _eval_mast.ajudge_run
    cache: dict[str, Judgement] = {}

    def key(store: Any, run_id: str) -> str:
        run = store.get_run(run_id)
        return f"{run.task}\x00{run.step_count}\x00{run.final_answer}"

    async def first(store: Any, run_id: str, config: JudgeConfig, **kw: Any) -> Judgement:
        j = await real(store, run_id, config, **kw)
        cache[key(store, run_id)] = j
        return j

    async def again(store: Any, run_id: str, config: JudgeConfig, **kw: Any) -> Judgement:
        return as_before(cache[key(store, run_id)])

    config = JudgeConfig(model=model.model_id)
    try:
        _eval_mast.ajudge_run = first  # type: ignore[assignment]
        after = await _eval_mast.aevaluate_mast(file, config, model=model)
        _eval_mast.ajudge_run = again  # type: ignore[assignment]
        before = await _eval_mast.aevaluate_mast(file, config, model=model)
    finally:
        _eval_mast.ajudge_run = real
    uncertain = [len(j.uncertain) for j in cache.values()]
    return {
        "before": _eval_mast.eval_dict(before)["pooled"],
        "after": _eval_mast.eval_dict(after)["pooled"],
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
