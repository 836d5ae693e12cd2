"""Planted failures: teams that succeed, and the same teams with one fault injected.

Every team here is made of deterministic function agents and verifiers that
solve their task when nothing is wrong. A `Fault` makes one agent misbehave
at one of its turns (a wrong value, a skipped verification, a repeated step,
an ignored message, a premature stop, an out-of-role tool call), so the
agent and step that decided the failure, and its MAST mode, are known
exactly. By default the faults are deterministic: re-running the team from a
step before the fault meets the same fault again, as a systematic mistake
would; re-running it from the fault with that step corrected does not. With a
fault rate P the faulty turn goes wrong with probability P each time it runs
(a seeded draw made by the agent itself), as a real model's mistakes do, so a
re-roll from the fault or before it succeeds with probability 1 - P.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from itertools import zip_longest
from pathlib import Path
from typing import Any, Literal, get_args

from mascope.agents import Agent, AgentFn, TurnContext, VerifyContext, sampling
from mascope.graphs import Team
from mascope.traces import TraceStore

FaultKind = Literal[
    "wrong-value",
    "skipped-verification",
    "repeated-step",
    "ignored-message",
    "premature-stop",
    "out-of-role",
]
FAULT_KINDS: tuple[FaultKind, ...] = get_args(FaultKind)
FAULT_MODES: dict[str, str] = {
    "wrong-value": "FM-1.1",  # the output no longer meets the task's specification
    "skipped-verification": "FM-3.2",
    "repeated-step": "FM-1.3",
    "ignored-message": "FM-2.5",
    "premature-stop": "FM-3.1",
    "out-of-role": "FM-1.2",
}
SHAPES = ("relay", "review", "chat")
STOP = "FINAL ANSWER:"


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    agent: str
    turn: int = 0
    """Which of the agent's own turns (0-based) goes wrong."""
    rate: float | None = None
    """Probability that the turn goes wrong each time it runs (None: every time)."""
    seed: int = 0
    """Seed of the draws when `rate` is set."""

    @property
    def mode(self) -> str:
        return FAULT_MODES[self.kind]


@dataclass(frozen=True)
class Case:
    id: str
    shape: str
    numbers: tuple[int, ...]
    fault: Fault

    @property
    def task(self) -> str:
        return f"Add up these numbers: {', '.join(map(str, self.numbers))}."

    @property
    def ground_truth(self) -> str:
        return str(sum(self.numbers))


# -- tools ------------------------------------------------------------------------


def add(numbers: list[int]) -> int:
    """Add a list of whole numbers."""
    return sum(numbers)


def publish(text: str) -> str:
    """Publish the team's answer."""
    return f"published: {text}"


# -- the agents' behaviour ----------------------------------------------------------

_INT = re.compile(r"-?\d+")


def _ints(text: str | None) -> list[int]:
    return [int(t) for t in _INT.findall(text or "")]


def _own_messages(ctx: TurnContext) -> list[str]:
    return [e.content for e in ctx.transcript if e.agent == ctx.agent and e.kind == "message"]


class _Trigger:
    """Decides whether the fault fires at a turn: always, or with probability `rate`.

    The draws live here, inside the team's agents, so every re-run of the
    faulty turn draws again. Each draw is keyed by what the agent has seen and
    by how often it has seen it, so the same re-runs get the same draws in
    whatever order they run (replays run concurrently).
    """

    def __init__(self, fault: Fault | None):
        self.fault = fault
        self._draws: Counter[str] = Counter()

    @property
    def kind(self) -> FaultKind | None:
        return self.fault.kind if self.fault is not None else None

    def fires(self, agent: str, turn: int, seen: str) -> bool:
        f = self.fault
        if f is None or f.agent != agent or turn != f.turn:
            return False
        if f.rate is None:
            return True
        key = f"{agent}|{turn}|{hashlib.sha256(seen.encode()).hexdigest()[:16]}"
        n = self._draws[key]
        self._draws[key] += 1
        return random.Random(f"{f.seed}|{key}|{n}").random() < f.rate


def _misfires(fault: _Trigger, ctx: TurnContext) -> str | None:
    """The fault's kind when this turn is the faulty one (of this agent) and it fires, else None."""
    seen = ctx.task + "\n" + "\n".join(f"{e.agent}: {e.content}" for e in ctx.transcript)
    return fault.kind if fault.fires(ctx.agent, len(_own_messages(ctx)), seen) else None


def _reader(fault: _Trigger) -> AgentFn:
    def reader(ctx: TurnContext) -> str:
        numbers = _ints(ctx.task)
        if _misfires(fault, ctx) == "wrong-value":
            numbers[len(numbers) // 2] += 1  # misreads one number
        return "numbers: " + " ".join(map(str, numbers))

    return reader


def _adder(fault: _Trigger) -> AgentFn:
    async def adder(ctx: TurnContext) -> str:
        kind = _misfires(fault, ctx)
        numbers = [] if kind == "ignored-message" else _ints(ctx.outputs.get("reader"))
        if kind == "out-of-role":
            refused = await ctx.call_tool("publish", text=" + ".join(map(str, numbers)))
            return f"sum: not computed ({refused})"
        total = int(await ctx.call_tool("add", numbers=numbers))
        return f"sum: {total + 1 if kind == 'wrong-value' else total}"

    return adder


def _reporter(source: str, fault: _Trigger) -> AgentFn:
    async def reporter(ctx: TurnContext) -> str:
        said = "" if _misfires(fault, ctx) == "ignored-message" else ctx.outputs.get(source, "")
        found = _ints(said)
        answer = str(found[-1]) if found and "not computed" not in said else "unknown"
        await ctx.call_tool("publish", text=answer)
        return f"ANSWER: {answer}"

    return reporter


def _solver(fault: _Trigger) -> AgentFn:
    """Drafts carelessly (drops the last number) and fixes it when the check says no."""

    async def solver(ctx: TurnContext) -> str:
        numbers = _ints(ctx.outputs.get("reader"))
        mine = _own_messages(ctx)
        attempt = len(mine) + 1
        kind = _misfires(fault, ctx)
        if kind == "repeated-step" and mine:
            return mine[-1]
        if kind == "out-of-role":
            refused = await ctx.call_tool("publish", text=str(sum(numbers)))
            return f"attempt {attempt}: no sum ({refused})"
        if kind == "ignored-message" or ctx.feedback is None:
            # A first draft, or one written as if the feedback had not been given.
            kept = numbers[1:] if ctx.feedback is not None else numbers[:-1]
            return f"attempt {attempt}: sum = {sum(kept)}"
        total = sum(numbers) + (1 if kind == "wrong-value" else 0)
        return f"attempt {attempt}: sum = {total}"

    return solver


def _check(fault: _Trigger) -> Callable[[str, VerifyContext], tuple[bool, str]]:
    def check(candidate: str, ctx: VerifyContext) -> tuple[bool, str]:
        attempt = _ints(candidate.partition(":")[0])
        seen = f"{ctx.task}\n{sorted(ctx.outputs.items())}\n{candidate}"
        if (
            fault.kind == "skipped-verification"
            and attempt[:1]
            and fault.fires("check", attempt[0] - 1, seen)
        ):
            return True, "looks fine (not checked)"
        numbers = _ints(ctx.outputs.get("reader"))
        claimed = _ints(candidate.partition(":")[2])
        if claimed[-1:] == [sum(numbers)]:
            return True, f"{' + '.join(map(str, numbers))} = {sum(numbers)}"
        return (
            False,
            f"the sum of {numbers} is not {claimed[-1] if claimed else 'given'}; add every number",
        )

    return check


def _worker(fault: _Trigger) -> AgentFn:
    """Adds the next number to the running total; the one who adds the last says so."""

    async def worker(ctx: TurnContext) -> str:
        numbers = _ints(ctx.task)
        said = [e for e in ctx.transcript if e.kind == "message"]
        done = len(said)  # each message so far consumed one number
        kind = _misfires(fault, ctx)
        mine = _own_messages(ctx)
        if kind == "repeated-step" and mine:
            return mine[-1]
        if kind == "ignored-message":
            previous = mine[-1] if mine else ""  # its own stale total, not the last speaker's
        else:
            previous = said[-1].content if said else ""
        total = (_ints(previous.rpartition("is")[2]) or [0])[-1] if previous else 0
        if done >= len(numbers):
            return f"nothing left to add. {STOP} {total}"
        n = numbers[done]
        if kind == "out-of-role":
            refused = await ctx.call_tool("publish", text=str(total))
            return (
                f"could not add {n} ({refused}); running total after {done + 1} numbers is {total}"
            )
        total += n + (1 if kind == "wrong-value" else 0)
        if done + 1 == len(numbers) or kind == "premature-stop":
            return f"added {n}: that is all of them. {STOP} {total}"
        return f"added {n}: running total after {done + 1} numbers is {total}"

    return worker


# -- teams ------------------------------------------------------------------------


def build_team(
    shape: str, *, n_numbers: int, fault: Fault | None, store: TraceStore | str | Path
) -> Team:
    """The team of `shape`, with `fault` injected (None: the team that works)."""
    team = _build_team(shape, n_numbers=n_numbers, fault=_Trigger(fault), store=store)
    if fault is not None and fault.rate is not None:
        # The faulty agent (or verifier) draws its fault: re-runs of it can differ.
        for agent in team.agents.values():
            if agent.name == fault.agent and agent.fn is not None:
                sampling(agent.fn)
        for name, verifier in team.verifiers.items():
            if name == fault.agent and getattr(verifier, "fn", None) is not None:
                sampling(verifier.fn)  # type: ignore[attr-defined]
    return team


def _build_team(
    shape: str, *, n_numbers: int, fault: _Trigger, store: TraceStore | str | Path
) -> Team:
    if shape == "relay":
        agents = [
            Agent("reader", role="reads the numbers out of the task", fn=_reader(fault)),
            Agent("adder", role="adds the numbers with its tool", tools=[add], fn=_adder(fault)),
            Agent("reporter", role="publishes the sum", tools=[publish], fn=_reporter("adder", fault)),
        ]  # fmt: skip
        return Team("planted-relay", agents, tools=[publish], store=store)
    if shape == "review":
        agents = [
            Agent("reader", role="reads the numbers out of the task", fn=_reader(fault)),
            Agent("solver", role="adds the numbers", fn=_solver(fault)),
            Agent("reporter", role="publishes the sum", tools=[publish], fn=_reporter("solver", fault)),
        ]  # fmt: skip
        stages: list[str | dict[str, Any]] = [
            "reader", {"agent": "solver", "verifier": "check", "max_rounds": 2}, "reporter",
        ]  # fmt: skip
        return Team(
            "planted-review", agents, stages=stages, verifiers={"check": _check(fault)},
            tools=[publish], store=store,
        )  # fmt: skip
    if shape == "chat":
        workers = [
            Agent(f"w{i}", role="adds the next number to the running total", fn=_worker(fault))
            for i in (1, 2, 3)
        ]  # fmt: skip
        return Team(
            "planted-chat", workers, topology="group_chat", tools=[publish],
            termination={"stop_phrase": STOP, "max_rounds": n_numbers + 2}, store=store,
        )  # fmt: skip
    raise ValueError(f"unknown shape {shape!r}")


# -- cases ------------------------------------------------------------------------

_COMBOS: dict[str, list[tuple[FaultKind, str, int]]] = {
    "relay": [
        ("wrong-value", "reader", 0),
        ("wrong-value", "adder", 0),
        ("ignored-message", "adder", 0),
        ("out-of-role", "adder", 0),
        ("ignored-message", "reporter", 0),
    ],
    "review": [
        ("wrong-value", "reader", 0),
        ("skipped-verification", "check", 0),
        ("repeated-step", "solver", 1),
        ("ignored-message", "solver", 1),
        ("wrong-value", "solver", 1),
        ("out-of-role", "solver", 1),
        ("ignored-message", "reporter", 0),
    ],
}
_CHAT_KINDS: tuple[FaultKind, ...] = (
    "wrong-value",
    "repeated-step",
    "premature-stop",
    "ignored-message",
    "out-of-role",
)


def make_cases(*, per_combo: int = 8, seed: int = 0, fault_rate: float | None = None) -> list[Case]:
    """The benchmark's cases, the same for the same arguments (132 by default).

    With `fault_rate`, each fault fires with that probability each time its turn runs.
    """
    cases = _make_cases(per_combo=per_combo, seed=seed)
    if fault_rate is None:
        return cases
    return [
        Case(c.id, c.shape, c.numbers, replace(c.fault, rate=fault_rate, seed=seed * 100_003 + i))
        for i, c in enumerate(cases)
    ]


def _make_cases(*, per_combo: int, seed: int) -> list[Case]:
    rng = random.Random(seed)
    cases: list[Case] = []
    for shape in ("relay", "review"):
        for kind, agent, turn in _COMBOS[shape]:
            for _ in range(per_combo if shape == "relay" else per_combo - 2):
                numbers = tuple(rng.randint(1, 30) for _ in range(rng.randint(3, 6)))
                cases.append(
                    Case(f"{shape}-{len(cases):03d}", shape, numbers, Fault(kind, agent, turn))
                )
    for kind in _CHAT_KINDS:
        for _ in range(per_combo + 2):
            numbers = tuple(rng.randint(1, 30) for _ in range(rng.randint(4, 8)))
            # The message position that goes wrong: never the first (nothing to
            # repeat or ignore yet), and a repeat needs the worker's second turn.
            first = 3 if kind == "repeated-step" else 1
            last = len(numbers) - (2 if kind == "premature-stop" else 1)
            position = rng.randint(first, last)
            fault = Fault(kind, f"w{position % 3 + 1}", position // 3)
            cases.append(Case(f"chat-{len(cases):03d}", "chat", numbers, fault))
    return cases


def stratified(cases: Sequence[Case], limit: int | None) -> list[Case]:
    """`limit` cases taking each (shape, fault kind, faulty agent) group in turn."""
    if limit is None or limit >= len(cases):
        return list(cases)
    groups: dict[tuple[str, str, str], list[Case]] = {}
    for c in cases:
        groups.setdefault(
            (c.shape, c.fault.kind, c.fault.agent if c.shape != "chat" else ""), []
        ).append(c)
    # Shapes take turns too, so even a handful of cases has every shape.
    by_shape: dict[str, list[list[Case]]] = {}
    for key, group in groups.items():
        by_shape.setdefault(key[0], []).append(group)
    order = [g for round_ in zip_longest(*by_shape.values()) for g in round_ if g is not None]
    picked: list[Case] = []
    while len(picked) < limit:
        for group in order:
            if group and len(picked) < limit:
                picked.append(group.pop(0))
    return sorted(picked, key=lambda c: c.id)
