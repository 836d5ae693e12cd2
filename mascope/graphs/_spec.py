"""TeamSpec: a team as data (YAML or Python), validated before anything runs."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mascope.agents import AgentSpec, Budget, Extract, MatchMode, StrategySpec
from mascope.errors import ConfigError, did_you_mean

END = "END"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VerifierSpec(_Strict):
    """A verifier in YAML. `kind` picks which; the other fields are its settings."""

    kind: Literal["answer_match", "json_schema", "code_tests", "rubric", "python", "ensemble"]
    # answer_match
    expected: str | None = None
    mode: MatchMode = "normalised"
    extract: Extract = "all"
    marker: str = "ANSWER:"
    tolerance: float = 1e-6
    # json_schema
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    # code_tests
    tests: str | None = None
    tests_from: str | None = None
    code_from: str | None = None
    timeout_s: float = 10.0
    memory_mb: int = 512
    # rubric
    rubric: str | None = None
    model: str | None = None
    # python
    function: str | None = None
    # ensemble
    members: list[str] = Field(default_factory=list)
    combine: Literal["all", "any", "majority", "mean"] = "all"
    threshold: float = 0.5


class StageSpec(_Strict):
    agent: str
    verifier: str | None = None
    max_rounds: int = Field(default=3, ge=1, le=100)
    """Attempts at this stage when its verifier says no (self-correction bound)."""
    retry_from: str | None = None
    """Stage agent to go back to after a failed verification (default: this stage)."""
    strategy: StrategySpec = Field(default_factory=StrategySpec)


class PipelineSpec(_Strict):
    kind: Literal["pipeline"]
    stages: list[StageSpec | str] = Field(min_length=1)

    def stage_list(self) -> list[StageSpec]:
        return [StageSpec(agent=s) if isinstance(s, str) else s for s in self.stages]


class GroupChatSpec(_Strict):
    kind: Literal["group_chat"]
    agents: list[str] = Field(min_length=1)
    speaker_selection: Literal["round_robin", "manager"] = "round_robin"
    manager: str | None = None
    """Agent that picks the next speaker (`speaker_selection: manager`)."""
    verifier: str | None = None
    """Checks a message that claims the final answer (stop phrase or final-answer tool)."""


class NodeSpec(_Strict):
    name: str
    agent: str | None = None
    verifier: str | None = None
    candidate_from: str | None = None
    """For a verifier node: whose latest output to check (default: the latest output)."""


class EdgeSpec(_Strict):
    from_: str = Field(alias="from")
    to: str
    when: str = "always"
    """`always`, `passed`, `failed` (after a verifier node) or `contains:TEXT`."""


class GraphSpec(_Strict):
    kind: Literal["graph"]
    start: str
    nodes: list[NodeSpec] = Field(min_length=1)
    edges: list[EdgeSpec] = Field(default_factory=list)
    final: str | None = None
    """Agent whose latest output is the answer (default: the latest output)."""


Topology = Annotated[PipelineSpec | GroupChatSpec | GraphSpec, Field(discriminator="kind")]


class TerminationSpec(_Strict):
    max_steps: int | None = Field(default=None, ge=1)
    """Most agent turns plus verifications."""
    max_rounds: int | None = Field(default=None, ge=1)
    """Group chat: most rounds (every agent speaking once is a round)."""
    stop_phrase: str | None = None
    final_answer_tool: bool = False
    verifier_pass: bool = True
    budget: Budget | None = None


class ScoringSpec(_Strict):
    """How a run's final answer is scored against its ground truth.

    In YAML a bare string is short for one field: `scoring: numeric` picks a
    matcher, `scoring: package.module:function` a function.
    """

    match: MatchMode = "contains"
    """`contains` (default: the ground truth appears as whole words or numbers,
    after normalising case, punctuation, whitespace and number formats),
    `exact`, `normalised`, `numeric` or `regex`."""
    extract: Extract = "after_marker"
    """Which part of the answer is compared: `after_marker` (the text after the
    last `marker`, or the whole answer when it has none), `all` or `last_number`."""
    marker: str = "ANSWER:"
    tolerance: float = Field(default=1e-6, ge=0)
    """For `numeric`."""
    function: str | None = None
    """`package.module:function(answer, ground_truth) -> bool` decides instead of a matcher."""

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"function": value} if ":" in value else {"match": value}
        return value


class TeamSpec(_Strict):
    """A team: agents, verifiers, tools, a topology and when to stop."""

    name: str
    description: str = ""
    model: str = "local"
    agents: list[AgentSpec] = Field(min_length=1)
    tools: dict[str, str] = Field(default_factory=dict)
    """Tool name -> `package.module:function`."""
    verifiers: dict[str, VerifierSpec] = Field(default_factory=dict)
    topology: Topology
    termination: TerminationSpec = Field(default_factory=TerminationSpec)
    scoring: ScoringSpec = Field(default_factory=ScoringSpec)
    """How the final answer is scored against a ground truth (`--expect`)."""
    context_chars: int = Field(default=6000, ge=500)
    """Most characters of earlier conversation an agent is shown each turn."""

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_defaults=False)

    def hash(self) -> str:
        return hashlib.sha256(json.dumps(self.dump(), sort_keys=True).encode()).hexdigest()[:16]

    @property
    def agent_names(self) -> list[str]:
        return [a.name for a in self.agents]


def load_team_file(path: str | Path) -> TeamSpec:
    """Read and validate a team YAML file; errors name the file, the path inside it and the fix."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"team file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read team file {path}: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ConfigError(
            f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a team file must be a mapping with name, agents and topology")
    return parse_team(data, source=str(path))


def parse_team(data: dict[str, Any], *, source: str = "team") -> TeamSpec:
    try:
        spec = TeamSpec.model_validate(data)
    except ValidationError as exc:
        raise _spec_error(source, exc, data) from None
    check_team(spec, source=source)
    return spec


def _loc(parts: tuple[Any, ...]) -> str:
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        elif p in ("pipeline", "group_chat", "graph", "StageSpec", "str"):
            continue  # discriminator / union branch names pydantic puts in the path
        else:
            out += f".{p}" if out else str(p)
    return out or "(top level)"


_MODELS: dict[str, type[BaseModel]] = {
    "agents": AgentSpec,
    "verifiers": VerifierSpec,
    "termination": TerminationSpec,
    "scoring": ScoringSpec,
    "stages": StageSpec,
    "nodes": NodeSpec,
    "edges": EdgeSpec,
}


def _spec_error(source: str, exc: ValidationError, data: dict[str, Any]) -> ConfigError:
    errors = exc.errors()
    err = next((e for e in errors if e["type"] == "extra_forbidden"), None) or next(
        (e for e in errors if e["type"] == "missing"), errors[0]
    )
    where = _loc(tuple(err["loc"]))
    if err["type"] == "extra_forbidden":
        key = str(err["loc"][-1])
        model = TeamSpec
        for part in reversed(err["loc"][:-1]):
            if isinstance(part, str) and part in _MODELS:
                model = _MODELS[part]  # type: ignore[assignment]
                break
            if part == "topology":
                kind = str((data.get("topology") or {}).get("kind"))
                model = {
                    "pipeline": PipelineSpec,
                    "group_chat": GroupChatSpec,
                    "graph": GraphSpec,
                }.get(kind, TeamSpec)  # type: ignore[assignment]
                break
        allowed = sorted(f.alias or name for name, f in model.model_fields.items())
        return ConfigError(
            f"{source}: {where}: unknown key{did_you_mean(key, allowed)}; allowed keys: {', '.join(allowed)}"
        )
    if err["type"] == "missing":
        return ConfigError(f"{source}: {where}: required key is missing")
    if err["type"] == "union_tag_invalid" or "discriminator" in err["type"]:
        return ConfigError(f"{source}: {where}: kind must be one of pipeline, group_chat, graph")
    got = err.get("input")
    shown = "" if isinstance(got, dict | list) else f" (got {json.dumps(got, default=str)[:40]})"
    return ConfigError(f"{source}: {where}: {err['msg']}{shown}")


def check_team(spec: TeamSpec, *, source: str = "team") -> None:
    """Cross-references: agents, verifiers and nodes that exist; a way to stop every cycle."""
    names = spec.agent_names
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise ConfigError(
            f"{source}: agents: names must be unique; {sorted(dupes)[0]!r} appears twice"
        )

    def agent(name: str | None, where: str) -> None:
        if name is not None and name not in names:
            raise ConfigError(
                f"{source}: {where}: no agent named {name!r}{did_you_mean(name, names)}; agents are {', '.join(names)}"
            )

    def verifier(name: str | None, where: str) -> None:
        if name is not None and name not in spec.verifiers:
            known = list(spec.verifiers)
            raise ConfigError(
                f"{source}: {where}: no verifier named {name!r}{did_you_mean(name, known)}; "
                f"define it under verifiers:{' (defined: ' + ', '.join(known) + ')' if known else ''}"
            )

    for i, a in enumerate(spec.agents):
        for t in a.tools:
            if t not in spec.tools and t != "final_answer":
                raise ConfigError(
                    f"{source}: agents[{i}].tools: no tool named {t!r}{did_you_mean(t, spec.tools)}; declare it under tools: (name: package.module:function)"
                )
    for name, v in spec.verifiers.items():
        where = f"verifiers.{name}"
        agent(v.tests_from, f"{where}.tests_from")
        agent(v.code_from, f"{where}.code_from")
        for m in v.members:
            verifier(m, f"{where}.members")
        if v.kind == "code_tests" and (v.tests is None) == (v.tests_from is None):
            raise ConfigError(
                f"{source}: {where}: a code_tests verifier needs exactly one of tests or tests_from"
            )
        if v.kind == "json_schema" and v.schema_ is None:
            raise ConfigError(f"{source}: {where}: a json_schema verifier needs schema")
        if v.kind == "rubric" and not v.rubric:
            raise ConfigError(
                f"{source}: {where}: a rubric verifier needs rubric (what a good answer does)"
            )
        if v.kind == "python" and not v.function:
            raise ConfigError(
                f"{source}: {where}: a python verifier needs function: package.module:function"
            )
        if v.kind == "ensemble" and not v.members:
            raise ConfigError(
                f"{source}: {where}: an ensemble verifier needs members (names of other verifiers)"
            )

    term = spec.termination
    bounded = term.max_steps is not None or term.budget is not None
    top = spec.topology
    if isinstance(top, PipelineSpec):
        stages = top.stage_list()
        stage_agents = [s.agent for s in stages]
        for i, s in enumerate(stages):
            agent(s.agent, f"topology.stages[{i}].agent")
            verifier(s.verifier, f"topology.stages[{i}].verifier")
            if s.retry_from is not None and s.retry_from not in stage_agents[: i + 1]:
                raise ConfigError(
                    f"{source}: topology.stages[{i}].retry_from: {s.retry_from!r} is not this stage or an earlier one ({', '.join(stage_agents[: i + 1])})"
                )
            if s.strategy.kind in ("best_of_n", "best_of_majority") and s.verifier is None:
                raise ConfigError(
                    f"{source}: topology.stages[{i}].strategy: {s.strategy.kind} needs a verifier on the stage"
                )
    elif isinstance(top, GroupChatSpec):
        for i, speaker in enumerate(top.agents):
            agent(speaker, f"topology.agents[{i}]")
        verifier(top.verifier, "topology.verifier")
        if top.speaker_selection == "manager":
            if top.manager is None:
                raise ConfigError(
                    f"{source}: topology.manager: speaker_selection manager needs manager: AGENT"
                )
            agent(top.manager, "topology.manager")
        if not (bounded or term.max_rounds is not None):
            raise ConfigError(
                f"{source}: termination: a group chat goes round forever without a limit; set termination.max_rounds (or max_steps, or a budget)"
            )
    else:
        node_names = [n.name for n in top.nodes]
        for i, n in enumerate(top.nodes):
            if (n.agent is None) == (n.verifier is None):
                raise ConfigError(
                    f"{source}: topology.nodes[{i}]: a node runs exactly one of agent or verifier"
                )
            agent(n.agent, f"topology.nodes[{i}].agent")
            verifier(n.verifier, f"topology.nodes[{i}].verifier")
            agent(n.candidate_from, f"topology.nodes[{i}].candidate_from")
        if top.start not in node_names:
            raise ConfigError(
                f"{source}: topology.start: no node named {top.start!r}{did_you_mean(top.start, node_names)}"
            )
        agent(top.final, "topology.final")
        targets = [*node_names, END]
        for i, e in enumerate(top.edges):
            if e.from_ not in node_names:
                raise ConfigError(
                    f"{source}: topology.edges[{i}].from: no node named {e.from_!r}{did_you_mean(e.from_, node_names)}"
                )
            if e.to not in targets:
                raise ConfigError(
                    f"{source}: topology.edges[{i}].to: no node named {e.to!r}{did_you_mean(e.to, targets)}; use END to finish"
                )
            if not (e.when in ("always", "passed", "failed") or e.when.startswith("contains:")):
                raise ConfigError(
                    f"{source}: topology.edges[{i}].when: use always, passed, failed or contains:TEXT (got {e.when!r})"
                )
        first_always: dict[str, int] = {}
        for i, e in enumerate(top.edges):
            j = first_always.get(e.from_)
            if j is not None and e.when != "always":
                # Edges are tried in order and an always edge always holds, so this
                # one could never fire: refuse it rather than silently ignore it.
                raise ConfigError(
                    f"{source}: topology.edges[{i}]: the edge {e.from_} -> {e.to} (when {e.when}) comes after "
                    f"the always edge edges[{j}] from {e.from_}, so it would never be taken; list it before the always edges"
                )
            if e.when == "always":
                first_always.setdefault(e.from_, i)
        cycle = _find_cycle(node_names, [(e.from_, e.to) for e in top.edges])
        if cycle and not bounded:
            raise ConfigError(
                f"{source}: topology.edges: the graph has a cycle ({' -> '.join(cycle)}) and nothing bounds it; "
                "set termination.max_steps or a budget"
            )


def _find_cycle(nodes: list[str], edges: list[tuple[str, str]]) -> list[str]:
    graph: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in edges:
        if b in graph:
            graph[a].append(b)
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(n: str) -> list[str]:
        state[n] = 1
        path.append(n)
        for m in graph[n]:
            if state.get(m) == 1:
                return [*path[path.index(m) :], m]
            if m not in state:
                found = visit(m)
                if found:
                    return found
        state[n] = 2
        path.pop()
        return []

    for n in nodes:
        if n not in state:
            found = visit(n)
            if found:
                return found
    return []
