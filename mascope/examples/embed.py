"""Embedding a mascope team in an app: function agents and a model agent, in Python.

.venv/bin/python examples/embed.py
"""

from mascope import Agent, Team
from mascope.agents import TurnContext, VerifyContext


def extract_numbers(ctx: TurnContext) -> str:
    """A function agent: no model, just Python."""
    import re

    return " ".join(re.findall(r"\d+", ctx.task))


def sum_is_right(candidate: str, ctx: VerifyContext) -> tuple[bool, str]:
    numbers = [int(n) for n in ctx.outputs.get("reader", "").split()]
    expected = numbers[0] - sum(numbers[1:])
    return (str(expected) in candidate, f"the answer should be {expected}")


reader = Agent("reader", role="number reader", fn=extract_numbers)
solver = Agent(
    "solver",
    role="arithmetic solver",
    instructions='Use the numbers the reader found. End with "ANSWER: <number>".',
    max_tokens=120,
)
team = Team(
    "embedded-math",
    [reader, solver],
    stages=["reader", {"agent": "solver", "verifier": "check", "max_rounds": 2}],
    verifiers={"check": sum_is_right},
    model="local",
)

if __name__ == "__main__":
    result = team.run(
        "There were 20 apples; 6 were eaten and 3 were sold. How many are left?", ground_truth="11"
    )
    print(result.status, result.answer, f"(run {result.run_id}, {result.total_tokens} tokens)")
    for step in result.steps:  # read from the trace store on first use
        print(f"{step.index:>3} {step.agent} ({step.kind}): {step.content[:60]!r}")
