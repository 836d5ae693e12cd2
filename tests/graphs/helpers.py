"""Importable function agents and verifiers for team tests (YAML teams and subprocesses
name them as tests.graphs.helpers:NAME)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from mascope.agents import TurnContext


def counter(ctx: TurnContext) -> str:
    """Says how many messages it has seen; logs each call when MASCOPE_TEST_LOG is set."""
    log = os.environ.get("MASCOPE_TEST_LOG")
    n = sum(1 for e in ctx.transcript if e.kind == "message")
    if log:
        with open(log, "a") as fh:
            fh.write(f"{ctx.agent} {n}\n")
    pause_at = os.environ.get("MASCOPE_TEST_PAUSE_AT")
    if (
        pause_at is not None
        and n == int(pause_at)
        and not Path(os.environ["MASCOPE_TEST_PAUSED"]).exists()
    ):
        Path(os.environ["MASCOPE_TEST_PAUSED"]).write_text("paused")
        time.sleep(120)  # the test kills us here
    return f"{ctx.agent} saw {n}"


def echo_task(ctx: TurnContext) -> str:
    return ctx.task


def wrong_then_right(ctx: TurnContext) -> str:
    return "ANSWER: 5" if ctx.feedback else "ANSWER: 6"


def always_wrong(ctx: TurnContext) -> str:
    return "ANSWER: 6"


def is_five(candidate: str) -> tuple[bool, str]:
    return ("5" in candidate, "" if "5" in candidate else "2 + 3 is not 6; recount")


def same_first_word(answer: str, ground_truth: str) -> bool:
    """A scoring function: the answer's first word is the ground truth."""
    words = answer.split()
    return bool(words) and words[0].strip(".,").lower() == ground_truth.lower()


def lookup(city: str) -> str:
    """A tool: a fact about a city."""
    return f"{city} has a tall tower"


async def uses_lookup(ctx: TurnContext) -> str:
    """A function agent that calls the lookup tool once."""
    return await ctx.call_tool("lookup", city="Paris")


def asks_for_a_name(ctx: TurnContext) -> str:
    """A function agent that asks a person, inside its own `except Exception`."""
    from mascope.graphs import ask_human

    log = os.environ.get("MASCOPE_TEST_LOG")
    if log:
        with open(log, "a") as fh:
            fh.write(f"{ctx.agent}\n")
    try:
        name = ask_human("Whose name goes on the report?")
    except Exception:  # the pause must get past a user's own handler
        return "swallowed"
    return f"report by {name}"


def repeats_human(ctx: TurnContext) -> str:
    """Says what the person last replied (the state's outputs) and what it saw last."""
    last = ctx.transcript[-1] if ctx.transcript else None
    seen = f"{last.agent}: {last.content}" if last else "-"
    return f"{ctx.agent} heard {ctx.outputs.get('human', '-')!r}; last {seen}"
