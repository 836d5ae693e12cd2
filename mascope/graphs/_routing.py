"""Router edges: a function that reads the run's state and names the next node."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from mascope.agents import Verdict, function_path, import_function
from mascope.errors import ConfigError, RuntimeFailure

from ._spec import END
from ._state import TeamState

END_NAMES = (END, "end", "__end__")
"""What a router returns to finish the run (a node of that name wins)."""


@dataclass(frozen=True)
class RouteState:
    """What a router sees: a read-only view of the run right after `node` ran."""

    task: str
    node: str
    """The node that just ran (the edge's `from`)."""
    last_output: str
    """The latest output of any agent."""
    last_agent: str
    """The agent that wrote `last_output`."""
    outputs: Mapping[str, str]
    """Latest output of each agent, by name (read-only)."""
    verdict: Verdict | None
    """The latest verifier verdict, if a verifier has run."""
    turns: int
    """Agent turns plus verifications so far."""
    attempts: Mapping[str, int]
    """Verifications so far by verifier node name (read-only), to bound a retry loop."""


@dataclass(frozen=True)
class Router:
    """A router function and the `package.module:function` it is written as in the spec."""

    path: str
    fn: Callable[[RouteState], Any]


class RouterError(RuntimeFailure):
    """A router raised, or chose a node the graph does not have: the run ends in error."""


def as_router(
    value: Router | Callable[..., Any] | str,
    *,
    base_dir: str | Path | None = None,
    source: str = "router",
) -> Router:
    """A `Router` from a callable, or from a `package.module:function` path (imported now)."""
    if isinstance(value, Router):
        return value
    if isinstance(value, str):
        return Router(value, import_function(value, what="router", where=source, base_dir=base_dir))
    if not callable(value):
        raise ConfigError(f"{source}: a router must be a function, not {type(value).__name__}")
    return Router(function_path(value, getattr(value, "__name__", "router")), value)


def route_state(state: TeamState, node: str) -> RouteState:
    """The router's view of `state` (copies, so a router cannot change the run)."""
    verdict = state.get("verdict")
    return RouteState(
        task=state.get("task", ""),
        node=node,
        last_output=state.get("last_output", "") or "",
        last_agent=state.get("last_agent", "") or "",
        outputs=MappingProxyType(dict(state.get("outputs", {}))),
        verdict=Verdict.model_validate(verdict) if verdict else None,
        turns=state.get("turns", 0),
        attempts=MappingProxyType(dict(state.get("attempts", {}))),
    )


def choose(router: Router, state: TeamState, node: str, nodes: Collection[str]) -> str | None:
    """Ask `router` where to go after `node`: a node name, or None to finish the run."""
    where = f"router {router.path} after node {node!r}"
    try:
        choice = router.fn(route_state(state, node))
    except Exception as exc:  # a user's router failing ends the run in error, naming it
        raise RouterError(f"{where} raised {type(exc).__name__}: {exc}") from exc
    if inspect.isawaitable(choice):
        close = getattr(choice, "close", None)
        if callable(close):
            close()  # never awaited: say so instead of leaking a warning
        raise RouterError(
            f"{where} returned an awaitable; a router is a plain function returning a node name"
        )
    if isinstance(choice, str) and choice in nodes:
        return choice
    if isinstance(choice, str) and choice in END_NAMES:
        return None
    known = ", ".join(sorted(nodes))
    raise RouterError(
        f"{where} returned {choice!r}, which is not a node of this graph; return one of {known} or END"
    )
