"""How often a team solves a task: the success rate that decides whether re-roll
search, repair rates or the demo can measure anything on a given model.

Each run is scored twice: by the team's own scoring, and by "the expected answer
is mentioned anywhere" (the lenient default), so a task whose "successes" are
mere mentions shows up.

    .venv/bin/python benchmarks/bench_task_rate.py mascope/examples/solver_checker.yaml \
        --runs 10 "What is 23 + 14?=37" "What is 12 * 4?=48"
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from mascope.agents import match_answer
from mascope.graphs import Team, load_team_file
from mascope.traces import TraceStore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("team", type=Path)
    parser.add_argument("tasks", nargs="+", help="TASK=EXPECTED")
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, TraceStore(Path(tmp) / "rate.db") as store:
        team = Team.from_spec(load_team_file(args.team), store=store, source=str(args.team))
        for spec in args.tasks:
            task, _, expected = spec.rpartition("=")
            scored = mentioned = 0
            for _ in range(args.runs):
                result = team.run(task, ground_truth=expected)
                scored += result.succeeded
                mentioned += match_answer(result.answer or "", expected, extract="all").matched
            print(
                f"{task!r}: right {scored}/{args.runs} by the team's scoring, "
                f"{mentioned}/{args.runs} if any mention counted",
                flush=True,
            )


if __name__ == "__main__":
    main()
