"""Planted faults in teams of embedded-model agents: the second family of `eval planted`.

The function-agent family (`_planted`) is deterministic apart from its faults.
Here every agent is a real model agent (the embedded model by default) with
its team's own prompt, solving generated arithmetic questions whose answers
are exact and that the fault-free team gets right most of the time. One
agent's first turn is wrapped: the real model call runs, and then, with
probability P drawn afresh each time the turn runs, its output is corrupted
(its answer changed, or dropped). The rest of the run is the model's own
variability. Ground truth is the step of the faulty turn whose fault fired.

The faulty agent is a Python function referenced by module path
(`mascope.evals._embedded:FAULTS.wrong_number_p0_5`), marked as sampling,
so a stored run can be rebuilt and re-rolled from its spec alone.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from mascope.agents import Agent, AgentSpec, TurnContext, render_system_prompt, sampling
from mascope.errors import ConfigError
from mascope.graphs import Team
from mascope.models import ChatModel, Message, get_model
from mascope.traces import TraceStore

EmbeddedFaultKind = Literal["wrong-number", "dropped-output"]
EMBEDDED_FAULT_KINDS: tuple[EmbeddedFaultKind, ...] = get_args(EmbeddedFaultKind)
EMBEDDED_FAULT_MODES: dict[str, str] = {
    "wrong-number": "FM-1.1",  # the answer no longer meets the task
    "dropped-output": "FM-2.4",  # the agent's work never reaches the others
}
EMBEDDED_SHAPES = ("review", "relay")
TEAM_PREFIX = "embedded-"
DEFAULT_MODEL = "local"

_SOLVER = AgentSpec(
    name="solver",
    role="arithmetic solver",
    goal="Solve the word problem exactly.",
    instructions='Work it out in a few short lines, one calculation per line.\nEnd with a last line of the form "ANSWER: <number>".',
    constraints=["ask questions back", "leave out the final ANSWER line"],
    max_tokens=200,
)
"""The demo team's solver (mascope/examples/solver_checker.yaml), word for word, but at
the model's default temperature (the YAML's solver samples at 0.8; the faults here
supply the failures, and the fault-free team should succeed)."""
_RUBRIC = (
    "Every number used must come from the task, every calculation must be correct, "
    'and the last line must be "ANSWER: <number>" with the number that answers the question.'
)

_RELAY: tuple[AgentSpec, ...] = (
    _SOLVER,
    AgentSpec(
        name="reporter",
        role="reporter",
        goal="Report the number the solver found as the team's answer.",
        output_schema={
            "type": "object",
            "properties": {"answer": {"type": "integer"}},
            "required": ["answer"],
        },
        max_tokens=30,
    ),
)

AGENT_SPECS: dict[str, dict[str, AgentSpec]] = {
    "review": {"solver": _SOLVER},
    "relay": {a.name: a for a in _RELAY},
}
"""Shape -> agent -> its role (the prompt the faulty turn sends is rendered from it)."""


@dataclass(frozen=True)
class EmbeddedFault:
    """One agent's first turn is corrupted with probability `rate` each time it runs."""

    kind: EmbeddedFaultKind
    agent: str
    rate: float
    turn: int = 0

    @property
    def mode(self) -> str:
        return EMBEDDED_FAULT_MODES[self.kind]

    @property
    def function(self) -> str:
        """The module path a team spec names the faulty agent's function by."""
        return f"{__name__}:FAULTS.{fault_name(self.kind, self.rate)}"


@dataclass(frozen=True)
class EmbeddedCase:
    id: str
    shape: str
    a: int
    op: str
    b: int
    fault: EmbeddedFault

    @property
    def task(self) -> str:
        return f"What is {self.a} {self.op} {self.b}?"

    @property
    def ground_truth(self) -> str:
        return str(self.a + self.b if self.op == "+" else self.a * self.b)


# -- the faulty turn ------------------------------------------------------------------

_NUMBER = re.compile(r"-?\d+")


def corrupt(kind: EmbeddedFaultKind, text: str, rng: random.Random) -> str | None:
    """`text` with the fault applied, or None when this output has nothing the fault can change."""
    if kind == "dropped-output":
        return "" if text.strip() else None
    found = _NUMBER.findall(text)
    if not found:
        return None
    old = int(found[-1])
    new = old + rng.choice([d for d in range(-9, 10) if d != 0 and old + d >= 0])
    # Every mention of the answer changes, so the output claims the wrong number throughout.
    return re.sub(rf"(?<![\d-]){re.escape(found[-1])}(?!\d)", str(new), text)


@dataclass
class Firing:
    """One execution of the faulty turn: the model's output and what the agent said."""

    agent: str
    real: str
    said: str

    @property
    def fired(self) -> bool:
        return self.said != self.real


class FaultyTurn:
    """A model agent's turn whose output is corrupted with probability `rate`.

    The model call is the one an LLM agent of the same role makes (same system
    prompt, same user message, same temperature and token limit); only its
    text may change afterwards. Every execution draws afresh, so a re-roll of
    the turn can avoid the fault, as with a real model's mistakes.
    """

    def __init__(
        self,
        kind: EmbeddedFaultKind,
        rate: float,
        *,
        model: str | ChatModel = DEFAULT_MODEL,
        seed: int | None = None,
        turn: int = 0,
    ):
        if kind not in EMBEDDED_FAULT_KINDS:
            raise ConfigError(
                f"unknown fault kind {kind!r}; choose from {', '.join(EMBEDDED_FAULT_KINDS)}"
            )
        if not 0 <= rate <= 1:
            raise ConfigError(f"fault rate must be between 0 and 1 (got {rate:g})")
        self.kind, self.rate, self.turn = kind, rate, turn
        self._model_ref = model
        self._model: ChatModel | None = model if isinstance(model, ChatModel) else None
        self._rng = random.Random(seed)  # seed None: fresh entropy (a rebuilt team)
        self.log: list[Firing] = []
        """Every execution of the faulty turn, in order (the benchmark reads it)."""
        sampling(self)

    def _chat_model(self) -> ChatModel:
        if self._model is None:
            self._model = get_model(self._model_ref)
        return self._model

    async def __call__(self, ctx: TurnContext) -> str:
        spec = agent_spec(ctx.team, ctx.agent)
        system = render_system_prompt(
            spec,
            team=ctx.team,
            teammates=[t for t in ctx.teammates if t != ctx.agent],
            tool_names=[],
            stop_phrase=ctx.stop_phrase,
        )
        reply = await self._chat_model().achat(
            [Message.system(system), Message.user(ctx.prompt)],
            output=spec.output_schema,
            temperature=spec.temperature,
            max_tokens=spec.max_tokens,
            seed=ctx.sample if ctx.sample else None,
        )
        # As an LLM agent's turn records it: a structured answer as its JSON.
        real = reply.text if reply.parsed is None else json.dumps(reply.parsed, ensure_ascii=False)
        own = sum(1 for e in ctx.transcript if e.agent == ctx.agent and e.kind == "message")
        said = real
        if own == self.turn and self._rng.random() < self.rate:
            wrong = corrupt(self.kind, real, self._rng)
            said = real if wrong is None else wrong
        self.log.append(Firing(ctx.agent, real, said))
        return said


def fault_name(kind: str, rate: float) -> str:
    """`wrong-number`, 0.5 -> `wrong_number_p0_5` (an attribute name of FAULTS)."""
    return f"{kind.replace('-', '_')}_p{format(rate, 'g').replace('.', '_')}"


class _Faults:
    """`FAULTS.wrong_number_p0_5` is a faulty turn of that kind and rate (how a spec names it)."""

    def __getattr__(self, name: str) -> FaultyTurn:
        kind, sep, rate = name.rpartition("_p")
        try:
            value = float(rate.replace("_", "."))
        except ValueError:
            value = -1.0
        if not sep or kind.replace("_", "-") not in EMBEDDED_FAULT_KINDS or not 0 <= value <= 1:
            raise AttributeError(name)
        return FaultyTurn(kind.replace("_", "-"), value)  # type: ignore[arg-type]


FAULTS = _Faults()


def agent_spec(team: str, agent: str) -> AgentSpec:
    """The role of `agent` in the embedded team named `team`."""
    shape = team.removeprefix(TEAM_PREFIX)
    try:
        return AGENT_SPECS[shape][agent]
    except KeyError:
        raise ConfigError(
            f"{agent} of team {team} is not an agent of an embedded planted team "
            f"({', '.join(TEAM_PREFIX + s for s in EMBEDDED_SHAPES)})"
        ) from None


# -- teams ----------------------------------------------------------------------------


def build_embedded_team(
    shape: str,
    *,
    fault: EmbeddedFault | None,
    store: TraceStore,
    model: str | ChatModel = DEFAULT_MODEL,
    seed: int | None = None,
) -> tuple[Team, FaultyTurn | None]:
    """The team of `shape` on `model`, with `fault`'s agent wrapped (None: the team that works)."""
    if shape not in AGENT_SPECS:
        raise ConfigError(f"unknown shape {shape!r}; choose from {', '.join(EMBEDDED_SHAPES)}")
    faulty: FaultyTurn | None = None
    agents = []
    for spec in AGENT_SPECS[shape].values():
        fields: dict[str, Any] = spec.model_dump(exclude={"name", "function", "model", "tools"})
        if fault is not None and spec.name == fault.agent:
            faulty = FaultyTurn(fault.kind, fault.rate, model=model, seed=seed, turn=fault.turn)
            agents.append(Agent(spec.name, **fields, fn=faulty, function=fault.function))
        else:
            agents.append(Agent(spec.name, **fields))
    if fault is not None and faulty is None:
        raise ConfigError(f"team {shape} has no agent {fault.agent}")
    name = TEAM_PREFIX + shape
    if shape == "review":
        team = Team(
            name, agents, stages=[{"agent": "solver", "verifier": "checker", "max_rounds": 3}],
            verifiers={"checker": _rubric()}, model=model, store=store,
            description="The demo's solver and rubric checker on generated arithmetic.",
        )  # fmt: skip
    else:
        team = Team(
            name, agents, stages=[{"agent": "solver", "verifier": "checker", "max_rounds": 3}, "reporter"],
            verifiers={"checker": _rubric()}, model=model, store=store,
            description="A solver, a checker and a reporter in a pipeline on generated arithmetic.",
        )  # fmt: skip
    return team, faulty


def _rubric() -> Any:
    from mascope.agents import Rubric

    return Rubric(_RUBRIC, name="checker")


# -- cases ----------------------------------------------------------------------------

_COMBOS: dict[str, list[tuple[EmbeddedFaultKind, str]]] = {
    "review": [("wrong-number", "solver"), ("dropped-output", "solver")],
    "relay": [
        ("wrong-number", "solver"),
        ("wrong-number", "reporter"),
        ("dropped-output", "solver"),
        ("dropped-output", "reporter"),
    ],
}


def make_embedded_cases(
    *, n: int = 60, seed: int = 0, fault_rate: float = 0.5
) -> list[EmbeddedCase]:
    """`n` cases, the same for the same arguments, taking each (shape, fault, agent) in turn.

    Questions are sums of a number up to 15 and a one-digit number, and products of
    two one-digit numbers: what SmolLM2-135M gets right most of the time (it fails
    most sums of two-digit numbers and most word problems).
    """
    rng = random.Random(seed)
    combos = [(shape, kind, agent) for shape in EMBEDDED_SHAPES for kind, agent in _COMBOS[shape]]
    cases: list[EmbeddedCase] = []
    for i in range(n):
        # Rotated by the seed, so one case per seed also takes every combination in turn.
        shape, kind, agent = combos[(i + seed) % len(combos)]
        if rng.random() < 0.5:
            a, op, b = rng.randint(2, 15), "+", rng.randint(2, 9)
        else:
            a, op, b = rng.randint(2, 9), "*", rng.randint(2, 9)
        fault = EmbeddedFault(kind, agent, fault_rate)
        cases.append(EmbeddedCase(f"{shape}-{i:03d}", shape, a, op, b, fault))
    return cases


MAX_EMBEDDED_ATTEMPTS = 6
"""Runs of a faulty embedded team before giving up on seeing it fail."""

NOT_FIRED = "the run failed without the fault firing (the model's own mistake)"
NEVER_FAILED = f"no run failed in {MAX_EMBEDDED_ATTEMPTS} tries (the fault never decided a run)"
BASE_FAILED = "the fault-free team failed this task too"


@dataclass
class EmbeddedPlant:
    """A failed run whose injected fault fired, or why the case has none."""

    reference_id: str
    reference_ok: bool
    run_id: str | None = None
    step: int | None = None
    agent: str | None = None
    team: Team | None = None
    attempts: int = 0
    skipped: str | None = None
    firings: list[Firing] = field(default_factory=list)


async def plant_embedded(
    store: TraceStore, case: EmbeddedCase, *, model: str | ChatModel = DEFAULT_MODEL, seed: int = 0
) -> EmbeddedPlant:
    """Run the fault-free team once, then the faulty team until a run fails; the truth is
    the step of the faulty turn when its fault fired on that run."""
    clean, _ = build_embedded_team(case.shape, fault=None, store=store, model=model)
    ref = await clean.arun(case.task, ground_truth=case.ground_truth)
    out = EmbeddedPlant(ref.run_id, ref.status == "succeeded")
    if not out.reference_ok:
        # The model cannot do this task: a failure would not be the fault's doing.
        out.skipped = BASE_FAILED
        return out
    team, faulty = build_embedded_team(
        case.shape, fault=case.fault, store=store, model=model, seed=seed
    )
    assert faulty is not None
    for attempt in range(1, MAX_EMBEDDED_ATTEMPTS + 1):
        faulty.log.clear()
        result = await team.arun(case.task, ground_truth=case.ground_truth)
        if result.status == "succeeded":
            continue
        out.attempts, out.run_id, out.team = attempt, result.run_id, team
        out.firings = list(faulty.log)
        steps = [
            s for s in store.steps(result.run_id)
            if s.agent == case.fault.agent and s.kind == "message"
        ]  # fmt: skip
        turn = case.fault.turn
        fired = (
            len(faulty.log) > turn
            and faulty.log[turn].fired
            and len(steps) > turn
            and steps[turn].content == faulty.log[turn].said
        )
        if not fired:
            out.skipped = NOT_FIRED
            return out
        out.step, out.agent = steps[turn].index, case.fault.agent
        return out
    out.attempts = MAX_EMBEDDED_ATTEMPTS
    out.skipped = NEVER_FAILED
    return out


__all__ = [
    "AGENT_SPECS",
    "EMBEDDED_FAULT_KINDS",
    "EMBEDDED_SHAPES",
    "FAULTS",
    "EmbeddedCase",
    "EmbeddedFault",
    "FaultyTurn",
    "Firing",
    "agent_spec",
    "build_embedded_team",
    "corrupt",
    "fault_name",
    "make_embedded_cases",
    "plant_embedded",
]
