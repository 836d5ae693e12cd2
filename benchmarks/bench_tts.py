"""Test-time scaling on task sets no one here wrote: accuracy against hidden answers versus tokens.

For each task suite (HumanEval with its hidden official tests, generated word
problems with exact answers), each verifier and each strategy, one eval (a
resumable job in the store; rerun the same command to continue) runs the team
on every task. Reported per configuration:

* accuracy: runs whose final answer the hidden tests (or exact answer) accept;
* pass@k coverage: tasks where any candidate drawn was right (the gap to
  accuracy is what selection by the verifier loses);
* tokens per task;
* the verifier's measured false-positive and false-negative rates over every
  candidate it judged, and the accuracy ceiling that false-positive rate
  implies for unlimited resampling: a task whose draws are right with
  probability p is answered right, once a candidate passes, with probability
  p*TPR / (p*TPR + (1-p)*FPR), averaged over tasks (p measured per task from
  all candidates drawn for it in this benchmark).

    python benchmarks/bench_tts.py --suite words --count 12 --steps 1 --db /tmp/tts-words.db \
        --write docs/benchmarks.md --plot docs/tts.png

Strategies are `kind[,field=value...]` (StrategySpec fields), e.g.
`best_of_n,n=4` or `self_consistency,n=8,stop_confidence=0.9`.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import re
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _report import machine, pct, write_section

from mascope.agents import VerifierRates
from mascope.diagnosis import wilson
from mascope.evals import (
    EvalTask,
    aeval_run,
    calibrate_runs,
    eval_job_id,
    humaneval_tasks,
    word_problems,
)
from mascope.graphs import Team, load_team_file, parse_team
from mascope.jobs import JobQueue
from mascope.traces import TraceStore

EXAMPLES = Path(__file__).resolve().parents[1] / "mascope" / "examples"
DEFAULT_STRATEGIES = [
    "single",
    "best_of_n,n=4",
    "self_consistency,n=4",
    "best_of_majority,n=4",
    "self_consistency,n=8,stop_confidence=0.9",
    "best_of_n,n=8,stop_confidence=0.75",
    "review_refine,n=4,keep=2,rounds=2",
    "draft_defer,tau=0.5",
]
DRAFTER_INSTRUCTIONS = {
    "words": 'Reply with one line only: "ANSWER: <number>".',
    "humaneval": "Reply with one short ```python code block holding the function and nothing else.",
}
RUBRIC_CODE = (
    "The reply must hold one complete Python function that does exactly what the "
    "docstring asks, for every input, not only the examples shown."
)


@dataclass
class Result:
    suite: str
    verifier: str
    strategy: str
    tasks: int = 0
    runs: int = 0
    right: int = 0
    covered: int = 0
    tokens: int = 0
    seconds: float = 0.0
    rates: VerifierRates | None = None
    """The stage verifier's labelled verdicts (mascope's own calibration); None without one."""
    per_task: dict[str, list[bool]] = field(default_factory=dict)
    """Whether each candidate drawn for a task was right."""

    @property
    def fpr(self) -> tuple[float | None, list[float] | None]:
        r = self.rates
        return (r.fpr, list(r.fpr_interval) if r.fpr_interval else None) if r else (None, None)

    @property
    def fnr(self) -> tuple[float | None, list[float] | None]:
        r = self.rates
        return (r.fnr, list(r.fnr_interval) if r.fnr_interval else None) if r else (None, None)


def parse_strategy(text: str) -> dict[str, Any]:
    kind, *pairs = [p.strip() for p in text.split(",") if p.strip()]
    spec: dict[str, Any] = {"kind": kind}
    for pair in pairs:
        key, _, raw = pair.partition("=")
        try:
            spec[key] = json.loads(raw)
        except json.JSONDecodeError:
            spec[key] = raw
    return spec


def label(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def team_for(suite: str, verifier: str, strategy: dict[str, Any]) -> Any:
    """The suite's team with `verifier` on its stage and `strategy` drawing its candidates."""
    base = EXAMPLES / ("humaneval_coder.yaml" if suite == "humaneval" else "solver_checker.yaml")
    data = load_team_file(base).dump()
    stage = data["topology"]["stages"][0]
    if verifier == "rubric" and suite == "humaneval":
        data["verifiers"] = {"rubric": {"kind": "rubric", "rubric": RUBRIC_CODE}}
        stage["verifier"] = "rubric"
    elif verifier not in ("rubric", "examples") or (
        verifier == "examples" and suite != "humaneval"
    ):
        sys.exit(
            f"verifier {verifier!r} is not available for {suite}: use rubric, or examples for humaneval"
        )
    if strategy["kind"] == "draft_defer" and "drafter" not in strategy:
        # One local model: the cheap drafter is the stage's agent told to answer at
        # once in few tokens; the stage's own agent (working shown) is the strong one.
        strong = next(a for a in data["agents"] if a["name"] == stage["agent"])
        data["agents"].append({**strong, "name": "drafter", "max_tokens": 80,
                               "instructions": DRAFTER_INSTRUCTIONS[suite]})  # fmt: skip
        strategy = {**strategy, "drafter": "drafter"}
    if strategy["kind"] != "single":
        stage["strategy"] = strategy
        stage["max_rounds"] = 1  # the strategy is the search; no extra verifier loop on top
    name = f"{data['name']}-{label(verifier)}-{label(json.dumps(strategy, sort_keys=True))}"
    if len(name) > 60:  # team names are short; a digest keeps long ones apart
        name = f"{name[:51]}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"
    data["name"] = name
    return parse_team(data, source=f"{base.name} ({verifier}, {strategy})")


def measure(
    store: TraceStore, spec: Any, tasks: list[EvalTask], model: str | None, result: Result
) -> None:
    """Read this configuration's eval job back: each task's run, its candidates scored
    against the hidden answer, and the verifier's verdicts labelled the way
    `mascope verifiers calibrate` labels them."""
    team = Team.from_spec(spec, source=spec.name)

    def right(answer: str, truth: str) -> bool:
        return team.score(answer, truth).matched

    stage = spec.topology.stages[0]
    # Every answer drawn for the stage is a candidate: the stage agent's and a drafter's.
    agents = {stage.agent, getattr(stage.strategy, "drafter", None)} - {None}
    states = JobQueue(store).states(eval_job_id(spec, model, tasks))
    run_of = {k: str(s.result["run_id"]) for k, s in states.items() if s.result}
    runs, steps_of = store.get_runs(list(run_of.values())), store.steps_of(list(run_of.values()))
    result.tasks = len(tasks)
    for task in tasks:
        run_id = run_of.get(task.key)
        if run_id is None:
            continue
        steps = steps_of.get(run_id, [])
        result.runs += 1
        result.right += runs[run_id].status == "succeeded"
        result.tokens += sum((s.input_tokens or 0) + (s.output_tokens or 0) for s in steps)
        marks = [right(s.content, task.ground_truth or "") for s in steps if s.kind == "message" and s.agent in agents]  # fmt: skip
        result.per_task[task.key] = marks
        result.covered += any(marks)
    if stage.verifier is not None and run_of:
        rates = calibrate_runs(store, spec, run_ids=list(run_of.values()), score=right).verifiers
        result.rates = rates.get(stage.verifier)


def ceiling(results: list[Result]) -> float | None:
    """The accuracy unlimited resampling could reach under the verifier's measured error rates."""
    rates = [r.rates for r in results if r.rates is not None]
    wrong, right = sum(r.wrong for r in rates), sum(r.right for r in rates)
    if not wrong or not right:
        return None
    fpr = sum(r.accepted_wrong for r in rates) / wrong
    tpr = 1 - sum(r.rejected_right for r in rates) / right
    draws: dict[str, list[bool]] = defaultdict(list)
    for r in results:
        for key, marks in r.per_task.items():
            draws[key] += marks
    reach = []
    for marks in draws.values():
        p = sum(marks) / len(marks) if marks else 0.0
        accepted = p * tpr + (1 - p) * fpr
        reach.append(p * tpr / accepted if accepted else 0.0)
    return sum(reach) / len(reach) if reach else None


async def run_all(args: argparse.Namespace) -> list[Result]:
    if args.suite == "humaneval":
        rows = humaneval_tasks(args.count, args.start)
    else:
        rows = word_problems(args.count, seed=args.seed, steps=args.steps)
    tasks = [EvalTask(key=r["id"], task=r["task"], ground_truth=r["ground_truth"], line=i + 1) for i, r in enumerate(rows)]  # fmt: skip
    results = []
    with TraceStore(args.db) as store:
        for verifier in args.verifier:
            for text in args.strategy:
                spec = team_for(args.suite, verifier, parse_strategy(text))
                result = Result(args.suite, verifier, text)
                started = time.monotonic()
                if not args.measured_only:
                    await aeval_run(store, spec, tasks, model=args.model, concurrency=args.concurrency)  # fmt: skip
                result.seconds = time.monotonic() - started
                measure(store, spec, tasks, args.model, result)
                results.append(result)
                print(f"{verifier:9} {text:45} right {result.right}/{result.runs}  covered {result.covered}  "
                      f"tokens/task {result.tokens / max(result.runs, 1):.0f}  FPR {pct(*result.fpr)}  "
                      f"{result.seconds:.0f}s", flush=True)  # fmt: skip
    return results


def table(results: list[Result]) -> str:
    lines = [
        "| verifier | strategy | accuracy % [95% CI] | pass@k coverage % | tokens / task | verifier FPR % | verifier FNR % |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if not r.runs:
            lines.append(f"| {r.verifier} | `{r.strategy}` | not run yet | | | | |")
            continue
        acc = r.right / r.runs
        lines.append(
            f"| {r.verifier} | `{r.strategy}` | {pct(acc, list(wilson(r.right, r.runs)) if r.runs else None)} "
            f"| {pct(r.covered / r.runs if r.runs else None)} | {r.tokens / max(r.runs, 1):.0f} "
            f"| {pct(*r.fpr)} | {pct(*r.fnr)} |"
        )
    return "\n".join(lines)


def plot(results: list[Result], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for verifier in dict.fromkeys(r.verifier for r in results):
        rs = [r for r in results if r.verifier == verifier and r.runs]
        xs = [r.tokens / r.runs for r in rs]
        ax.scatter(xs, [100 * r.right / r.runs for r in rs], label=f"accuracy ({verifier})")
        ax.scatter(
            xs, [100 * r.covered / r.runs for r in rs], marker="x", label=f"pass@k ({verifier})"
        )
        for r, x in zip(rs, xs, strict=True):
            ax.annotate(r.strategy.split(",")[0] + ("*" if "stop_confidence" in r.strategy else ""),
                        (x, 100 * r.right / r.runs), fontsize=7, xytext=(3, 3), textcoords="offset points")  # fmt: skip
        top = ceiling([r for r in results if r.verifier == verifier])
        if top is not None:
            ax.axhline(
                100 * top, linestyle="--", linewidth=0.8, label=f"FPR-implied ceiling ({verifier})"
            )
    ax.set_xlabel("tokens per task")
    ax.set_ylabel("% of tasks")
    ax.set_ylim(-2, 102)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", choices=["humaneval", "words"], default="words")
    parser.add_argument(
        "--count", type=int, default=12, help="tasks (humaneval: problems from --start)"
    )
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--steps", type=int, default=1, help="words: arithmetic steps per problem")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--verifier", action="append", help="examples (humaneval) or rubric; repeatable"
    )
    parser.add_argument("--strategy", action="append", help="kind[,field=value...]; repeatable")
    parser.add_argument("--model", default=None, help="default: the team's (the embedded model)")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument(
        "--measured-only", action="store_true", help="report what the store holds; run nothing"
    )
    parser.add_argument("--write", type=Path)
    parser.add_argument("--plot", type=Path)
    args = parser.parse_args()
    args.verifier = args.verifier or (
        ["examples", "rubric"] if args.suite == "humaneval" else ["rubric"]
    )
    args.strategy = args.strategy or DEFAULT_STRATEGIES
    results = asyncio.run(run_all(args))
    body = table(results)
    for verifier in args.verifier:
        top = ceiling([r for r in results if r.verifier == verifier])
        body += f"\n\n{verifier}: accuracy ceiling implied by its measured FPR: {pct(top)}%"
    what = (f"HumanEval problems {args.start}-{args.start + args.count - 1}" if args.suite == "humaneval"
            else f"{args.count} word problems of {args.steps} step(s), seed {args.seed}")  # fmt: skip
    print(body)
    if args.plot:
        plot(results, args.plot, f"{what}, model {args.model or 'embedded SmolLM2-135M'}")
    if args.write:
        shown = [a for a in sys.argv[1:] if a != "--measured-only"]  # the command that runs it
        command = " ".join(["MASCOPE_LOCAL_THREADS=1 python benchmarks/bench_tts.py", *shown])
        write_section(
            args.write,
            f"tts-{args.suite}",
            f"### Test-time scaling: {what}\n\n"
            f"Model: {args.model or 'the embedded SmolLM2-135M'}; {machine()}.\n\n`{command}`\n\n"
            "Each configuration is a resumable eval job in the store: the same command again "
            "runs only what is missing (add `--strategy`/`--verifier` to extend the grid; "
            "`--measured-only` reports without running anything). Accuracy is judged by the "
            "hidden answers; pass@k coverage is the share of tasks where any candidate drawn "
            "was right; FPR is accepted-but-wrong over wrong candidates. `single` keeps the "
            "team's own verify-and-retry loop; the other strategies replace it (one round).\n\n"
            f"{body}\n" + (f"\n![accuracy versus tokens]({args.plot.name})\n" if args.plot else ""),
        )


if __name__ == "__main__":
    main()
