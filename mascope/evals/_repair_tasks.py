"""Seeded tasks with exact answers, and the embedded-model teams that attempt them.

The repair-rate benchmark needs real failures that are not certain: a team
of SmolLM2 agents, sampling at a temperature where a task is solved some of
the time, on tasks whose ground truth is exact. Arithmetic word problems go
to the demo team (`solver_checker.yaml`) and to a solver-reviewer pipeline;
small function-writing tasks go to the agents of `planner_coder_tester.yaml`,
whose final code is scored by hidden tests (`code_passes`, the team's
`scoring: function:`).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mascope.graphs import Team, load_team_file, parse_team
from mascope.traces import TraceStore

SHAPES = ("solver-checker", "solver-reviewer", "planner-coder-tester")
DEFAULT_TEMPERATURE = 0.8
"""The generated teams' sampling temperature: at the local default (0.2) SmolLM2
answers a task nearly the same way every time, so a failure could not be repaired
by anything but a correction, and a re-run from scratch would tell nothing."""

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@dataclass(frozen=True)
class RepairTask:
    """One generated task: which team attempts it, what it says, the exact answer."""

    id: str
    shape: str
    task: str
    ground_truth: str


def _arithmetic(rng: random.Random) -> tuple[str, str]:
    a, b = rng.randint(2, 19), rng.randint(2, 9)
    templates = [
        (f"What is {a} + {b}?", a + b),
        (f"What is {a + b} - {b}?", a),
        (f"What is {min(a, 9)} * {b}?", min(a, 9) * b),
        (f"Tom has {a} apples and buys {b} more. How many apples does he have now?", a + b),
        (f"A box holds {a + b} pencils. {b} are taken out. How many pencils are left?", a),
        (f"There are {b} rows of {min(a, 9)} chairs. How many chairs are there?", b * min(a, 9)),
        (f"Sara reads {b} pages a day for {min(a, 9)} days. How many pages does she read?", b * min(a, 9)),
    ]  # fmt: skip
    text, answer = rng.choice(templates)
    return text, str(answer)


def _function(rng: random.Random) -> tuple[str, str]:
    k = rng.randint(2, 9)
    templates: list[tuple[str, str, list[tuple[str, Any]]]] = [
        (f"add_{k}(x) that returns x plus {k}", f"add_{k}", [(f"add_{k}({x})", x + k) for x in (0, 5, -3)]),
        (f"times_{k}(x) that returns x multiplied by {k}", f"times_{k}", [(f"times_{k}({x})", x * k) for x in (0, 3, -2)]),
        (f"is_multiple_of_{k}(n) that returns True when n is divisible by {k} and False otherwise",
         f"is_multiple_of_{k}", [(f"is_multiple_of_{k}({n})", n % k == 0) for n in (k, 2 * k, k + 1, 1)]),
        (f"first_{k}(items) that returns the first {k} elements of the list items",
         f"first_{k}", [(f"first_{k}({list(range(12))!r})", list(range(k))), (f"first_{k}([])", [])]),
        ("square(x) that returns x times x", "square", [(f"square({x})", x * x) for x in (k, -k, 0)]),
        ("reverse(s) that returns the string s reversed", "reverse", [(f"reverse({s!r})", s[::-1]) for s in ("abc" * (k % 3 + 1), "", "mascope")]),
    ]  # fmt: skip
    text, _name, cases = rng.choice(templates)
    tests = "\n".join(f"assert {call} == {expected!r}" for call, expected in cases)
    return f"Write a Python function {text}.", tests


def make_tasks(seed: int, shapes: tuple[str, ...] = SHAPES) -> Iterator[RepairTask]:
    """An endless, seeded stream of tasks, the shapes taken in turn."""
    rng = random.Random(seed)
    i = 0
    while True:
        shape = shapes[i % len(shapes)]
        text, truth = _function(rng) if shape == "planner-coder-tester" else _arithmetic(rng)
        yield RepairTask(f"{shape}-{seed}-{i}", shape, text, truth)
        i += 1


def code_passes(answer: str, ground_truth: str) -> tuple[bool, str]:
    """Scoring for function-writing tasks: the final code passes the hidden asserts."""
    from mascope.agents import extract_code, run_tests

    result = run_tests(extract_code(answer), ground_truth, timeout_s=10)
    if result.ok:
        return True, f"{result.passed} hidden check(s) passed"
    why = (result.errors or [result.stderr.strip() or "failed"])[0]
    return False, f"hidden checks failed: {why}"[:300]


def team_spec(shape: str, *, temperature: float = DEFAULT_TEMPERATURE) -> dict[str, Any]:
    """The spec of the team for `shape`, every agent at `temperature`."""
    if shape == "planner-coder-tester":
        data = load_team_file(EXAMPLES / "planner_coder_tester.yaml").dump()
        # The example ends with the tester, so its final answer would be the
        # tests; the hidden check needs the code. Same agents and verifier,
        # with the tests written first and the coder's code as the answer.
        data["topology"]["stages"] = [
            "planner",
            "tester",
            {"agent": "coder", "verifier": "unit_tests", "max_rounds": 3},
        ]
        data["scoring"] = {"function": f"{__name__}:code_passes"}
    else:
        data = load_team_file(EXAMPLES / "solver_checker.yaml").dump()
        if shape == "solver-reviewer":
            data["name"] = "solver-reviewer"
            data["description"] = (
                "A solver works the problem out; a reviewer rechecks it and answers."
            )
            data["verifiers"] = {}
            data["agents"].append(
                {
                    "name": "reviewer",
                    "role": "reviewer",
                    "goal": "Recheck the solver's working and give the final answer.",
                    "instructions": 'Redo each calculation from the task. End with a last line of the form "ANSWER: <number>".',
                    "max_tokens": 200,
                }
            )
            data["topology"] = {"kind": "pipeline", "stages": ["solver", "reviewer"]}
        elif shape != "solver-checker":
            raise ValueError(f"unknown shape {shape!r}")
        # Exact: the last number the team states is its answer (the default,
        # "the truth appears somewhere", passes working that merely mentions it).
        data["scoring"] = {"match": "numeric", "extract": "last_number"}
    for agent in data["agents"]:
        agent["temperature"] = temperature
    return data


def build_team(
    shape: str,
    *,
    store: TraceStore,
    temperature: float = DEFAULT_TEMPERATURE,
    model: str | None = None,
) -> Team:
    """The team for `shape`, recording into `store` (`model` overrides `local`)."""
    spec = parse_team(team_spec(shape, temperature=temperature), source=f"repair team {shape}")
    return Team.from_spec(spec, store=store, model=model, base_dir=EXAMPLES)


__all__ = [
    "DEFAULT_TEMPERATURE",
    "SHAPES",
    "RepairTask",
    "build_team",
    "code_passes",
    "make_tasks",
    "team_spec",
]
