"""TeamSpec: a team as data (YAML or Python), validated before anything runs."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from mascope._safeload import check_schema_size, loads_yaml, read_text
from mascope.agents import HUMAN, AgentSpec, Budget, Extract, MatchMode, McpServerSpec, StrategySpec
from mascope.errors import ConfigError, did_you_mean

from ._spec_errors import spec_error

END = "END"


class _Strict(BaseModel):
    # Attribute docstrings become field descriptions: docs/teams.md and the JSON Schema show them.
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class VerifierSpec(_Strict):
    """A verifier in YAML. `kind` picks which; the other fields are its settings."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"kind": "answer_match", "expected": "42"}]}
    )

    kind: Literal[
        "answer_match", "json_schema", "code_tests", "rubric", "python", "ensemble", "human"
    ]
    """Which check: `answer_match`, `json_schema`, `code_tests`, `rubric` (an LLM judge), `python` (a function), `ensemble`, or `human` (the run pauses and a person gives the verdict)."""
    # answer_match
    expected: str | None = None
    """answer_match: the right answer (default: the run's ground truth, `--expect`)."""
    mode: MatchMode = "normalised"
    """answer_match: `exact` text, `normalised` (case, spaces, number formats), `numeric` (within `tolerance`), `contains` (whole words or numbers) or `regex`."""
    extract: Extract = "all"
    """answer_match: compare the whole answer, its last number, or the text after `marker`."""
    marker: str = "ANSWER:"
    """answer_match: the text that precedes the answer when `extract: after_marker`."""
    tolerance: float = 1e-6
    """answer_match: largest difference that still counts as equal when `mode: numeric`."""
    # json_schema
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    """json_schema: the JSON Schema the answer must match (the answer must be JSON)."""
    # code_tests
    tests: str | None = None
    """code_tests: Python test code (functions named `test_...`) to run against the code."""
    tests_from: str | None = None
    """code_tests: agent whose latest output holds the tests (instead of `tests`)."""
    code_from: str | None = None
    """code_tests: agent whose latest output holds the code (default: the candidate)."""
    timeout_s: float = 10.0
    """code_tests: wall-clock seconds the tests may run."""
    memory_mb: int = 512
    """code_tests: memory limit of the test process, in MB."""
    # rubric
    rubric: str | None = None
    """rubric: what a good answer does, in plain words, for the LLM judge."""
    model: str | None = None
    """rubric: model string of the judge (default: the team's model)."""
    # python
    function: str | None = None
    """python: `module:function` taking (candidate) or (candidate, ctx) and returning a bool, (bool, feedback) or a Verdict; modules next to the team file are found."""
    # ensemble
    members: list[str] = Field(default_factory=list)
    """ensemble: names of the other verifiers to combine."""
    combine: Literal["all", "any", "majority", "mean"] = "all"
    """ensemble: pass when all members pass, any does, most do, or the mean score reaches `threshold`."""
    threshold: float = 0.5
    """ensemble: the mean score needed when `combine: mean`."""
    ask_human_on_fail: bool = False
    """Any kind: when this check fails, the run pauses and a person decides (`pass` accepts the answer anyway, `no: why` keeps the failure with that feedback); `prompt` is then their question, where `{feedback}` stands for the check's feedback."""
    # human
    prompt: str | None = None
    """human (and `ask_human_on_fail`): the question the person sees above the answer to check (default: `Does this answer pass? Reply yes, or no and what to fix.`); `yes`/`ok`/`pass`/`approve` passes, any other reply fails and is the feedback."""

    _bounded_schema = field_validator("schema_")(check_schema_size)


class StageSpec(_Strict):
    """A pipeline stage: an agent, optionally checked by a verifier."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"agent": "writer", "verifier": "check"}]}
    )

    agent: str
    """The agent that works at this stage."""
    verifier: str | None = None
    """Verifier that checks the stage's output; a failure sends feedback back for another attempt."""
    max_rounds: int = Field(default=3, ge=1, le=100)
    """Attempts at this stage when its verifier says no (self-correction bound)."""
    retry_from: str | None = None
    """Stage agent to go back to after a failed verification (default: this stage)."""
    strategy: StrategySpec = Field(default_factory=StrategySpec)
    """Test-time strategy: draw several candidates and pick one."""
    interrupt: Literal["before", "after"] | None = None
    """Pause the run for a person `before` this stage runs or `after` it; the run ends `paused` until someone continues it with `mascope runs resume RUN_ID --input TEXT`, and the reply is shown to the agents that follow (as a message of `human`)."""
    prompt: str | None = None
    """With `interrupt`: the question the person sees (default: says where the run paused)."""


class PipelineSpec(_Strict):
    """Stages run in order; each stage's output is visible to the later ones."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"kind": "pipeline", "stages": ["researcher", "writer"]}]}
    )

    kind: Literal["pipeline"]
    """`pipeline`."""
    stages: list[StageSpec | str] = Field(
        min_length=1, examples=[["researcher", {"agent": "writer", "verifier": "check"}]]
    )
    """The stages in order: an agent name, or a mapping with the agent and its verifier."""

    def stage_list(self) -> list[StageSpec]:
        return [StageSpec(agent=s) if isinstance(s, str) else s for s in self.stages]


class GroupChatSpec(_Strict):
    """Agents take turns in one conversation until a termination rule ends it."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"kind": "group_chat", "agents": ["researcher", "writer"]}]}
    )

    kind: Literal["group_chat"]
    """`group_chat`."""
    agents: list[str] = Field(min_length=1, examples=[["researcher", "writer"]])
    """The agents that speak, in round-robin order."""
    speaker_selection: Literal["round_robin", "manager"] = "round_robin"
    """`round_robin` (in turn) or `manager` (an agent picks the next speaker each turn)."""
    manager: str | None = None
    """Agent that picks the next speaker (`speaker_selection: manager`)."""
    verifier: str | None = None
    """Checks a message that claims the final answer (stop phrase or final-answer tool)."""
    interrupt: Literal["round", "final"] | None = None
    """Pause the chat for a person: after every `round` (each agent has spoken once; the reply joins the conversation as a message of `human`), or at the `final` answer (an agent claimed it and the chat's verifier, if any, passed it: the reply `yes` / `ok` / `approve` ends the run with that answer, anything else goes back to the chat as the person's feedback). Continue with `mascope runs resume RUN_ID --input TEXT`."""
    prompt: str | None = None
    """With `interrupt`: the question the person sees (default: says why the chat paused)."""


class NodeSpec(_Strict):
    """A graph node: runs one agent or one verifier."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"name": "researcher", "agent": "researcher"}]}
    )

    name: str
    """The node's name, used by `start` and the edges."""
    agent: str | None = None
    """The agent this node runs (give this or `verifier`)."""
    verifier: str | None = None
    """The verifier this node runs (give this or `agent`); edges after it can test `passed`/`failed`."""
    candidate_from: str | None = None
    """For a verifier node: whose latest output to check (default: the latest output)."""
    interrupt: Literal["before", "after"] | None = None
    """Pause the run for a person `before` this node runs or `after` it; the run ends `paused` until someone continues it with `mascope runs resume RUN_ID --input TEXT`, and the reply is shown to the agents that follow (as a message of `human`)."""
    prompt: str | None = None
    """With `interrupt`: the question the person sees (default: says where the run paused)."""


class EdgeSpec(_Strict):
    """A graph edge: where to go after a node, and when."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"from": "researcher", "to": "writer"}]}
    )

    from_: str = Field(alias="from")
    """The node this edge leaves."""
    to: str | None = None
    """The node it goes to, or `END` to finish the run (not given on a router edge, whose router picks)."""
    when: str = Field(default="always", examples=["passed"])
    """`always`, `passed`, `failed` (after a verifier node), `contains:TEXT`, or a router
    `package.module:function` (short for `router:`; a value starting `contains:` is always the text test)."""
    router: str | None = Field(default=None, examples=["routes:pick"])
    """`package.module:function` that reads the run's state and returns the next node's name (or `END`);
    modules next to the team file are found. Edges listed after it from the same node never fire."""

    @property
    def router_path(self) -> str | None:
        """The router this edge calls, whether written as `router:` or as `when:`."""
        if self.router is not None:
            return self.router
        return self.when if is_router_path(self.when) else None


def is_router_path(when: str) -> bool:
    """A `when:` value naming a router function rather than a condition."""
    return ":" in when and not when.startswith("contains:")


class GraphSpec(_Strict):
    """Explicit nodes and conditional edges, for flows a pipeline cannot express."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "kind": "graph",
                    "start": "researcher",
                    "nodes": [{"name": "researcher", "agent": "researcher"}],
                    "edges": [{"from": "researcher", "to": "END"}],
                }
            ]
        }
    )

    kind: Literal["graph"]
    """`graph`."""
    start: str
    """The node that runs first."""
    nodes: list[NodeSpec] = Field(min_length=1)
    """The nodes: each runs an agent or a verifier."""
    edges: list[EdgeSpec] = Field(default_factory=list)
    """The edges; a node with no edge out ends the run."""
    final: str | None = None
    """Agent whose latest output is the answer (default: the latest output)."""


Topology = Annotated[PipelineSpec | GroupChatSpec | GraphSpec, Field(discriminator="kind")]


class TerminationSpec(_Strict):
    """When a run stops (the first rule that fires ends it)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"max_steps": 20}]})

    max_steps: int | None = Field(default=None, ge=1)
    """Most agent turns plus verifications."""
    max_rounds: int | None = Field(default=None, ge=1)
    """Group chat: most rounds (every agent speaking once is a round)."""
    stop_phrase: str | None = None
    """A message containing this text ends the run; what follows it is the answer."""
    final_answer_tool: bool = False
    """Give agents a `final_answer(answer)` tool that ends the run."""
    verifier_pass: bool = True
    """Group chat: end the run when the chat's verifier passes a claimed answer."""
    budget: Budget | None = None
    """Stop when the run has used this many tokens, dollars or seconds."""


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
    """The text that precedes the answer, for `extract: after_marker`."""
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

    name: str = Field(examples=["research-team"])
    """The team's name, stored with every run."""
    description: str = ""
    """One line on what the team is for."""
    model: str = Field(default="local", examples=["openai:gpt-4o-mini"])
    """Default model string for agents and rubric verifiers (`local`, `openai:NAME`, `scripted:FILE`, ...)."""
    agents: list[AgentSpec] = Field(min_length=1)
    """The agents (roles); names must be unique."""
    tools: dict[str, str] = Field(default_factory=dict, examples=[{"search": "mytools:search"}])
    """Tool name -> `package.module:function`; modules next to the team file are found."""
    mcp_servers: dict[str, McpServerSpec] = Field(
        default_factory=dict, examples=[{"calc": {"command": "python", "args": ["server.py"]}}]
    )
    """Server name -> an MCP server (stdio `command` or HTTP `url`); its tools are team tools
    named `SERVER.TOOL` (e.g. `calc.add`) that agents list under `tools:`."""
    verifiers: dict[str, VerifierSpec] = Field(default_factory=dict)
    """Verifier name -> its settings; stages and nodes refer to them by name."""
    topology: Topology
    """How the agents are wired: `kind: pipeline`, `group_chat` or `graph`."""
    termination: TerminationSpec = Field(default_factory=TerminationSpec)
    """When a run stops."""
    scoring: ScoringSpec = Field(default_factory=ScoringSpec)
    """How the final answer is scored against a ground truth (`--expect`)."""
    context_chars: int = Field(default=6000, ge=500)
    """Most characters of earlier conversation an agent is shown each turn."""

    _source_dir: Path | None = PrivateAttr(default=None)

    @property
    def source_dir(self) -> Path | None:
        """Folder of the team file this spec was read from; its modules are importable."""
        return self._source_dir

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
    # Bounded: a few hundred bytes of nested aliases or brackets must not exhaust
    # memory or the stack (see mascope/_safeload.py).
    text = read_text(path, what="team file")
    data = loads_yaml(text, source=str(path))
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a team file must be a mapping with name, agents and topology")
    spec = parse_team(data, source=str(path))
    spec._source_dir = path.resolve().parent
    return spec


def parse_team(data: dict[str, Any], *, source: str = "team") -> TeamSpec:
    try:
        spec = TeamSpec.model_validate(data)
    except ValidationError as exc:
        raise spec_error(source, exc, data, TeamSpec) from None
    check_team(spec, source=source)
    return spec


def _check_draft_defer(
    stage: StageSpec, source: str, where: str, agent: Callable[[str | None, str], None]
) -> None:
    """A draft_defer stage needs a verifier to score the draft and a drafter other than its own agent."""
    drafter = stage.strategy.drafter
    agent(drafter, f"{where}.strategy.drafter")
    if drafter == stage.agent:
        raise ConfigError(
            f"{source}: {where}.strategy.drafter: {drafter!r} is the stage's own agent, the strong one the stage defers to; "
            "name a different (cheaper) agent of the team as drafter"
        )
    if stage.verifier is None:
        raise ConfigError(
            f"{source}: {where}.strategy: draft_defer needs a verifier on the stage to score the draft; add verifier: NAME to the stage"
        )


def check_team(spec: TeamSpec, *, source: str = "team") -> None:
    """Cross-references: agents, verifiers and nodes that exist; a way to stop every cycle."""
    names = spec.agent_names
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise ConfigError(
            f"{source}: agents: names must be unique; {sorted(dupes)[0]!r} appears twice"
        )
    from mascope.traces import Redactor

    # Names are recorded and printed as they are (they are how steps are found), so
    # one shaped like a credential would put it in every file: refuse it instead.
    shapes = Redactor({})
    for i, name in enumerate(names):
        if shapes.text(name) != name:
            raise ConfigError(
                f"{source}: agents[{i}].name: looks like a credential (an API key or token); "
                "name the agent by its role, e.g. researcher"
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
            server, dot, remote = t.partition(".")
            if dot and remote and server in spec.mcp_servers:
                continue  # an MCP tool: whether the server has it is known once it starts
            if t not in spec.tools and t != "final_answer":
                known = [*spec.tools, *(f"{s}.TOOL" for s in spec.mcp_servers)]
                raise ConfigError(
                    f"{source}: agents[{i}].tools: no tool named {t!r}{did_you_mean(t, known)}; declare it under tools: "
                    "(name: package.module:function), or name an MCP server's tool as SERVER.TOOL"
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

    _check_pauses(spec, source)
    term = spec.termination
    bounded = term.max_steps is not None or term.budget is not None
    top = spec.topology
    if isinstance(top, PipelineSpec):
        stages = top.stage_list()
        stage_agents = [s.agent for s in stages]
        for i, s in enumerate(stages):
            agent(s.agent, f"topology.stages[{i}].agent")
            verifier(s.verifier, f"topology.stages[{i}].verifier")
            if s.strategy.kind == "draft_defer":
                _check_draft_defer(s, source, f"topology.stages[{i}]", agent)
            if s.retry_from is not None and s.retry_from not in stage_agents[: i + 1]:
                raise ConfigError(
                    f"{source}: topology.stages[{i}].retry_from: {s.retry_from!r} is not this stage or an earlier one ({', '.join(stage_agents[: i + 1])})"
                )
            if s.strategy.kind not in ("single", "self_consistency") and s.verifier is None:
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
            _check_edge(e, f"{source}: topology.edges[{i}]", targets)
        first_always: dict[str, int] = {}
        for i, e in enumerate(top.edges):
            j = first_always.get(e.from_)
            if j is not None:
                # Edges are tried in order and an always edge (or a router) always
                # decides, so this one could never fire: refuse it rather than ignore it.
                earlier = top.edges[j]
                kind = (
                    f"router edge edges[{j}] ({earlier.router_path})"
                    if earlier.router_path
                    else f"always edge edges[{j}]"
                )
                if e.when != "always" or earlier.router_path or e.router_path:
                    raise ConfigError(
                        f"{source}: topology.edges[{i}]: the edge {e.from_} -> {e.to or e.router_path} (when {e.when}) comes after "
                        f"the {kind} from {e.from_}, so it would never be taken; list it before that edge"
                    )
            if e.when == "always" or e.router_path:
                first_always.setdefault(e.from_, i)
        cycle = _find_cycle(node_names, [(e.from_, e.to) for e in top.edges if e.to is not None])
        if cycle and not bounded:
            raise ConfigError(
                f"{source}: topology.edges: the graph has a cycle ({' -> '.join(cycle)}) and nothing bounds it; "
                "set termination.max_steps or a budget"
            )


def _check_pauses(spec: TeamSpec, source: str) -> None:
    """A prompt belongs to a pause; a team that pauses keeps the agent name `human` for replies."""
    top = spec.topology
    places: list[tuple[str, StageSpec | NodeSpec | GroupChatSpec]] = []
    if isinstance(top, PipelineSpec):
        places = [(f"topology.stages[{i}]", s) for i, s in enumerate(top.stage_list())]
    elif isinstance(top, GraphSpec):
        places = [(f"topology.nodes[{i}]", n) for i, n in enumerate(top.nodes)]
    else:
        places = [("topology", top)]
    for where, place in places:
        if place.prompt is not None and place.interrupt is None:
            raise ConfigError(
                f"{source}: {where}.prompt: a prompt is shown only when the run pauses there; "
                + (
                    "add interrupt: round (or final)"
                    if isinstance(top, GroupChatSpec)
                    else "add interrupt: before (or after)"
                )
            )
    for name, v in spec.verifiers.items():
        if v.kind == "human" and v.ask_human_on_fail:
            raise ConfigError(
                f"{source}: verifiers.{name}.ask_human_on_fail: a human verifier already asks a "
                "person; remove ask_human_on_fail"
            )
    pauses = any(p.interrupt for _, p in places) or any(
        v.kind == "human" or v.ask_human_on_fail for v in spec.verifiers.values()
    )
    if pauses and HUMAN in spec.agent_names:
        raise ConfigError(
            f"{source}: agents: the name {HUMAN!r} is kept for a person's replies in a team that "
            "pauses for one; rename that agent"
        )


def _check_edge(e: EdgeSpec, where: str, targets: list[str]) -> None:
    """One edge: a known target and a condition, or a router and no target."""
    if e.router is not None and e.when != "always":
        raise ConfigError(
            f"{where}: give either router or when, not both (a router decides on its own)"
        )
    path = e.router_path
    if path is not None:
        module, _, attr = path.partition(":")
        parts = (*module.split("."), *attr.split("."))
        if not path.startswith("<python") and not all(p.isidentifier() for p in parts):
            raise ConfigError(
                f"{where}.{'router' if e.router is not None else 'when'}: a router is "
                f"package.module:function (got {path!r})"
            )
        if e.to is not None:
            raise ConfigError(
                f"{where}.to: a router edge picks its own target ({path} returns the next node); remove to"
            )
        return
    if e.to is None:
        raise ConfigError(
            f"{where}.to: required key is missing; add it, e.g. to: {targets[0]} (or END), "
            "or give router: package.module:function to let a function pick"
        )
    if e.to not in targets:
        raise ConfigError(
            f"{where}.to: no node named {e.to!r}{did_you_mean(e.to, targets)}; use END to finish"
        )
    if not (e.when in ("always", "passed", "failed") or e.when.startswith("contains:")):
        raise ConfigError(
            f"{where}.when: use always, passed, failed, contains:TEXT or a router package.module:function (got {e.when!r})"
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
