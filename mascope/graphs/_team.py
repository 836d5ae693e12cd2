"""Team: a compiled, recorded, resumable, forkable multi-agent run.

`Team` is the facade; the work behind it lives beside it: building one from
Python objects or a spec in `_construct`, how a run ends in `_result`, resuming
and forking a stored run in `_resume`, re-rolling in `_reroll`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

from langchain_core.runnables import RunnableConfig
from langgraph.types import Command

from mascope._sync import iterate_sync, run_sync
from mascope.agents import (
    Agent,
    AgentSpec,
    MatchResult,
    McpServer,
    McpServerSpec,
    Tool,
    Verifier,
    VerifierRates,
    mcp_sessions,
)
from mascope.errors import ConfigError, MascopeError, UserError
from mascope.models import ChatModel
from mascope.settings import Settings
from mascope.traces import TraceStore

from ._checkpoint import open_saver
from ._compile import CompiledTeam, NodeContext, compile_team
from ._construct import resolve_arguments, team_arguments
from ._context import RunContext
from ._events import LiveEvent, StepCallback, TokenEventCallback, live_events
from ._interrupts import pause_reason
from ._reroll import areroll
from ._resolved import Models, ResolvedTeam, Scorer, StageRates
from ._result import (
    ResultEvent,
    RunEvent,
    RunResult,
    answer_matches,
    close_paused,
    close_run,
    score_answer,
)
from ._resume import afork, aresume
from ._routing import Router
from ._spec import (
    EdgeSpec,
    GroupChatSpec,
    NodeSpec,
    ScoringSpec,
    StageSpec,
    TeamSpec,
    TerminationSpec,
    load_team_file,
)
from ._state import TeamState, initial_state
from ._topologies import Compiled

INTERRUPT = "__interrupt__"
"""The key under which LangGraph's streamed values carry a pending interrupt."""


@dataclass(eq=False)
class _HeldSaver:
    """The checkpoint saver an `async with team:` block keeps open, and on which loop."""

    loop: asyncio.AbstractEventLoop
    saver: Any
    stack: contextlib.AsyncExitStack
    depth: int = 1


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
        self._resolved = resolve_arguments(
            name,
            agents,
            topology=topology,
            stages=stages,
            speaker_selection=speaker_selection,
            manager=manager,
            chat_verifier=chat_verifier,
            chat_interrupt=chat_interrupt,
            chat_prompt=chat_prompt,
            nodes=nodes,
            edges=edges,
            start=start,
            final=final,
            verifiers=verifiers,
            tools=tools,
            termination=termination,
            scoring=scoring,
            model=model,
            description=description,
            context_chars=context_chars,
            mcp_servers=mcp_servers,
        )
        self._store_arg = store
        self._store: TraceStore | None = store if isinstance(store, TraceStore) else None
        self._built: CompiledTeam | None = None
        self._held: _HeldSaver | None = None

    async def __aenter__(self) -> Team:
        """Keep the team's checkpoint connection open for the runs, resumes and forks
        started inside the block (on this event loop), instead of one connection per run.

        For an app that runs a team again and again::

            async with team:
                for task in tasks:
                    await team.arun(task)

        Runs inside the block may run concurrently; they share the connection.
        """
        loop = asyncio.get_running_loop()
        if self._held is not None:
            if self._held.loop is not loop:
                raise UserError(
                    f"team {self.name!r} is already in an `async with` block on another event loop"
                )
            self._held.depth += 1
            return self
        stack = contextlib.AsyncExitStack()
        saver = await stack.enter_async_context(
            open_saver(self.store.checkpoint_location(), self.store.redact)
        )
        self._held = _HeldSaver(loop, saver, stack)
        return self

    async def __aexit__(self, *exc: object) -> None:
        held = self._held
        if held is None:
            return
        held.depth -= 1
        if held.depth == 0:
            self._held = None
            await held.stack.aclose()

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
        team = cls(**team_arguments(spec, source=source, base=base), store=store)
        team._resolve(
            # A group chat's speakers are the file's `topology.agents`, in its order (the
            # constructor takes every agent but the manager, in the agents' order).
            spec=spec if isinstance(spec.topology, GroupChatSpec) else team.spec,
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
        held = self._held
        if held is not None and held.loop is asyncio.get_running_loop():
            return contextlib.nullcontext(held.saver)  # `async with team:` keeps one open
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
                last: dict[str, Any] | None = None
                async for values in app.astream(
                    graph_input,
                    config,
                    context=NodeContext(run),
                    stream_mode="values",
                    durability="sync",
                ):
                    last = values if last is None or INTERRUPT not in last else last
                if last is not None and INTERRUPT not in last:
                    final = last  # the state after the last step: no need to read it back
                else:  # a pause (or nothing ran): what LangGraph has saved says which
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
            return close_paused(run, pause)
        return close_run(run, final, status_override, error)

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
        self,
        run_id: str,
        *,
        input: str | None = None,
        on_step: StepCallback | None = None,
        on_token: TokenEventCallback | None = None,
    ) -> RunResult:
        """Continue a run that was killed or interrupted from its last checkpoint, or a
        `paused` one with a person's `input` (the reply to its `RunResult.prompt`).

        Steps recorded after that checkpoint (by the node that was cut off, or
        that paused) are discarded and that node runs again; nothing before is
        redone. A paused node gets `input` as the answer to its question.
        """
        return await aresume(self, run_id, input=input, on_step=on_step, on_token=on_token)

    def resume(
        self,
        run_id: str,
        *,
        input: str | None = None,
        on_step: StepCallback | None = None,
        on_token: TokenEventCallback | None = None,
    ) -> RunResult:
        """Sync twin of `aresume`."""
        return run_sync(
            lambda: self.aresume(run_id, input=input, on_step=on_step, on_token=on_token),
            "resume",
            "aresume",
        )

    async def afork(
        self,
        run_id: str,
        *,
        step: int,
        content: str,
        on_step: StepCallback | None = None,
        on_token: TokenEventCallback | None = None,
    ) -> RunResult:
        """Re-run a run from step `step` with that step's output replaced by `content`.

        The child run shares the parent's steps before that node, records the
        replacement as its own step, and runs the rest of the team from there.
        """
        return await afork(
            self, run_id, step=step, content=content, on_step=on_step, on_token=on_token
        )

    def fork(
        self,
        run_id: str,
        *,
        step: int,
        content: str,
        on_step: StepCallback | None = None,
        on_token: TokenEventCallback | None = None,
    ) -> RunResult:
        """Sync twin of `afork`."""
        return run_sync(
            lambda: self.afork(
                run_id, step=step, content=content, on_step=on_step, on_token=on_token
            ),
            "fork",
            "afork",
        )

    async def areroll(
        self,
        run_id: str,
        *,
        step: int,
        metadata: Mapping[str, Any] | None = None,
        on_step: StepCallback | None = None,
        on_token: TokenEventCallback | None = None,
    ) -> RunResult:
        """Re-run a run from step `step` with nothing replaced: that step's node runs again live.

        The child run shares the parent's steps before that node and records
        the intervention `{"kind": "re-roll"}`; see `mascope.graphs._reroll`.
        """

        result: RunResult = await areroll(
            self, run_id, step=step, metadata=metadata, on_step=on_step, on_token=on_token
        )
        return result

    def reroll(
        self,
        run_id: str,
        *,
        step: int,
        on_step: StepCallback | None = None,
        on_token: TokenEventCallback | None = None,
    ) -> RunResult:
        """Sync twin of `areroll`."""
        return run_sync(
            lambda: self.areroll(run_id, step=step, on_step=on_step, on_token=on_token),
            "reroll",
            "areroll",
        )


__all__ = ["AgentSpec", "RunResult", "Team", "answer_matches"]
