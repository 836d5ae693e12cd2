"""Reliability: kills survived, malformed inputs refused cleanly, secrets kept off disk,
injection attempts that changed a prompt's structure.

    .venv/bin/python benchmarks/bench_reliability.py --write docs/benchmarks.md

Kill trials: an eight-stage team of function agents (each turn sleeps ~0.1 s) is run
by `mascope run` in a real subprocess and SIGKILLed after a random number of recorded
steps, at a random moment in the next turn (a third of the trials kill the resume
too), then `mascope runs resume` finishes it. A step recorded
before a kill that is missing or changed afterwards is lost; an agent turn present
twice in the final trace is duplicated.

The other rows are counted by the tests that try the inputs (tests/reliability.py):
this script runs those tests with MASCOPE_RELIABILITY_OUT set and adds up their tallies.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine, write_section

from mascope.traces import TraceStore

ROOT = Path(__file__).resolve().parents[1]
STAGES = "abcdefgh"
# The tests whose tallies make up the table (each calls tests.reliability.tally).
TALLY_TESTS = [
    "tests/test_fuzz.py",
    "tests/test_secrets.py",
    "tests/diagnosis/test_fence.py",
]


def _cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "mascope.cli", *args],
        env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip


def _snapshot(db: Path) -> list[tuple[int, str, str, str, int]]:
    """(index, agent, kind, content, steps a resume event discarded) for each step."""
    if not db.exists():
        return []
    with TraceStore(db) as store:
        runs = store.list_runs()
        if not runs:
            return []
        return [
            (s.index, s.agent, s.kind, s.content, int((s.data or {}).get("discarded_steps", 0)))
            for s in store.steps(runs[0].id)
        ]


def _step_count(db: Path) -> int:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        try:
            return int(con.execute("SELECT count(*) FROM steps").fetchone()[0])
        finally:
            con.close()
    except sqlite3.Error:
        return 0  # not created yet, or busy


def _kill_after_steps(
    proc: subprocess.Popen[bytes], db: Path, steps: int, rng: random.Random
) -> None:
    """SIGKILL `proc` once the store holds `steps` steps, a random moment into the next turn."""
    deadline = time.monotonic() + 120
    while proc.poll() is None and _step_count(db) < steps and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(rng.uniform(0, 0.12))  # anywhere in the next turn (each sleeps 0.1 s)
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait()


def kill_trial(rng: random.Random, work: Path) -> dict[str, int]:
    team = work / "team.yaml"
    team.write_text(
        yaml.safe_dump(
            {
                "name": "eight",
                "agents": [
                    {"name": n, "function": "_reliability_agents:slow_counter"} for n in STAGES
                ],
                "topology": {"kind": "pipeline", "stages": list(STAGES)},
            }
        )
    )
    db = work / "k.db"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "benchmarks")]),
        "MASCOPE_BENCH_LOG": str(work / "calls.log"),
        "MASCOPE_BENCH_SLEEP": "0.1",
    }
    kills = 0
    proc = _cli("run", str(team), "--task", "count", "--db", str(db), env=env, cwd=work)
    _kill_after_steps(proc, db, rng.randint(1, len(STAGES) - 1), rng)
    kills += proc.returncode == -signal.SIGKILL
    before = _snapshot(db)
    # A kill that landed while agents were at work, not before the run began or after it ended.
    mid_run = int(0 < sum(1 for step in before if step[2] == "message") < len(STAGES))
    lost = dup = discarded = 0
    if db.exists():
        with TraceStore(db) as store:
            runs = store.list_runs()
        if runs and runs[0].status == "running":
            run_id = runs[0].id
            if rng.random() < 1 / 3:  # kill the resume as well
                again = _cli("runs", "resume", run_id, "--db", str(db), env=env, cwd=work)
                _kill_after_steps(again, db, len(before) + rng.randint(1, 3), rng)
                kills += again.returncode == -signal.SIGKILL
                before = _snapshot(db)  # what the second kill must not lose
            final = _cli("runs", "resume", run_id, "--db", str(db), env=env, cwd=work)
            final.wait(timeout=120)
        after = _snapshot(db)
        # Steps of the node a kill interrupted (written before its checkpoint) are
        # discarded on resume, said so in a resume event, and redone: not lost.
        redone = sum(step[4] for step in after if step not in before)
        missing = sum(1 for step in before if step not in after)
        lost = max(0, missing - redone)
        discarded += min(missing, redone)
        turns = [agent for _, agent, kind, _, _ in after if kind == "message"]
        dup = len(turns) - len(set(turns))
        if runs and sorted(set(turns)) != list(STAGES):
            lost += len(set(STAGES) - set(turns))
    return {
        "kills": kills,
        "mid_run": mid_run,
        "lost": lost,
        "duplicated": dup,
        "redone": discarded,
    }


def run_kills(trials: int, seed: int) -> dict[str, int]:
    rng = random.Random(seed)
    total = {"trials": trials, "kills": 0, "mid_run": 0, "lost": 0, "duplicated": 0, "redone": 0}
    for i in range(trials):
        with tempfile.TemporaryDirectory() as tmp:
            result = kill_trial(rng, Path(tmp))
        for key, value in result.items():
            total[key] += value
        print(f"kill trial {i + 1}/{trials}: {result}", file=sys.stderr)
    return total


def run_tallies() -> dict[str, dict[str, int]]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "tallies.jsonl"
        tests = [t for t in TALLY_TESTS if (ROOT / t).exists()]
        if not tests:
            return {}
        subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests],
            cwd=ROOT, env={**os.environ, "MASCOPE_RELIABILITY_OUT": str(out)}, check=True,
        )  # fmt: skip
        totals: dict[str, dict[str, int]] = defaultdict(lambda: {"tried": 0, "bad": 0})
        for line in out.read_text().splitlines() if out.exists() else []:
            row = json.loads(line)
            totals[row["metric"]]["tried"] += row["tried"]
            totals[row["metric"]]["bad"] += row["bad"]
    return dict(totals)


def render(kills: dict[str, int], tallies: dict[str, dict[str, int]], command: str) -> str:
    lines = [
        f"Measured on {machine()} with `{command}`.",
        "",
        "| what | tried | went wrong | target |",
        "| --- | ---: | ---: | --- |",
        f"| kill-and-resume trials ({kills['kills']} SIGKILLs, {kills['mid_run']} trials "
        "killed while agents were at work): steps lost / duplicated "
        f"| {kills['trials']} | {kills['lost']} / {kills['duplicated']} | 0 / 0 |",
        f"| steps of an interrupted node discarded on resume (said so in the trace) and redone "
        f"| {kills['trials']} | {kills['redone']} | by design |",
    ]
    labels = {
        "malformed-input": ("malformed inputs without a clean one-line error (exit 2, no traceback, nothing written)", "0"),
        "secrets": ("planted secrets found on disk or on stdout/stderr", "0"),
        "injection": ("hostile traces (fence tags in any case and spacing, forged `Step N` lines, in task, names and contents) whose judge or attribution prompts changed structure", "0"),
    }  # fmt: skip
    for metric, (label, target) in labels.items():
        row = tallies.get(metric)
        if row is None:
            lines.append(f"| {label} | not measured | | {target} |")
        else:
            lines.append(f"| {label} | {row['tried']} | {row['bad']} | {target} |")
    for metric, row in sorted(tallies.items()):
        if metric not in labels:
            lines.append(f"| {metric} | {row['tried']} | {row['bad']} | 0 |")
    lines += [
        "",
        "Before this round (issue 11, measured from outside and by the same tests on the old "
        "code): 79 of 98 malformed inputs got a clean error; the secret scan found 12 of 15 "
        "planted secrets on disk (store, checkpoint database, every export) and 8 on the "
        "terminal; 3,524 of 4,000 hostile traces changed the judge's prompt structure. Kill "
        "and resume already lost and duplicated nothing.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--write", type=Path, help="write the table into this markdown file")
    args = parser.parse_args()
    kills = run_kills(args.trials, args.seed)
    tallies = run_tallies()
    command = "python benchmarks/bench_reliability.py --write docs/benchmarks.md"
    table = render(kills, tallies, command)
    print(table)
    if args.write:
        write_section(args.write, "reliability", "## Reliability\n\n" + table)


if __name__ == "__main__":
    main()
