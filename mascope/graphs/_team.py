"""Team: a compiled, recorded, resumable, forkable multi-agent run."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar, cast

from langchain_core.runnables import RunnableConfig
from langgraph.types import Command
from pydantic import ValidationError

from mascope._sync import iterate_sync, run_sync
from mascope._vocabulary import SUCCESS_TERMINATIONS, TerminationReason
from mascope.agents import (
    FINAL_ANSWER,
    Agent,
    AgentSpec,
    AnswerMatch,
    AskHumanOnFail,
    CallableVerifier,
    CodeTests,
    Ensemble,
    HumanVerifier,
    JsonSchemaCheck,
    MatchResult,
    McpServer,
    McpServerSpec,
    Rubric,
    Tool,
    Verifier,
    VerifierRates,
    as_verifier,
    final_answer_tool,
    function_path,
    import_function,
    load_mcp_tools,
    match_answer,
    mcp_sessions,
    parse_verdict_text,
    tool,
)
from mascope.errors import ConfigError, MascopeError, UserError, did_you_mean
from mascope.models import ChatModel
from mascope.settings import Settings
from mascope.traces import Step, TraceStore, pause_question

from ._checkpoint import open_saver
from ._compile import CompiledTeam, NodeContext, compile_team
from ._context import RunContext
from ._events import (
    LiveEvent,
    RestartEvent,
    RunEventKind,
    StepCallback,
    StepEvent,
    TokenEvent,
    TokenEventCallback,
    live_events,
)
from ._interrupts import pause_reason
from ._reroll import areroll, branch_context, branch_point, start_branch
from ._resolved import Models, ResolvedTeam, Scorer, StageRates
from ._routing import Router, RouterError, as_router
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
    load_team_file,
    parse_team,
)
from ._state import TeamState, initial_state
from ._topologies import AgentProduct, Compiled


@dataclass(frozen=True)
class RunResult:
    """How a run ended; `steps` loads its steps from the store on first use."""

    run_id: str
    status: str
    answer: str | None
    termination_reason: str | None
    step_count: int
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    error: str | None = None
    parent_run_id: str | None = None
    fork_step: int | None = None
    prompt: str | None = None
    """A paused run: what the person is asked (continue it with `Team.resume(run_id, input=...)`)."""
    store: TraceStore | None = field(default=None, repr=False, compare=False)
    _loaded: dict[str, list[Step]] = field(default_factory=dict, repr=False, compare=False)

    @property
    def steps(self) -> list[Step]:
        """Every step of the run, in order (read from the store once, then kept)."""
        if "steps" not in self._loaded:
            if self.store is None:
                raise UserError(
                    f"this RunResult for run {self.run_id} has no store; read its steps with "
                    f"TraceStore(...).steps({self.run_id!r})"
                )
            self._loaded["steps"] = self.store.steps(self.run_id)
        return self._loaded["steps"]

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"

    @property
    def paused(self) -> bool:
        """The run is waiting for a person's input (see `prompt`): neither done nor failed."""
        return self.status == "paused"

    @property
    def abstained(self) -> bool:
        """The run chose to give no answer (a calibrated strategy): neither success nor failure."""
        return self.status == "abstained"

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True)
class ResultEvent:
    """The last event of `Team.astream`: how the run ended."""

    event: ClassVar[RunEventKind] = "result"
    result: RunResult


RunEvent = StepEvent | TokenEvent | RestartEvent | ResultEvent
"""What `Team.astream` yields; tell them apart by class or by `event`."""


def answer_matches(answer: str | None, expected: str) -> bool:
    """The default scoring: the expected answer appears in the answer (or in its
    part after `ANSWER:`) as whole words or numbers, after normalising."""
    return answer is not None and match_answer(answer, expected).matched


def score_answer(
    answer: str | None, expected: str, scoring: ScoringSpec, scorer: Scorer | None = None
) -> MatchResult:
    """Score a final answer against the ground truth the way the team says."""
    if answer is None:
        return MatchResult(False, scoring.function or scoring.match, "")
    if scorer is None:
        return match_answer(
            answer,
            expected,
            mode=scoring.match,
            extract=scoring.extract,
            marker=scoring.marker,
            tolerance=scoring.tolerance,
        )
    name = scoring.function or "function"
    try:
        got = scorer(answer, expected)
    except Exception as exc:  # a user's scorer failing must not lose the run's outcome
        return MatchResult(False, f"{name} (raised {type(exc).__name__}: {exc})"[:300], answer)
    if isinstance(got, MatchResult):
        return got
    if isinstance(got, tuple) and len(got) == 2:
        return MatchResult(bool(got[0]), name, answer, found=str(got[1]) or None)
    return MatchResult(bool(got), name, answer)


class Team:
    """A team of agents, compiled to a LangGraph graph and recorded in a trace store.

    Build one from YAML (`Team.from_yaml`) or in Python::

        team = Team("math", agents=[solver, checker], topology="pipeline",
                    stages=["solver", {"agent": "checker"}])
        result = team.run("What is 2 + 3?")
    """

    def __init__(
        self,
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
        store: TraceStore | str | Path | None = None,
        description: str = "",
        context_chars: int = 6000,
        mcp_servers: Mapping[str, McpServer | McpServerSpec | Mapping[str, Any]] | None = None,
    ):
        by_name: dict[str, Agent] = {a.name: a for a in agents}
        routers: dict[int, Router] = {}
        checks: dict[str, Verifier] = {
            k: as_verifier(v, name=k) for k, v in (verifiers or {}).items()
        }
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
            "tools": {
                n: t.source or f"<python:{n}>" for n, t in offered.items() if n != FINAL_ANSWER
            },
            "verifiers": {
                k: _verifier_spec(v).model_dump(by_alias=True, exclude_none=True)
                for k, v in checks.items()
            },
            "topology": topo,
            "termination": term.model_dump(),
            "scoring": scoring_spec.model_dump(exclude_none=True),
            "context_chars": context_chars,
            "mcp_servers": {
                k: (v.spec if isinstance(v, McpServer) else v)
                for k, v in (mcp_servers or {}).items()
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
        self._store_arg = store
        self._store: TraceStore | None = store if isinstance(store, TraceStore) else None
        self._resolved = ResolvedTeam(
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
        self._built: CompiledTeam | None = None

    # -- construction from data -------------------------------------------------

    @classmethod
    def from_yaml(
        cls,
        path: str | Path,
        *,
        model: str | None = None,
        store: TraceStore | str | Path | None = None,
    ) -> Team:
        """A team from a YAML file; `model` overrides every model in it."""
        return cls.from_spec(load_team_file(path), model=model, store=store, source=str(path))

    @classmethod
    def from_run(cls, store: TraceStore, run_id: str, *, model: str | None = None) -> Team:
        """The team a stored run ran with, rebuilt from the spec recorded with it.

        Its models are the run's (`model` overrides every one) and its function
        and tool modules are looked up in the run's team folder first. Raises a
        UserError for a run mascope did not run (an imported one), or one whose
        Python function agent cannot be imported back.
        """
        from ._rebuild import check_functions, stored_spec

        rid, spec, meta = stored_spec(store, run_id)
        try:
            team = cls.from_spec(
                spec,
                model=model or meta.get("model"),
                store=store,
                source=f"run {rid}'s team",
                base_dir=meta.get("team_dir"),
            )
        except UserError as exc:
            raise UserError(f"run {rid} cannot be re-run: {exc}") from None
        check_functions(store, rid, team.agents)
        return team

    @classmethod
    def from_spec(
        cls,
        spec: TeamSpec,
        *,
        model: str | None = None,
        store: TraceStore | str | Path | None = None,
        source: str = "team",
        base_dir: str | Path | None = None,
    ) -> Team:
        """A team from its spec; `function:` and tool modules are looked up in `base_dir`
        first (default: the folder of the team file the spec was read from)."""
        base = base_dir if base_dir is not None else spec.source_dir
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
        team = cls(
            spec.name,
            agents,
            mcp_servers=servers,
            verifiers=verifiers,
            tools=tools,
            termination=spec.termination,
            scoring=_import_scorer(spec.scoring, source) if spec.scoring.function else spec.scoring,
            model=spec.model,
            store=store,
            description=spec.description,
            context_chars=spec.context_chars,
            **kwargs,
        )
        team._resolve(
            # A group chat's speakers are the file's `topology.agents`, in its order (the
            # constructor takes every agent but the manager, in the agents' order).
            spec=spec if isinstance(top, GroupChatSpec) else team.spec,
            base_dir=Path(base).resolve() if base is not None else None,
        )
        if model:
            team.override_model(model)
        return team

    def _where_from(self) -> dict[str, Any]:
        """Run metadata that lets a later resume, fork or replay rebuild this team."""
        meta: dict[str, Any] = {"model": self._resolved.model}
        if self.base_dir is not None:
            meta["team_dir"] = str(self.base_dir)  # where its function: modules live
        return meta

    def override_model(self, model: str) -> None:
        """Use `model` for every agent, rubric verifier and manager."""
        from mascope.models import parse_model_string

        parse_model_string(model)
        # New model instances, and calibrations read anew: one holds for the model it measured.
        self._resolve(model_override=model)

    def _resolve(
        self,
        *,
        spec: TeamSpec | None = None,
        base_dir: Path | None = None,
        model_override: str | None = None,
    ) -> None:
        """Build the resolved team anew with these changes (`None`: as it is, except the
        models and calibrations, made afresh); the graph is compiled again on next use."""
        old = self._resolved
        spec = spec or old.spec
        base_dir = base_dir or old.base_dir
        override = model_override or old.models.override
        self._resolved = replace(
            old, spec=spec, base_dir=base_dir, models=Models(old.models.default, override),
            stage_rates=StageRates(spec, base_dir, override),
        )  # fmt: skip
        self._built = None

    # -- properties -----------------------------------------------------------------

    @property
    def resolved(self) -> ResolvedTeam:
        """What the team's graph is compiled from and its runs read (rebuilt when
        the team changes, e.g. by `override_model`)."""
        return self._resolved

    @property
    def name(self) -> str:
        return self._resolved.spec.name

    @property
    def spec(self) -> TeamSpec:
        return self._resolved.spec

    @property
    def agents(self) -> Mapping[str, Agent]:
        return self._resolved.agents

    @property
    def tools(self) -> Mapping[str, Tool]:
        return self._resolved.tools

    @property
    def verifiers(self) -> Mapping[str, Verifier]:
        return self._resolved.verifiers

    @property
    def routers(self) -> Mapping[int, Router]:
        """Graph topology: the router of each router edge, by the edge's index."""
        return self._resolved.routers

    @property
    def mcp_servers(self) -> Mapping[str, McpServer]:
        """MCP servers whose tools the agents may call (each run connects to them anew)."""
        return self._resolved.mcp_servers

    @property
    def base_dir(self) -> Path | None:
        """Folder searched first for `function:` and tool modules (the team file's)."""
        return self._resolved.base_dir

    @base_dir.setter
    def base_dir(self, value: Path | None) -> None:
        old = self._resolved
        self._resolved = replace(
            old, base_dir=value, stage_rates=StageRates(old.spec, value, old.models.override)
        )
        self._built = None

    def score(self, answer: str | None, expected: str) -> MatchResult:
        """Score an answer against a ground truth the way this team scores its runs."""
        return score_answer(answer, expected, self.spec.scoring, self._resolved.scorer)

    @property
    def store(self) -> TraceStore:
        if self._store is None:
            target = None if self._store_arg is None else self._store_arg
            self._store = (
                TraceStore(cast(Any, target))
                if target is not None
                else TraceStore(Settings.load().db)
            )
        return self._store

    def _compiled_team(self) -> CompiledTeam:
        """The graph of the current resolved team, compiled on first use."""
        if self._built is None or self._built.team is not self._resolved:
            self._built = compile_team(self._resolved)
        return self._built

    @property
    def _compiled(self) -> Compiled:
        return self._compiled_team().topology

    @property
    def graph(self) -> Any:
        """The compiled LangGraph graph (without a checkpointer), for inspection."""
        return self._compiled_team().app

    def _with_checkpointer(self, saver: Any) -> Any:
        # Compiling once and swapping the checkpointer per run saves a compile per run.
        return self.graph.copy(update={"checkpointer": saver})

    def _app_for(self, team: ResolvedTeam) -> Any:
        """The graph a run started on `team` runs (the team's own, unless it changed since)."""
        built = self._compiled_team()
        return built.app if built.team is team else compile_team(team).app

    def model_for(self, agent: Agent) -> ChatModel:
        return self._resolved.model_for(agent)

    def resolve_model(self, ref: str | ChatModel) -> ChatModel:
        """The team's one instance of a model: every caller with the same model
        string (agents, rubric verifiers, the manager) shares it, so a scripted
        model's replies are consumed in order by all of them."""
        return self._resolved.models.resolve(ref)

    def check_models(self) -> None:
        """Resolve every model before a run starts, so a bad model string or a
        missing key fails before anything is recorded."""
        self._resolved.check_models()

    def check_calibrations(self) -> None:
        """Read the calibration files the stages' strategies name (relative to the team
        file), refusing one made for another team or too thin to drive a stopping rule."""
        self._resolved.stage_rates.check()

    def stage_rates(self, stage: int) -> VerifierRates:
        """The measured rates of stage `stage`'s verifier (its strategy names a calibration)."""
        return self._resolved.stage_rates[stage]

    # -- running -------------------------------------------------------------------------

    def _checkpointer(self) -> contextlib.AbstractAsyncContextManager[Any]:
        """A redacting LangGraph saver where the store keeps its checkpoints (a SQLite
        file beside a SQLite store; the same database for PostgreSQL)."""
        return open_saver(self.store.checkpoint_location(), self.store.redact)

    async def _execute(
        self,
        run: RunContext,
        graph_input: TeamState | Command[Any] | None,
        *,
        fork: tuple[str, dict[str, Any]] | None = None,
    ) -> RunResult:
        store = run.store
        config: RunnableConfig = {
            "configurable": {"thread_id": run.run_id},
            "recursion_limit": 100_000,
        }
        error: str | None = None
        status_override: str | None = None
        pause: dict[str, Any] | None = None
        try:
            async with self._checkpointer() as saver, mcp_sessions(run.team.mcp_servers):
                app = self._app_for(run.team).copy(update={"checkpointer": saver})
                if fork is not None:
                    node, values = fork
                    await app.aupdate_state(config, values, as_node=node)
                    graph_input = None
                async for _ in app.astream(
                    graph_input,
                    config,
                    context=NodeContext(run),
                    stream_mode="updates",
                    durability="sync",
                ):
                    pass
                snapshot = await app.aget_state(config)
                final = snapshot.values
                if snapshot.interrupts:  # LangGraph's interrupt: waiting for a person
                    pause = pause_reason(snapshot.interrupts[0].value)
        except (KeyboardInterrupt, asyncio.CancelledError):
            store.finish_run(run.run_id, status="interrupted", termination_reason="interrupted")
            raise
        except UserError:
            store.finish_run(run.run_id, status="error", termination_reason="error")
            raise
        except Exception as exc:  # the run ends `error`; what it recorded stays
            error = (
                f"{type(exc).__name__}: {exc}" if not isinstance(exc, MascopeError) else str(exc)
            )
            run.node = None
            run.record(agent="runtime", kind="error", content=error, error=error)
            status_override = "error"
            final = {}
        if pause is not None and status_override is None:
            return self._pause(run, pause)
        return self._finish(run, final, status_override, error)

    def _pause(self, run: RunContext, pause: dict[str, Any]) -> RunResult:
        """Close the run row as `paused`, saying what the person is asked."""
        prompt = str(pause.get("prompt", ""))
        row = run.store.finish_run(
            run.run_id,
            status="paused",
            termination_reason="paused",
            metadata={"pause": {"prompt": prompt, "step": pause.get("step")}},
        )
        return _result(run, row, None, prompt)

    def _finish(
        self,
        run: RunContext,
        final: Mapping[str, Any],
        status_override: str | None,
        error: str | None,
    ) -> RunResult:
        if status_override == "error":
            row = run.store.finish_run(
                run.run_id, status="error", termination_reason="error", metadata={"error": error}
            )
        else:
            reason: TerminationReason = final.get("termination") or "end"
            answer = final.get("final_answer")
            if answer is None and reason != "abstained":
                answer = final.get("last_output") or None
            status = "succeeded" if reason in SUCCESS_TERMINATIONS else "failed"
            meta: dict[str, Any] = {}
            if reason == "abstained":
                # Neither right nor wrong: no answer was given (see docs/runtime.md).
                status = "abstained"
            elif run.ground_truth is not None:
                team = run.team
                scored = score_answer(answer, run.ground_truth, team.spec.scoring, team.scorer)
                correct = scored.matched
                meta["answer_correct"] = correct
                meta["scoring"] = {
                    "matcher": scored.matcher,
                    "matched": correct,
                    "span": list(scored.span) if scored.span else None,
                    "found": scored.found[:500] if scored.found else None,
                }
                if status == "succeeded" and not correct:
                    status = "failed"
            row = run.store.finish_run(
                run.run_id,
                status=status,
                final_answer=answer,
                termination_reason=reason,
                metadata=meta,
            )
        return _result(run, row, error)

    async def arun(
        self,
        task: str,
        *,
        ground_truth: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        on_step: StepCallback | None = None,
        on_token: TokenEventCallback | None = None,
    ) -> RunResult:
        """Run the team on `task` and record everything; returns how it ended.

        A ground truth, when given, is stored with the run and decides
        whether a run that finished normally succeeded. `on_step` is called with
        each step as it is recorded; `on_token` with the pieces of each plain-text
        answer while it is generated (see `astream`).
        """
        if not task or not task.strip():
            raise ConfigError("the task is empty; say what the team should do")
        self.check_models()
        store = self.store
        run_id = store.start_run(
            team=self.name,
            task=task,
            spec=self.spec.dump(),
            spec_hash=self.spec.hash(),
            ground_truth=ground_truth,
            metadata={**(metadata or {}), **self._where_from()},
        )
        run = RunContext(
            self._resolved,
            store,
            run_id,
            ground_truth=ground_truth,
            on_step=on_step,
            on_token=on_token,
        )
        return await self._execute(run, initial_state(task))

    def run(
        self,
        task: str,
        *,
        ground_truth: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        on_step: StepCallback | None = None,
        on_token: TokenEventCallback | None = None,
    ) -> RunResult:
        """Sync twin of `arun`."""
        return run_sync(
            lambda: self.arun(
                task,
                ground_truth=ground_truth,
                metadata=metadata,
                on_step=on_step,
                on_token=on_token,
            ),
            "run",
            "arun",
        )

    async def astream(
        self,
        task: str,
        *,
        ground_truth: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> AsyncIterator[RunEvent]:
        """Run the team on `task` like `arun`, yielding what happens as it happens.

        Yields `TokenEvent`s (pieces of an agent's plain-text answer while it is
        generated), `RestartEvent`s (a call that failed mid-answer is retried: the
        pieces shown of it are void), `StepEvent`s (each step as it is recorded;
        an answer's pieces come before its step) and last a `ResultEvent` with the
        `RunResult`. Tool-call and structured (JSON schema) turns are not streamed:
        their steps arrive whole. Closing the iterator early (`aclose()`) cancels the
        run, which is recorded as interrupted.
        """
        queue: asyncio.Queue[LiveEvent] = asyncio.Queue()
        job = asyncio.ensure_future(
            self.arun(
                task,
                ground_truth=ground_truth,
                metadata=metadata,
                on_step=queue.put_nowait,
                on_token=queue.put_nowait,
            )
        )
        # Closed with us: a consumer that stops early cancels the run now, not at GC.
        async with contextlib.aclosing(live_events(queue, job)) as events:
            async for event in events:
                yield event
        yield ResultEvent(job.result())

    def stream(
        self,
        task: str,
        *,
        ground_truth: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Iterator[RunEvent]:
        """Sync twin of `astream`."""
        return iterate_sync(
            lambda: self.astream(task, ground_truth=ground_truth, metadata=metadata),
            "stream",
            "astream",
        )

    async def aresume(
        self, run_id: str, *, input: str | None = None, on_step: StepCallback | None = None
    ) -> RunResult:
        """Continue a run that was killed or interrupted from its last checkpoint, or a
        `paused` one with a person's `input` (the reply to its `RunResult.prompt`).

        Steps recorded after that checkpoint (by the node that was cut off, or
        that paused) are discarded and that node runs again; nothing before is
        redone. A paused node gets `input` as the answer to its question.
        """
        store = self.store
        store.recover_interrupted()
        row = store.get_run(store.resolve_run_id(run_id))
        _check_resumable(row, input)
        self.check_models()
        config: RunnableConfig = {"configurable": {"thread_id": row.id}}
        async with self._checkpointer() as saver:
            snapshot = await self._with_checkpointer(saver).aget_state(config)
        values = dict(snapshot.values or {})
        if input is not None and not snapshot.interrupts:
            raise UserError(
                f"run {row.id} is paused but its checkpoint holds no question "
                f"(was {store.checkpoint_location()} deleted?); it cannot be continued"
            )
        store.reopen_run(row.id)
        keep = int(values.get("next_step", 0)) if values else 0
        dropped = store.truncate_steps(row.id, keep)
        run = RunContext(
            self._resolved, store, row.id, ground_truth=row.ground_truth, on_step=on_step
        )
        run.load_transcript()
        if input is not None:
            # The node that asked runs again and records its question and this answer.
            store.update_run_metadata(row.id, {"pause": None})
            return await self._execute(run, Command(resume=input))
        run.record(
            agent="runtime",
            kind="event",
            content=f"resumed after interruption; {dropped} unfinished step(s) of the interrupted node are redone",
            data={"event": "resume", "discarded_steps": dropped},
        )
        if not values:  # killed before the first checkpoint: start over
            return await self._execute(run, initial_state(row.task))
        if not snapshot.next:  # the graph had finished; only the run row was not closed
            return self._finish(run, values, None, None)
        return await self._execute(run, None)

    def resume(
        self, run_id: str, *, input: str | None = None, on_step: StepCallback | None = None
    ) -> RunResult:
        """Sync twin of `aresume`."""
        return run_sync(
            lambda: self.aresume(run_id, input=input, on_step=on_step), "resume", "aresume"
        )

    async def afork(
        self, run_id: str, *, step: int, content: str, on_step: StepCallback | None = None
    ) -> RunResult:
        """Re-run a run from step `step` with that step's output replaced by `content`.

        The child run shares the parent's steps before that node, records the
        replacement as its own step, and runs the rest of the team from there.
        """
        parent, target, group_start = branch_point(self, run_id, step, "fork")
        node: str = (target.data or {})["node"]  # branch_point checked it is one of ours
        thread = (target.data or {}).get("thread", parent.id)
        self.check_models()
        async with self._checkpointer() as saver:
            app = self._with_checkpointer(saver)
            before = await app.aget_state(
                {"configurable": {"thread_id": thread, "checkpoint_id": target.checkpoint_id}}
            )
        if not before.values:
            raise UserError(
                f"the checkpoint before step {step} of run {parent.id} is gone (was the checkpoint file deleted?)"
            )
        child_id = start_branch(self, parent, target, intervention={"replacement": content})
        run = branch_context(self, parent, child_id, group_start, on_step)
        state: TeamState = dict(before.values)  # type: ignore[assignment]
        nodedef = self._compiled.nodes[node]
        run.node = node
        run.checkpoint_id = target.checkpoint_id
        if target.kind == "verdict":
            verdict = parse_verdict_text(content)
            run.record(
                agent=target.agent,
                kind="verdict",
                content=content,
                data={
                    "passed": verdict.passed,
                    "intervention": True,
                    "replaces_step": step,
                    "thread": thread,
                },
            )
            product: Any = verdict
        else:
            run.record(
                agent=target.agent,
                kind="message",
                content=content,
                data={"intervention": True, "replaces_step": step, "thread": thread},
            )
            product = AgentProduct(content)
            if nodedef.kind == "select":
                product = content.strip()
            elif isinstance(self.spec.topology, PipelineSpec):
                product = await self._reverify_for_fork(run, state, node, content)
        try:
            update = nodedef.apply(state, product)
        except RouterError as exc:  # the replacement sent a router nowhere: the child ends in error
            run.node = None
            run.record(agent="runtime", kind="error", content=str(exc), error=str(exc))
            return self._finish(run, {}, "error", str(exc))
        update["next_step"] = run.next_step
        values = {**state, **update}
        run.node = None
        return await self._execute(run, None, fork=(node, values))

    async def _reverify_for_fork(
        self, run: RunContext, state: TeamState, node: str, content: str
    ) -> AgentProduct:
        """A pipeline stage that verifies inside its node (a strategy) checks the replacement too."""
        top = self.spec.topology
        assert isinstance(top, PipelineSpec)
        index = int(node.split(".", 1)[0].removeprefix("stage"))
        stage = top.stage_list()[index]
        if stage.strategy.kind == "single" or stage.verifier is None:
            return AgentProduct(content)
        outputs = {**state.get("outputs", {}), stage.agent: content}
        verdict = await run.verify(
            stage.verifier, self.verifiers[stage.verifier], content, state, outputs
        )
        return AgentProduct(content, verdict=verdict)

    def fork(
        self, run_id: str, *, step: int, content: str, on_step: StepCallback | None = None
    ) -> RunResult:
        """Sync twin of `afork`."""
        return run_sync(
            lambda: self.afork(run_id, step=step, content=content, on_step=on_step), "fork", "afork"
        )

    async def areroll(
        self,
        run_id: str,
        *,
        step: int,
        metadata: Mapping[str, Any] | None = None,
        on_step: StepCallback | None = None,
    ) -> RunResult:
        """Re-run a run from step `step` with nothing replaced: that step's node runs again live.

        The child run shares the parent's steps before that node and records
        the intervention `{"kind": "re-roll"}`; see `mascope.graphs._reroll`.
        """

        result: RunResult = await areroll(
            self, run_id, step=step, metadata=metadata, on_step=on_step
        )
        return result

    def reroll(self, run_id: str, *, step: int, on_step: StepCallback | None = None) -> RunResult:
        """Sync twin of `areroll`."""
        return run_sync(
            lambda: self.areroll(run_id, step=step, on_step=on_step), "reroll", "areroll"
        )


def _check_resumable(row: Any, reply: str | None) -> None:
    """Refuse a resume that cannot go on: a live run, a finished one, a paused one
    without a reply, a reply to a run that asked nothing."""
    if row.status == "running":
        raise UserError(
            f"run {row.id} is still running in another process; wait for it or kill it first"
        )
    fork = f"fork it to re-run from a step: mascope runs fork {row.id} --step K --content TEXT"
    if row.status == "paused":
        if reply is None:
            raise UserError(
                f"run {row.id} is paused for a person's input; continue it with "
                f"mascope runs resume {row.id} --input TEXT (the question: {_pause_prompt(row)})"
            )
        if not reply.strip():
            raise UserError(
                f"--input is empty; reply to run {row.id}'s question with some text, e.g. --input ok"
            )
    elif reply is not None:
        again = f"resume it without --input: mascope runs resume {row.id}"
        raise UserError(
            f"run {row.id} is {row.status}, not paused, so it takes no --input; "
            + (again if row.status in ("interrupted", "error") else fork)
        )
    elif row.status not in ("interrupted", "error"):
        raise UserError(f"run {row.id} already finished ({row.status}); {fork}")


def _pause_prompt(row: Any) -> str:
    """What a paused run's row says its person is asked, on one line."""
    words = " ".join((pause_question(row.metadata_) or "see its last step").split())
    return words if len(words) <= 120 else words[:119] + "…"


def _result(run: RunContext, row: Any, error: str | None, prompt: str | None = None) -> RunResult:
    """The RunResult of a run whose row was just closed."""
    return RunResult(
        run_id=row.id,
        status=row.status,
        answer=row.final_answer,
        termination_reason=row.termination_reason,
        step_count=row.step_count,
        input_tokens=row.input_tokens,
        output_tokens=row.output_tokens,
        cost_usd=row.cost_usd,
        error=run.store.redact.optional(error),  # it is printed and may quote the task
        parent_run_id=row.parent_run_id,
        fork_step=row.fork_step,
        prompt=run.store.redact.optional(prompt),
        store=run.store,
    )


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


__all__ = ["AgentSpec", "RunResult", "Team", "answer_matches"]
