"""What rebuilding the team of a stored run needs: the spec recorded with the
run, and a check that the rebuilt team is the one that ran (`Team.from_run`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mascope.agents import Agent
from mascope.errors import UserError
from mascope.traces import TraceStore

from ._spec import TeamSpec, parse_team


def stored_spec(store: TraceStore, run_id: str) -> tuple[str, TeamSpec, dict[str, Any]]:
    """The run's full id, its team's spec and its metadata; a UserError if it cannot be re-run."""
    rid = store.resolve_run_id(run_id)
    row = store.get_run(rid)
    if row.source != "native":
        raise UserError(
            f"run {rid} was imported ({row.source}), not run by mascope, so it cannot be re-run"
        )
    if not row.spec:
        raise UserError(f"run {rid} has no team spec stored with it, so it cannot be re-run")
    try:
        spec = parse_team(row.spec, source=f"run {rid}'s team")
    except UserError as exc:
        raise UserError(f"run {rid} cannot be re-run: {exc}") from None
    return rid, spec, dict(row.metadata_ or {})


def check_functions(store: TraceStore, rid: str, agents: Mapping[str, Agent]) -> None:
    """Refuse a rebuilt team in which a Python function agent became a model agent.

    A function that cannot be imported (a closure, or one defined in __main__)
    leaves no trace in the spec; its turns are the ones recorded without a
    model, and rebuilt it would wrongly become a model agent.
    """
    modelled: dict[str, bool] = {}
    for s in store.iter_steps(rid):
        if s.kind == "message" and s.agent in agents:
            modelled[s.agent] = modelled.get(s.agent, False) or s.model is not None
    lost = sorted(n for n, m in modelled.items() if not m and agents[n].fn is None)
    if lost:
        raise UserError(
            f"run {rid} cannot be re-run: agent {lost[0]} was a Python function that cannot be "
            "imported (a closure, or defined in __main__)"
        )
