"""Building a `Team`: from Python objects (agents, verifiers, routers and
scorers given as objects or functions, written into the spec by their import
paths) and from a `TeamSpec` read from YAML (every `function:` path imported
back, from the team file's folder first). `Team.__init__` and `Team.from_spec`
call `resolve_arguments` and `team_arguments` here, so the spec a team stores
with its runs and the objects it runs with are made in one place.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any, cast

from pydantic import ValidationError

from mascope.agents import (
    FINAL_ANSWER,
    Agent,
    AnswerMatch,
    AskHumanOnFail,
    CallableVerifier,
    CodeTests,
    Ensemble,
    HumanVerifier,
    JsonSchemaCheck,
    McpServer,
    McpServerSpec,
    Rubric,
    Tool,
    Verifier,
    as_verifier,
    final_answer_tool,
    function_path,
    import_function,
    load_mcp_tools,
    tool,
)
from mascope.errors import ConfigError, did_you_mean
from mascope.models import ChatModel

from ._resolved import Models, ResolvedTeam, Scorer, StageRates
from ._routing import Router, as_router
from ._spec import (
    EdgeSpec,
    GraphSpec,
    GroupChatSpec,
    NodeSpec,
    PipelineSpec,
    ScoringSpec,
    StageSpec,
    TeamSpec,
    TerminationSpec,
    VerifierSpec,
    parse_team,
)


def resolve_arguments(
    name: str,
    agents: Sequence[Agent],
    *,
    topology: str = "pipeline",
    stages: Sequence[str | Mapping[str, Any] | StageSpec] | None = None,
    speaker_selection: str = "round_robin",
    manager: str | None = None,
    chat_verifier: str | None = None,
    chat_interrupt: str | None = None,
    chat_prompt: str | None = None,
    nodes: Sequence[Mapping[str, Any] | NodeSpec] | None = None,
    edges: Sequence[Mapping[str, Any] | EdgeSpec] | None = None,
    start: str | None = None,
    final: str | None = None,
    verifiers: Mapping[str, Verifier | Callable[..., Any]] | None = None,
    tools: Sequence[Tool | Callable[..., Any]] = (),
    termination: TerminationSpec | Mapping[str, Any] | None = None,
    scoring: str | ScoringSpec | Mapping[str, Any] | Scorer | None = None,
    model: str | ChatModel = "local",
    description: str = "",
    context_chars: int = 6000,
    mcp_servers: Mapping[str, McpServer | McpServerSpec | Mapping[str, Any]] | None = None,
) -> ResolvedTeam:
    """The resolved team of `Team(...)`'s arguments (see `Team`): its spec, checked,
    and the objects it runs with."""
    by_name: dict[str, Agent] = {a.name: a for a in agents}
    routers: dict[int, Router] = {}
    checks: dict[str, Verifier] = {k: as_verifier(v, name=k) for k, v in (verifiers or {}).items()}
    offered: dict[str, Tool] = {}
    for t in tools:
        made = tool(t) if not isinstance(t, Tool) else t
        offered[made.name] = made
    for a in agents:
        offered.update(a.tools)
    term = (
        termination
        if isinstance(termination, TerminationSpec)
        else TerminationSpec.model_validate(dict(termination or {}))
    )
    if term.final_answer_tool:
        offered.setdefault(FINAL_ANSWER, final_answer_tool())
    topo: dict[str, Any]
    if topology == "pipeline":
        topo = {
            "kind": "pipeline",
            "stages": [
                s if isinstance(s, str | StageSpec) else dict(s)
                for s in (stages or [a.name for a in agents])
            ],
        }
    elif topology == "group_chat":
        topo = {
            "kind": "group_chat",
            "agents": [a.name for a in agents if a.name != manager],
            "speaker_selection": speaker_selection,
            "manager": manager,
            "verifier": chat_verifier,
            "interrupt": chat_interrupt,
            "prompt": chat_prompt,
        }
    elif topology == "graph":
        topo = {
            "kind": "graph",
            "start": start,
            "nodes": [n if isinstance(n, NodeSpec) else dict(n) for n in nodes or []],
            "edges": [_edge_data(i, e, routers) for i, e in enumerate(edges or [])],
            "final": final,
        }
    else:
        raise ConfigError(f"unknown topology {topology!r}; use pipeline, group_chat or graph")
    scorer, scoring_spec = _scoring(scoring)
    data = {
        "name": name,
        "description": description,
        "model": model if isinstance(model, str) else model.model_id,
        "agents": [a.spec.model_dump() for a in agents],
        "tools": {n: t.source or f"<python:{n}>" for n, t in offered.items() if n != FINAL_ANSWER},
        "verifiers": {
            k: _verifier_spec(v).model_dump(by_alias=True, exclude_none=True)
            for k, v in checks.items()
        },
        "topology": topo,
        "termination": term.model_dump(),
        "scoring": scoring_spec.model_dump(exclude_none=True),
        "context_chars": context_chars,
        "mcp_servers": {
            k: (v.spec if isinstance(v, McpServer) else v) for k, v in (mcp_servers or {}).items()
        },
    }
    spec = parse_team(data, source=f"team {name!r}")
    servers: dict[str, McpServer] = {
        k: v
        if isinstance(v, McpServer)
        else McpServer(k, spec.mcp_servers[k], source=f"team {name!r}")
        for k, v in (mcp_servers or {}).items()
    }
    offered.update(_mcp_tools(spec, servers))
    top = spec.topology
    for i, e in enumerate(top.edges if isinstance(top, GraphSpec) else []):
        path = e.router_path
        if path is not None and i not in routers:  # a path given in Python: import it now
            routers[i] = as_router(path, source=f"team {name!r}: topology.edges[{i}]")
    return ResolvedTeam(
        spec=spec,
        agents=MappingProxyType(by_name),
        tools=MappingProxyType(offered),
        verifiers=MappingProxyType(checks),
        routers=MappingProxyType(routers),
        mcp_servers=MappingProxyType(servers),
        models=Models(model),
        stage_rates=StageRates(spec, None, None),
        scorer=scorer,
    )


def team_arguments(spec: TeamSpec, *, source: str, base: str | Path | None) -> dict[str, Any]:
    """The keyword arguments of `Team(...)` that build the team `spec` describes, its
    `function:`, tool and router modules imported from `base` first."""
    agents = [
        Agent.from_spec(a, base_dir=base, source=f"{source}: agents[{i}].function")
        for i, a in enumerate(spec.agents)
    ]
    tools = []
    for name, path in spec.tools.items():
        fn = import_function(
            path, what=f"tool {name}", where=f"{source}: tools.{name}", base_dir=base
        )
        tools.append(tool(fn, name=name))
    for a in agents:
        a.tools = {}
    verifiers = {
        name: _build_verifier(name, v, spec, source, base) for name, v in spec.verifiers.items()
    }
    top = spec.topology
    kwargs: dict[str, Any] = {}
    if isinstance(top, PipelineSpec):
        kwargs = {"topology": "pipeline", "stages": top.stages}
    elif isinstance(top, GroupChatSpec):
        kwargs = {
            "topology": "group_chat",
            "speaker_selection": top.speaker_selection,
            "manager": top.manager,
            "chat_verifier": top.verifier,
            "chat_interrupt": top.interrupt,
            "chat_prompt": top.prompt,
        }
    else:
        kwargs = {
            "topology": "graph",
            "nodes": top.nodes,
            "edges": [
                _resolve_router(i, e, base, f"{source}: topology.edges[{i}]")
                for i, e in enumerate(top.edges)
            ],
            "start": top.start,
            "final": top.final,
        }
    servers = {
        name: McpServer(
            name, server, cwd=Path(base).resolve() if base is not None else None, source=source
        )
        for name, server in spec.mcp_servers.items()
    }
    return {
        "name": spec.name,
        "agents": agents,
        "mcp_servers": servers,
        "verifiers": verifiers,
        "tools": tools,
        "termination": spec.termination,
        "scoring": _import_scorer(spec.scoring, source) if spec.scoring.function else spec.scoring,
        "model": spec.model,
        "description": spec.description,
        "context_chars": spec.context_chars,
        **kwargs,
    }


def _edge_data(
    i: int, edge: Mapping[str, Any] | EdgeSpec, routers: dict[int, Router]
) -> dict[str, Any] | EdgeSpec:
    """An edge as spec data: a router given as a function (or `Router`) is written as its path."""
    if isinstance(edge, EdgeSpec):
        return edge
    data = dict(edge)
    for key in ("router", "when"):
        value = data.get(key)
        if isinstance(value, Router) or (
            value is not None and not isinstance(value, str) and callable(value)
        ):
            routers[i] = as_router(value)
            data[key] = routers[i].path
    return data


def _resolve_router(
    i: int, edge: EdgeSpec, base: str | Path | None, source: str
) -> dict[str, Any] | EdgeSpec:
    """A spec edge whose router is imported now (from `base` first), kept in the key it was written in."""
    path = edge.router_path
    if path is None:
        return edge
    key = "router" if edge.router is not None else "when"
    data = edge.model_dump(by_alias=True, exclude_none=True)
    data[key] = as_router(path, base_dir=base, source=f"{source}.{key}")
    return data


def _mcp_tools(spec: TeamSpec, servers: Mapping[str, McpServer]) -> dict[str, Tool]:
    """Start each MCP server once to list its tools; refuse an agent's tool no server has."""
    if not servers:
        return {}
    listed = load_mcp_tools(servers)
    for i, a in enumerate(spec.agents):
        for t in a.tools:
            server, dot, _ = t.partition(".")
            if dot and server in servers and t not in listed:
                has = sorted(n for n in listed if n.startswith(server + "."))
                where = servers[server].source
                raise ConfigError(
                    f"{where}: agents[{i}].tools: MCP server {server} has no tool {t!r}"
                    f"{did_you_mean(t, has)}; it has {', '.join(has) or 'no tools'}"
                )
    return dict(listed)


def _scoring(
    scoring: str | ScoringSpec | Mapping[str, Any] | Scorer | None,
) -> tuple[Scorer | None, ScoringSpec]:
    """The scoring function (if any) and how the stored spec writes it."""
    if scoring is None:
        return None, ScoringSpec()
    if isinstance(scoring, ScoringSpec):
        return None, scoring
    if isinstance(scoring, str | Mapping):
        try:
            spec = ScoringSpec.model_validate(scoring)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in ("scoring", *err["loc"]))
            raise ConfigError(f"{where}: {err['msg']}") from None
        return (_import_scorer(spec, "scoring") if spec.function else None), spec
    if callable(scoring):
        path = function_path(scoring, getattr(scoring, "__name__", "scoring"))
        return scoring, ScoringSpec(function=path)
    raise ConfigError(
        f"scoring must be a matcher name, a ScoringSpec, a mapping or a function, not {type(scoring).__name__}"
    )


def _import_scorer(spec: ScoringSpec, source: str) -> Scorer:
    """The function a team's `scoring.function` names."""
    fn = import_function(
        spec.function or "", what="scoring function", where=f"{source}: scoring.function"
    )
    return cast(Scorer, fn)


def _verifier_spec(v: Verifier) -> VerifierSpec:
    """How a verifier object is written into the stored spec."""
    if isinstance(v, AskHumanOnFail):
        inner = _verifier_spec(v.verifier)
        return inner.model_copy(update={"ask_human_on_fail": True, "prompt": v.prompt})
    if isinstance(v, AnswerMatch):
        return VerifierSpec(
            kind="answer_match",
            expected=v.expected,
            mode=v.mode,
            extract=v.extract,
            marker=v.marker,
            tolerance=v.tolerance,
        )
    if isinstance(v, JsonSchemaCheck):
        return VerifierSpec.model_validate({"kind": "json_schema", "schema": v.schema})
    if isinstance(v, CodeTests):
        return VerifierSpec(
            kind="code_tests",
            tests=v.tests,
            tests_from=v.tests_from,
            code_from=v.code_from,
            timeout_s=v.timeout_s,
            memory_mb=v.memory_mb,
        )
    if isinstance(v, Rubric):
        ref = v._model_ref
        return VerifierSpec(
            kind="rubric", rubric=v.rubric, model=ref if isinstance(ref, str) else None
        )
    if isinstance(v, Ensemble):
        return VerifierSpec(kind="python", function=f"<python:{v.name}>")
    if isinstance(v, HumanVerifier):
        return VerifierSpec(kind="human", prompt=v.prompt)
    fn = getattr(v, "fn", None)
    path = function_path(fn, v.name) if fn is not None else f"<python:{v.name}>"
    return VerifierSpec(kind="python", function=path)


def _build_verifier(
    name: str, v: VerifierSpec, spec: TeamSpec, source: str, base_dir: str | Path | None = None
) -> Verifier:
    if v.ask_human_on_fail:
        inner = v.model_copy(update={"ask_human_on_fail": False, "prompt": None})
        first = _build_verifier(name, inner, spec, source, base_dir)
        return AskHumanOnFail(first, prompt=v.prompt, name=name)
    if v.kind == "answer_match":
        return AnswerMatch(
            v.expected,
            mode=v.mode,
            extract=v.extract,
            marker=v.marker,
            tolerance=v.tolerance,
            name=name,
        )
    if v.kind == "json_schema":
        return JsonSchemaCheck(v.schema_ or {}, name=name)
    if v.kind == "code_tests":
        return CodeTests(
            tests=v.tests,
            tests_from=v.tests_from,
            code_from=v.code_from,
            timeout_s=v.timeout_s,
            memory_mb=v.memory_mb,
            name=name,
        )
    if v.kind == "rubric":
        return Rubric(v.rubric or "", model=v.model or spec.model, name=name)
    if v.kind == "human":
        return HumanVerifier(v.prompt, name=name)
    if v.kind == "ensemble":
        return Ensemble(
            [_build_verifier(m, spec.verifiers[m], spec, source, base_dir) for m in v.members],
            mode=v.combine,
            threshold=v.threshold,
            name=name,
        )
    fn = import_function(
        v.function or "<python>",
        what=f"verifier {name}",
        where=f"{source}: verifiers.{name}.function",
        base_dir=base_dir,
    )
    return CallableVerifier(fn, name=name)


__all__ = ["resolve_arguments", "team_arguments"]
