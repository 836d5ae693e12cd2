"""Diagnosis: judge batch throughput, rule-detector precision/recall, and the embedded judge vs humans.

1. Batch throughput against a loopback OpenAI-compatible server that answers
   every request after a fixed 300 ms, at concurrency 1, 8 and 32, as a
   fraction of the ideal (concurrency / latency runs per second).
2. Rule detectors on runs of the example teams with scripted models, where
   each scenario's failure modes are known by construction.
3. The embedded SmolLM2 as the judge on the MAST human-labelled sample,
   beside human-human agreement and the published o1 figures.

    .venv/bin/python benchmarks/bench_judge.py [--runs 3] [--skip-local] [--write docs/benchmarks.md]
    .venv/bin/python benchmarks/bench_judge.py --throughput-only --concurrency 32 --runs 3
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _report import machine, median, write_section

from mascope import Agent, Team
from mascope.diagnosis import DETECTORS, JudgeConfig, ajudge_many, detect
from mascope.models import OpenAIModel, RetryPolicy, ScriptedModel
from mascope.taxonomy import MAST
from mascope.traces import TraceStore

ROOT = Path(__file__).resolve().parents[1]
LATENCY = 0.3


def judge_answer() -> str:
    return json.dumps(
        {
            "summary": "s",
            "task_completed": False,
            "modes": {
                m: {"present": False, "evidence_steps": [], "rationale": "r"} for m in MAST.mode_ids
            },
        }
    )


def throughput(concurrency: int, runs: int, waves: int = 3) -> tuple[list[float], list[float]]:
    """Fractions of ideal, and this process's CPU milliseconds per run judged (the
    event loop and its worker threads; the server is another process), for batches
    of `waves` x `concurrency` runs (at least 8)."""
    fractions, cpu_ms = [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp, slow_server(Path(tmp)) as url:
            store = TraceStore(Path(tmp) / "t.db")
            n = max(8, waves * concurrency)
            ids = []
            for i in range(n):
                rid = store.start_run(team="t", task=f"task {i}")
                store.append_step(rid, agent="a", content="a step")
                store.finish_run(rid, status="failed")
                ids.append(rid)
            model = OpenAIModel("judge", base_url=url, retry=RetryPolicy(max_retries=0))
            started, cpu = time.perf_counter(), time.process_time()
            report = asyncio.run(
                ajudge_many(
                    store,
                    ids,
                    config=JudgeConfig(model="openai:judge"),
                    concurrency=concurrency,
                    model=model,
                )
            )
            elapsed = time.perf_counter() - started
            cpu_ms.append(1000 * (time.process_time() - cpu) / n)
            assert report.judged == n, (report.stopped, list(report.failures.values())[:1])
            fractions.append((n / elapsed) / (concurrency / LATENCY))
            store.close()
    return fractions, cpu_ms


@contextlib.contextmanager
def slow_server(folder: Path, latency: float = LATENCY) -> Iterator[str]:
    """The loopback server in its own process, so it does not share our GIL; its URL."""
    answer = folder / "answer.json"
    answer.write_text(judge_answer())
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.models.servers", "--latency", str(latency), "--answer-file", str(answer)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stdin is not None
    try:
        yield proc.stdout.readline().strip()
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)


# -- detectors on scenario runs -------------------------------------------------------


def scenarios() -> list[tuple[str, Any, str, str | None, set[str]]]:
    """(name, team factory, task, ground truth, the modes the run really has)."""

    def solver_checker(solver_replies: list[str], verdicts: list[str], rounds: int = 3) -> Team:
        model = ScriptedModel(
            [x for pair in zip(solver_replies, verdicts, strict=False) for x in pair]
        )
        team = Team.from_yaml(ROOT / "examples" / "solver_checker.yaml")
        for agent in team.agents.values():
            agent.model = model  # the solver and the checker both answer from the script
        team.verifiers["checker"]._model_ref = model  # type: ignore[attr-defined]
        team.spec.topology.stages[0].max_rounds = rounds  # type: ignore[union-attr]
        return team

    ok = '{"passed": true, "score": 1.0, "feedback": "correct"}'
    no = '{"passed": false, "score": 0.0, "feedback": "recount the muffins"}'
    return [
        ("correct answer, checked", lambda: solver_checker(["24-9-7=8\nANSWER: 8"], [ok]), "muffins", "8", set()),
        ("checker passes a wrong answer", lambda: solver_checker(["24-9=15\nANSWER: 15"], [ok]), "muffins", "8", {"FM-3.3"}),
        ("fixed after feedback", lambda: solver_checker(["ANSWER: 15", "24-9-7=8\nANSWER: 8"], [no, ok]), "muffins", "8", set()),
        ("same wrong answer after feedback", lambda: solver_checker(["ANSWER: 15", "ANSWER: 15", "ANSWER: 15"], [no, no, no]), "muffins", "8", {"FM-2.5", "FM-1.3"}),
        ("chat that never concludes", lambda: Team("chat", [Agent("a", fn=lambda c: f"idea {len(c.transcript)}"), Agent("b", fn=lambda c: f"hmm {len(c.transcript)}")], topology="group_chat", termination={"max_rounds": 3}), "name it", None, {"FM-1.5", "FM-3.2"}),
        ("chat repeating itself", lambda: Team("chat", [Agent("a", fn=lambda c: "We should look at the budget first."), Agent("b", fn=lambda c: "FINAL ANSWER: ok" if len(c.transcript) > 4 else "Agreed, the budget.")], topology="group_chat", termination={"max_rounds": 5, "stop_phrase": "FINAL ANSWER:"}), "plan", None, {"FM-1.3", "FM-3.2"}),
        ("unverified pipeline", lambda: Team("p", [Agent("w", fn=lambda c: "a draft"), Agent("e", fn=lambda c: "edited draft")]), "write", None, {"FM-3.2"}),
        ("out-of-role tool call", lambda: _tool_team(), "add", None, {"FM-1.2", "FM-3.2"}),
    ]  # fmt: skip


def _tool_team() -> Team:
    from mascope.models import ScriptedReply, ToolCall

    def add(a: int, b: int) -> int:
        """Add."""
        return a + b

    def wipe(path: str) -> str:
        """Forbidden."""
        return "wiped"

    model = ScriptedModel(
        [ScriptedReply(tool_calls=[ToolCall(id="1", name="wipe", arguments={"path": "/"})]), "5"]
    )
    return Team(
        "tools",
        [
            Agent("solver", tools=[add], model=model),
            Agent("janitor", tools=[wipe], fn=lambda c: "x"),
        ],
        stages=["solver"],
    )


def detector_scores() -> tuple[dict[str, dict[str, float]], int]:
    rows: dict[str, dict[str, int]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        store = TraceStore(Path(tmp) / "d.db")
        cases = scenarios()
        for _, factory, task, truth, expected in cases:
            team = factory()
            team._store = store
            result = team.run(task, ground_truth=truth)
            found = {
                f.mode for f in detect(store.get_run(result.run_id), store.steps(result.run_id))
            }
            for mode in MAST.mode_ids:
                r = rows.setdefault(mode, {"tp": 0, "fp": 0, "fn": 0})
                if mode in found and mode in expected:
                    r["tp"] += 1
                elif mode in found:
                    r["fp"] += 1
                elif mode in expected:
                    r["fn"] += 1
        store.close()
    out = {}
    for mode, r in rows.items():
        if r["tp"] + r["fp"] + r["fn"] == 0:
            continue
        p = r["tp"] / (r["tp"] + r["fp"]) if r["tp"] + r["fp"] else float("nan")
        rec = r["tp"] / (r["tp"] + r["fn"]) if r["tp"] + r["fn"] else float("nan")
        out[mode] = {"precision": p, "recall": rec, **r}
    return out, len(cases)


def local_vs_humans() -> dict[str, Any]:
    from mascope.evals import aevaluate_mast, mast_eval_dict

    file = ROOT.parent / "shared" / "datasets" / "mast" / "mad_human_sample_4records.json"
    result = asyncio.run(aevaluate_mast(file, JudgeConfig(model="local")))
    return mast_eval_dict(result)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-local", action="store_true")
    parser.add_argument("--write", type=Path)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument(
        "--throughput-only", action="store_true", help="measure the batch only (print, no --write)"
    )
    parser.add_argument(
        "--waves", type=int, default=3, help="runs per batch, in multiples of the concurrency"
    )
    parser.add_argument(
        "--long-waves",
        type=int,
        default=20,
        help="a longer batch at the highest concurrency (0: none)",
    )
    args = parser.parse_args()

    measured = {c: throughput(c, args.runs, args.waves) for c in args.concurrency}
    top = max(args.concurrency)
    long = throughput(top, args.runs, args.long_waves) if args.long_waves else None
    tput = {c: median(f) for c, (f, _) in measured.items()}
    cpu = {c: median(ms) for c, (_, ms) in measured.items()}
    print("throughput fraction of ideal:", {c: round(v, 3) for c, v in tput.items()})
    print("CPU ms per run judged:", {c: round(v, 1) for c, v in cpu.items()})
    if long is not None:
        print(
            f"concurrency {top}, {args.long_waves * top} runs: fraction {median(long[0]):.3f}, CPU ms {median(long[1]):.1f}"
        )
    if args.throughput_only:
        for c, (f, ms) in measured.items():
            print(
                f"concurrency {c}: fractions {[round(x, 3) for x in f]}, CPU ms {[round(x, 1) for x in ms]}"
            )
        return
    scores, cases = detector_scores()
    print("detectors:", json.dumps(scores, default=str))
    local = None if args.skip_local else local_vs_humans()
    if local:
        print("local judge:", json.dumps(local["pooled"]), "humans", local["humans_kappa"])

    if args.write:
        fmt = lambda x: "-" if x is None or x != x else f"{x:.2f}"  # noqa: E731
        lines = [
            "## Diagnosis",
            "",
            f"On {machine()}. Reproduce: `.venv/bin/python benchmarks/bench_judge.py --write docs/benchmarks.md`.",
            "",
            f"Judge batch throughput against a loopback OpenAI-compatible server answering every request after {int(LATENCY * 1000)} ms "
            f"(batches of max(8, {args.waves} x concurrency) runs, one request each; median of {args.runs}), as a fraction of the ideal concurrency / latency:",
            "",
            "| concurrency | runs per batch | fraction of ideal | CPU ms per run judged |",
            "| ---: | ---: | ---: | ---: |",
            *(
                f"| {c} | {max(8, args.waves * c)} | {v:.2f} | {cpu[c]:.1f} |"
                for c, v in tput.items()
            ),
            *(
                [
                    f"| {top} | {args.long_waves * top} | {median(long[0]):.2f} | {median(long[1]):.1f} |"
                ]
                if long is not None
                else []
            ),
            "",
            f"Rule detectors on {cases} runs of the example teams driven by scripted models and function agents, each scenario built to have known failure modes (so these are checks of the detectors against planted truth, not against human judgement):",
            "",
            "| mode | detector | precision | recall | tp | fp | fn |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        detector_of = {
            m: [n for n, d in DETECTORS.items() if d.__doc__ and m in d.__doc__] for m in scores
        }
        for mode, r in sorted(scores.items()):
            lines.append(
                f"| {mode} | {', '.join(detector_of[mode]) or '-'} | {fmt(r['precision'])} | {fmt(r['recall'])} | {r['tp']} | {r['fp']} | {r['fn']} |"
            )
        if local:
            p = local["pooled"]
            lines += [
                "",
                f"The embedded SmolLM2-135M as the MAST judge on the human-labelled sample ({local['traces']} traces, {p['n']} trace-mode pairs; "
                "human reference = majority of the three annotators; 95% intervals):",
                "",
                "| judge | accuracy | precision | recall | F1 | Cohen's kappa |",
                "| --- | ---: | ---: | ---: | ---: | ---: |",
                f"| SmolLM2-135M (mascope `local`) | {fmt(p['accuracy'])} [{fmt(p['accuracy_ci'][0])}, {fmt(p['accuracy_ci'][1])}] | {fmt(p['precision'])} | {fmt(p['recall'])} | {fmt(p['f1'])} | {fmt(p['kappa'])} [{fmt(p['kappa_ci'][0])}, {fmt(p['kappa_ci'][1])}] |",
                "| o1, few-shot (published, MAST paper) | 0.94 | 0.83 | 0.77 | 0.80 | 0.77 |",
                "| o1, definitions only (published) | | | | | 0.58 |",
                f"| human annotators on this sample (mean pairwise) | | | | | {fmt(local['humans_kappa'])} |",
                "| human annotators (published) | | | | | 0.88 |",
                "",
                "A 135M-parameter model cannot do this task: it marks nearly every mode present. The number is printed so nobody mistakes the embedded model for a judge; use `--model openai:...` for real labelling.",
            ]
        write_section(args.write, "diagnosis", "\n".join(lines))


if __name__ == "__main__":
    main()
