"""A resolved team compiled to a LangGraph graph: its topology's nodes, each wrapped to
take its run from LangGraph's runtime context, record, pause and enforce the limits."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, cast

from langchain_core.runnables import RunnableConfig
from langgraph.graph import StateGraph
from langgraph.runtime import Runtime

from mascope._vocabulary import TerminationReason
from mascope.agents import asking

from ._context import RunContext
from ._interrupts import Paused, asker, default_prompt, with_human
from ._resolved import ResolvedTeam
from ._spec import GroupChatSpec, PipelineSpec, TerminationSpec
from ._state import TeamState
from ._topologies import Compiled, NodeDef, build_graph, build_group_chat, build_pipeline


@dataclass(frozen=True, eq=False)
class CompiledTeam:
    """A resolved team, its topology's nodes and the compiled graph (without a checkpointer)."""

    team: ResolvedTeam
    topology: Compiled
    app: Any


@dataclass(frozen=True)
class NodeContext:
    """LangGraph's runtime context of a run: its RunContext (`astream(context=...)`)."""

    run: RunContext


def compile_team(team: ResolvedTeam) -> CompiledTeam:
    top = team.spec.topology
    if isinstance(top, PipelineSpec):
        compiled = build_pipeline(team, top)
    elif isinstance(top, GroupChatSpec):
        compiled = build_group_chat(team, top)
    else:
        compiled = build_graph(team, top)
    # Each run's RunContext reaches its nodes as LangGraph's runtime context
    # (`astream(context=NodeContext(run))`), so concurrent runs of one team never meet.
    graph: StateGraph[Any, NodeContext] = StateGraph(TeamState, context_schema=NodeContext)
    pause_of: dict[str, str] = {}
    for name, node in compiled.nodes.items():
        graph.add_node(name, _loose(partial(_run_node, name, node, team.spec.termination)))
        if node.interrupt == "after":
            # Its own node: continuing the run re-runs only the pause, not the agent's turn.
            pause_of[name] = f"{name}.pause"
            graph.add_node(pause_of[name], _loose(_pause_fn(name, node)))
            graph.add_edge(name, pause_of[name])
    compiled.wire(cast(Any, Wiring(graph, pause_of)))
    return CompiledTeam(team, compiled, graph.compile())


class Wiring:
    """The StateGraph as a topology wires it, with two changes to its edges:

    * an edge out of a node that pauses after it leaves from its pause node
      instead (node -> pause node -> the node's routing);
    * a routing function runs on the event loop. LangGraph runs a synchronous
      one in a worker thread on every step of an async run (a thread hop per
      step); mascope's only read the state, so each is wrapped in a coroutine.
    """

    def __init__(self, graph: StateGraph[Any, NodeContext], pause_of: dict[str, str]):
        self.graph = graph
        self.pause_of = pause_of

    def add_edge(self, start: str, end: str) -> None:
        self.graph.add_edge(self.pause_of.get(start, start), end)

    def add_conditional_edges(
        self, source: str, path: Callable[[TeamState], str], path_map: Any
    ) -> None:
        async def route(state: TeamState) -> str:
            return path(state)

        self.graph.add_conditional_edges(self.pause_of.get(source, source), route, path_map)


NodeFn = Callable[[TeamState, RunnableConfig, Runtime[NodeContext]], Awaitable[dict[str, Any]]]
"""A node as mascope writes it: the state, LangGraph's config and its runtime context."""


def _loose(real: NodeFn) -> Callable[..., Any]:
    """`real` as the node function LangGraph gets. On every compile LangGraph evaluates
    a node function's annotations (and, for a typed state, all of the state's) and
    disassembles it looking for subgraphs: it gets a small call to the real node,
    annotated loosely (it finds `config` and `runtime` by name), which halves the
    time a team takes to compile."""

    async def node(state: Any, config: RunnableConfig, runtime: Any) -> Any:
        return await real(state, config, runtime)

    return node


def _pause_fn(name: str, node: NodeDef) -> NodeFn:
    """The node after `name` that asks a person (an `interrupt: after`)."""
    prompt = node.prompt or default_prompt("after", node.actor)

    async def pause(
        state: TeamState, config: RunnableConfig, runtime: Runtime[NodeContext]
    ) -> dict[str, Any]:
        if state.get("done"):
            return {}  # the run has ended: nothing after this node would see the reply
        run = runtime.context.run
        run.begin_node(f"{name}.pause", config)
        try:
            answer = asker(run, "runtime")(prompt)
        except Paused as paused:
            raise paused.signal from None
        return {"outputs": with_human(state, answer), "next_step": run.next_step}

    return pause


async def _run_node(
    name: str,
    node: NodeDef,
    term: TerminationSpec,
    state: TeamState,
    config: RunnableConfig,
    runtime: Runtime[NodeContext],
) -> dict[str, Any]:
    run = runtime.context.run
    run.begin_node(name, config)
    started = time.monotonic()
    try:
        with asking(asker(run, node.actor)):
            if node.interrupt == "before":
                ask = asker(run, "runtime")
                answer = ask(node.prompt or default_prompt("before", node.actor))
                state = cast(TeamState, {**state, "outputs": with_human(state, answer)})
            product = await node.produce(state, run)
    except Paused as paused:
        raise paused.signal from None  # LangGraph's interrupt: the run pauses here
    update = node.apply(state, product)
    if node.interrupt == "before" and "outputs" not in update:
        update["outputs"] = state["outputs"]  # keep the reply for the agents after
    update["next_step"] = run.next_step
    update["tokens"] = state.get("tokens", 0) + run.node_tokens
    update["cost"] = state.get("cost", 0.0) + run.node_cost
    update["elapsed"] = state.get("elapsed", 0.0) + (time.monotonic() - started)
    if not update.get("done", state.get("done")):
        reason = _limit_reached(term, cast(TeamState, {**state, **update}))
        if reason:
            update.update(
                done=True,
                termination=reason,
                final_answer=update.get("last_output", state.get("last_output")),
            )
    return update


def _limit_reached(term: TerminationSpec, state: TeamState) -> TerminationReason | None:
    if term.max_steps is not None and state.get("turns", 0) >= term.max_steps:
        return "max_steps"
    budget = term.budget
    if budget is not None:
        if budget.tokens is not None and state.get("tokens", 0) >= budget.tokens:
            return "budget_tokens"
        if budget.cost_usd is not None and state.get("cost", 0.0) >= budget.cost_usd:
            return "budget_cost"
        if budget.seconds is not None and state.get("elapsed", 0.0) >= budget.seconds:
            return "budget_seconds"
    return None
