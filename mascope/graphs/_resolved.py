"""The resolved team: what a team's topologies and runs read, fixed when the team is built.

`Team` is the user's handle (construction, run, resume, fork, re-roll);
`ResolvedTeam` is the value its graph is compiled from and its runs carry.
A team builds a new one when something changes (`Team.override_model`), so
a compiled graph and the runs started on it always see one consistent team.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mascope.agents import (
    Agent,
    AskHumanOnFail,
    Ensemble,
    McpServer,
    Rubric,
    Tool,
    Verifier,
    VerifierRates,
)
from mascope.models import ChatModel, get_model

from ._calibrated import stage_calibrations
from ._routing import Router
from ._spec import TeamSpec

Scorer = Callable[[str, str], Any]
"""`(answer, ground_truth) -> bool | (bool, note) | MatchResult`."""


class Models:
    """A team's models, each made on first use: one instance per model string, shared
    by every caller (agents, rubric verifiers, the manager), so a scripted model's
    replies are consumed in order by all of them."""

    def __init__(self, default: str | ChatModel, override: str | None = None):
        self.default = default
        """The team's model: agents and rubrics that name none use it."""
        self.override = override
        """A model string that replaces every model of the team (`Team.override_model`)."""
        self._made: dict[str, ChatModel] = {}

    def resolve(self, ref: str | ChatModel) -> ChatModel:
        """The team's one instance of `ref`."""
        if isinstance(ref, ChatModel):
            return ref
        if ref not in self._made:
            self._made[ref] = get_model(ref)
        return self._made[ref]

    def for_agent(self, agent: Agent) -> ChatModel:
        return self.resolve(self.override or agent.model or self.default)

    def for_rubric(self, rubric: Rubric) -> ChatModel:
        return self.resolve(self.override or rubric._model_ref or self.default)


class StageRates:
    """The measured verifier rates of the calibrated pipeline stages, read from the
    files their strategies name on first use (relative to the team's folder)."""

    def __init__(self, spec: TeamSpec, base_dir: Path | None, model: str | None):
        self._args = (spec, base_dir, model)
        self._rates: dict[int, VerifierRates] | None = None

    def check(self) -> None:
        """Read the files now, refusing one made for another team or too thin to use."""
        if self._rates is None:
            self._rates = stage_calibrations(*self._args)

    def __getitem__(self, stage: int) -> VerifierRates:
        self.check()
        assert self._rates is not None
        return self._rates[stage]


@dataclass(frozen=True, eq=False)
class ResolvedTeam:
    """A team as its graph and its runs see it: the spec and the objects it resolved to.

    Built by `Team` (`Team.resolved`); the topologies compile it and every
    `RunContext` carries it. The mappings are read-only; their agents and
    verifiers are the team's own objects.
    """

    spec: TeamSpec
    agents: Mapping[str, Agent]
    tools: Mapping[str, Tool]
    """Every tool an agent may be offered: the team's, the agents' own, MCP servers' tools."""
    verifiers: Mapping[str, Verifier]
    routers: Mapping[int, Router]
    """Graph topology: the router of each router edge, by the edge's index."""
    mcp_servers: Mapping[str, McpServer]
    """MCP servers whose tools the agents may call (each run connects to them anew)."""
    models: Models
    stage_rates: StageRates
    scorer: Scorer | None = None
    """The team's scoring function, when its `scoring` names one."""
    base_dir: Path | None = None
    """Folder searched first for `function:` and tool modules (the team file's)."""

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def model(self) -> str:
        """The model string the team runs with: the override, else the spec's."""
        return self.models.override or self.spec.model

    def model_for(self, agent: Agent) -> ChatModel:
        return self.models.for_agent(agent)

    def check_models(self) -> None:
        """Resolve every model (and read every calibration) before a run starts, so a
        bad model string, a missing key or a wrong file fails before anything is recorded."""
        self.stage_rates.check()
        for agent in self.agents.values():
            if not agent.is_function:
                self.models.for_agent(agent)
        for v in _all_verifiers(self.verifiers.values()):
            if isinstance(v, Rubric):
                v.bind_model(self.models.for_rubric(v))


def _all_verifiers(verifiers: Iterable[Verifier]) -> Iterator[Verifier]:
    """Every verifier, members of ensembles included."""
    for v in verifiers:
        yield v
        if isinstance(v, Ensemble):
            yield from _all_verifiers(v.verifiers)
        if isinstance(v, AskHumanOnFail):
            yield from _all_verifiers([v.verifier])
