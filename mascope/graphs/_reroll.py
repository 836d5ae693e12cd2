"""Re-roll: re-execute a recorded run from one of its steps with nothing replaced.

A fork replaces a step's output; a re-roll keeps every step before it as
recorded and lets the step's own node run again, live, so the team draws a
fresh sample of that step and everything after it. The child run records its
parent, the step and the intervention `{"kind": "re-roll", ...}`, like a fork.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from mascope._vocabulary import TRANSCRIPT_KINDS
from mascope.errors import NotFoundError, UserError
from mascope.traces import HUMAN_INPUT_EVENT, Run, Step, TraceStore

from ._context import RunContext
from ._events import StepCallback, TokenEventCallback
from ._resolved import ResolvedTeam
from ._spec import TeamSpec


class Team(Protocol):
    """What a re-roll needs of a team (`Team` has it; typed here so this module
    need not import `_team`, which imports this one)."""

    @property
    def resolved(self) -> ResolvedTeam: ...
    @property
    def name(self) -> str: ...
    @property
    def spec(self) -> TeamSpec: ...
    @property
    def _compiled(self) -> Any: ...
    @property
    def store(self) -> TraceStore: ...
    def check_models(self) -> None: ...
    def _checkpointer(self) -> AbstractAsyncContextManager[Any]: ...
    def _where_from(self) -> dict[str, Any]: ...
    async def _execute(self, run: RunContext, state: Any) -> Any: ...


REROLL = "re-roll"
"""The intervention kind a re-roll's child run records."""


def branch_point(team: Team, run_id: str, step: int, verb: str) -> tuple[Run, Step, int]:
    """The parent run, its step `step` and the first step that step's node recorded.

    Checks the step can start a child run (`verb`: "fork" or "re-roll"): an
    agent's message or a verifier's verdict recorded by a node of `team` with a
    checkpoint before it.
    """
    store = team.store
    parent = store.get_run(store.resolve_run_id(run_id))
    steps = store.steps(parent.id)
    if not 0 <= step < len(steps):
        raise NotFoundError(
            f"run {parent.id} has no step {step} (it has steps 0..{len(steps) - 1})"
        )
    target = steps[step]
    node = (target.data or {}).get("node")
    if (target.data or {}).get("event") == HUMAN_INPUT_EVENT:
        raise UserError(
            f"step {step} of run {parent.id} is a person's reply to a pause; {verb} at an agent's "
            "message or a verifier's verdict"
        )
    if target.kind not in TRANSCRIPT_KINDS or node not in team._compiled.nodes:
        raise UserError(
            f"step {step} of run {parent.id} is a {target.kind} step; {verb} at an agent's message or a verifier's verdict"
            + (
                ""
                if node in team._compiled.nodes or node is None
                else f" (its node {node!r} is not in team {team.name})"
            )
        )
    if target.checkpoint_id is None:
        raise UserError(
            f"step {step} of run {parent.id} has no checkpoint to {verb} from (was it imported?)"
        )
    group_start = min(s.index for s in steps if s.checkpoint_id == target.checkpoint_id)
    return parent, target, group_start


def start_branch(
    team: Team,
    parent: Run,
    target: Step,
    *,
    intervention: dict[str, Any],
    metadata: Mapping[str, Any] | None = None,
) -> str:
    """Record a child run of `parent` branching at `target` (a fork or a re-roll); its id."""
    return team.store.start_run(
        team=team.name,
        task=parent.task,
        spec=team.spec.dump(),
        spec_hash=team.spec.hash(),
        ground_truth=parent.ground_truth,
        parent_run_id=parent.id,
        fork_step=target.index,
        intervention={
            "step": target.index,
            "agent": target.agent,
            "kind": target.kind,
            "node": (target.data or {}).get("node"),
            "original": target.content,
            **intervention,
        },
        metadata={**(metadata or {}), **team._where_from()},
    )


def branch_context(
    team: Team,
    parent: Run,
    child_id: str,
    group_start: int,
    on_step: StepCallback | None,
    on_token: TokenEventCallback | None = None,
) -> RunContext:
    """The child's run context, sharing the parent's steps before the branching node."""
    team.store.copy_steps(parent.id, child_id, group_start)
    run = RunContext(
        team.resolved, team.store, child_id, ground_truth=parent.ground_truth, on_step=on_step,
        on_token=on_token,
    )  # fmt: skip
    run.load_transcript()
    return run


async def areroll(
    team: Team,
    run_id: str,
    *,
    step: int,
    metadata: Mapping[str, Any] | None = None,
    on_step: StepCallback | None = None,
    on_token: TokenEventCallback | None = None,
) -> Any:  # the team's RunResult
    """Re-run `run_id` from the node that recorded step `step`, nothing replaced."""
    store = team.store
    parent, target, group_start = branch_point(team, run_id, step, "re-roll")
    thread = (target.data or {}).get("thread", parent.id)
    team.check_models()
    async with team._checkpointer() as saver:
        saved = await saver.aget_tuple(
            {
                "configurable": {
                    "thread_id": thread,
                    "checkpoint_ns": "",
                    "checkpoint_id": target.checkpoint_id,
                }
            }
        )
        if saved is None:
            raise UserError(
                f"the checkpoint before step {step} of run {parent.id} is gone (was the checkpoint file deleted?)"
            )
        child_id = start_branch(
            team, parent, target, intervention={"kind": REROLL, "replacement": None},
            metadata=metadata,
        )  # fmt: skip
        # The child thread starts from a copy of the checkpoint before the node:
        # LangGraph then schedules that same node next, and it runs live.
        try:
            await saver.aput(
                {"configurable": {"thread_id": child_id, "checkpoint_ns": ""}},
                saved.checkpoint,
                saved.metadata,
                saved.checkpoint["channel_versions"],
            )
        except Exception as exc:  # the child row must not stay `running`
            store.finish_run(
                child_id, status="error", termination_reason="error", metadata={"error": str(exc)}
            )
            raise
    run = branch_context(team, parent, child_id, group_start, on_step, on_token)
    return await team._execute(run, None)


def rerollable(team: Team, steps: Sequence[Step]) -> list[tuple[Step, int]]:
    """Each step a re-roll can start from (a node's first message or verdict) with the first step its node recorded."""
    nodes = set(team._compiled.nodes)
    first: dict[str, int] = {}
    taken: set[str] = set()
    out: list[tuple[Step, int]] = []
    for s in steps:
        if s.checkpoint_id is None:
            continue
        first.setdefault(s.checkpoint_id, s.index)
        if (
            s.kind in TRANSCRIPT_KINDS
            and (s.data or {}).get("node") in nodes
            and s.checkpoint_id not in taken
        ):
            taken.add(s.checkpoint_id)
            out.append((s, first[s.checkpoint_id]))
    return out


async def missing_checkpoint(team: Team, run_id: str, steps: Sequence[Step]) -> int | None:
    """The first of `steps` whose checkpoint is no longer among the store's checkpoints, or None."""
    async with team._checkpointer() as saver:
        for s in steps:
            config: Any = {
                "configurable": {
                    "thread_id": (s.data or {}).get("thread", run_id),
                    "checkpoint_ns": "",
                    "checkpoint_id": s.checkpoint_id,
                }
            }
            if await saver.aget_tuple(config) is None:
                return s.index
    return None


__all__ = [
    "REROLL",
    "areroll",
    "branch_context",
    "branch_point",
    "missing_checkpoint",
    "rerollable",
    "start_branch",
]
