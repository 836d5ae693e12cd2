"""Test-time strategies: wall time of n concurrent draws against a slow endpoint.

A team of one solver on the openai backend, pointed at a loopback
OpenAI-compatible server that answers every request after 300 ms, runs one
self-consistency stage of n = 16 draws, with the stage's `concurrency` at 16
(all at once), 4 (the default) and 1 (one after another, as before). The ideal
is ceil(n / concurrency) round trips.

    .venv/bin/python benchmarks/bench_strategies.py [--runs 3] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _report import machine, median, write_section

from mascope import Agent, Team
from mascope.models import OpenAIModel, RetryPolicy

ROOT = Path(__file__).resolve().parents[1]
LATENCY = 0.3
N = 16


def timed(url: str, db: Path, concurrency: int) -> float:
    model = OpenAIModel("solver", base_url=url, retry=RetryPolicy(max_retries=0))
    team = Team(
        "sc",
        [Agent("solver", model=model)],
        stages=[{"agent": "solver", "strategy": {"kind": "self_consistency", "n": N, "concurrency": concurrency}}],
        store=db,
    )  # fmt: skip
    started = time.perf_counter()
    result = team.run("What is 2 + 3?")
    elapsed = time.perf_counter() - started
    assert result.status != "error", result
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    levels = [16, 4, 1]
    seconds: dict[int, list[float]] = {c: [] for c in levels}
    with tempfile.TemporaryDirectory() as tmp:
        answer = Path(tmp) / "answer.txt"
        answer.write_text("2 + 3 = 5\nANSWER: 5")
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.models.servers", "--latency", str(LATENCY), "--answer-file", str(answer)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
        )  # fmt: skip
        assert proc.stdout is not None and proc.stdin is not None
        url = proc.stdout.readline().strip()
        try:
            timed(url, Path(tmp) / "warm.db", 4)
            for i in range(args.runs):  # the levels alternate, so a busy moment hits each alike
                for c in levels:
                    seconds[c].append(timed(url, Path(tmp) / f"r{i}-{c}.db", c))
        finally:
            proc.stdin.close()
            proc.wait(timeout=30)
    rows = []
    for c in levels:
        ideal = math.ceil(N / c) * LATENCY
        med = median(seconds[c])
        rows.append(
            f"| {c} | {med:.2f} | {ideal:.1f} | {med / LATENCY:.1f} | {median(seconds[1]) / med:.1f}x |"
        )
        print(f"concurrency {c}: {med:.2f} s (ideal {ideal:.1f} s)")
    body = "\n".join([
        "## Test-time strategies: concurrent draws",
        "",
        f"On {machine()}. A self-consistency stage of n = {N} draws by one solver on the openai backend, against a loopback "
        f"server that answers every request after {int(LATENCY * 1000)} ms (its own process), by the stage's `concurrency`; "
        f"the whole run, median of {args.runs}. Reproduce: `.venv/bin/python benchmarks/bench_strategies.py --write docs/benchmarks.md`.",
        "",
        "| concurrency | run wall time, s | ideal, s | round trips | speed-up over one at a time |",
        "| ---: | ---: | ---: | ---: | ---: |",
        *rows,
    ])  # fmt: skip
    if args.write:
        write_section(args.write, "strategies", body)


if __name__ == "__main__":
    main()
