"""Going on with a stored run: `aresume` continues one that was killed,
interrupted or paused for a person from its last checkpoint, and `afork` re-runs
one from a step with that step's output replaced (its sibling, the re-roll, is in
`_reroll`). `Team.aresume` and `Team.afork` delegate here; the functions take the
team as a `ResumableTeam`, so this module need not import `_team`, which imports
this one.
"""

from __future__ import annotations

from typing import Any, Protocol

from langchain_core.runnables import RunnableConfig
from langgraph.types import Command

from mascope.agents import parse_verdict_text
from mascope.errors import UserError
from mascope.traces import pause_question

from ._context import RunContext
from ._events import StepCallback, TokenEventCallback
from ._reroll import Team, branch_context, branch_point, start_branch
from ._result import RunResult, close_run
from ._routing import RouterError
from ._spec import PipelineSpec
from ._state import TeamState, initial_state
from ._topologies import AgentProduct


class ResumableTeam(Team, Protocol):
    """What resuming and forking need of a team, beyond what a re-roll needs
    (`Team` has it)."""

    def _with_checkpointer(self, saver: Any) -> Any: ...
    async def _execute(
        self,
        run: RunContext,
        state: Any,
        *,
        fork: tuple[str, dict[str, Any]] | None = None,
    ) -> RunResult: ...


async def aresume(
    team: ResumableTeam,
    run_id: str,
    *,
    input: str | None = None,
    on_step: StepCallback | None = None,
    on_token: TokenEventCallback | None = None,
) -> RunResult:
    """Continue run `run_id` from its last checkpoint (see `Team.aresume`)."""
    store = team.store
    store.recover_interrupted()
    row = store.get_run(store.resolve_run_id(run_id))
    _check_resumable(row, input)
    team.check_models()
    config: RunnableConfig = {"configurable": {"thread_id": row.id}}
    async with team._checkpointer() as saver:
        snapshot = await team._with_checkpointer(saver).aget_state(config)
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
        team.resolved, store, row.id, ground_truth=row.ground_truth, on_step=on_step,
        on_token=on_token,
    )  # fmt: skip
    run.load_transcript()
    if input is not None:
        # The node that asked runs again and records its question and this answer.
        store.update_run_metadata(row.id, {"pause": None})
        return await team._execute(run, Command(resume=input))
    run.record(
        agent="runtime",
        kind="event",
        content=f"resumed after interruption; {dropped} unfinished step(s) of the interrupted node are redone",
        data={"event": "resume", "discarded_steps": dropped},
    )
    if not values:  # killed before the first checkpoint: start over
        return await team._execute(run, initial_state(row.task))
    if not snapshot.next:  # the graph had finished; only the run row was not closed
        return close_run(run, values, None, None)
    return await team._execute(run, None)


async def afork(
    team: ResumableTeam,
    run_id: str,
    *,
    step: int,
    content: str,
    on_step: StepCallback | None = None,
    on_token: TokenEventCallback | None = None,
) -> RunResult:
    """Re-run `run_id` from step `step` with its output replaced by `content` (see `Team.afork`)."""
    parent, target, group_start = branch_point(team, run_id, step, "fork")
    node: str = (target.data or {})["node"]  # branch_point checked it is one of ours
    thread = (target.data or {}).get("thread", parent.id)
    team.check_models()
    async with team._checkpointer() as saver:
        app = team._with_checkpointer(saver)
        before = await app.aget_state(
            {"configurable": {"thread_id": thread, "checkpoint_id": target.checkpoint_id}}
        )
    if not before.values:
        raise UserError(
            f"the checkpoint before step {step} of run {parent.id} is gone (was the checkpoint file deleted?)"
        )
    child_id = start_branch(team, parent, target, intervention={"replacement": content})
    run = branch_context(team, parent, child_id, group_start, on_step, on_token)
    state: TeamState = dict(before.values)  # type: ignore[assignment]
    nodedef = team._compiled.nodes[node]
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
        elif isinstance(team.spec.topology, PipelineSpec):
            product = await _reverify_for_fork(team, run, state, node, content)
    try:
        update = nodedef.apply(state, product)
    except RouterError as exc:  # the replacement sent a router nowhere: the child ends in error
        run.node = None
        run.record(agent="runtime", kind="error", content=str(exc), error=str(exc))
        return close_run(run, {}, "error", str(exc))
    update["next_step"] = run.next_step
    values = {**state, **update}
    run.node = None
    return await team._execute(run, None, fork=(node, values))


async def _reverify_for_fork(
    team: ResumableTeam, run: RunContext, state: TeamState, node: str, content: str
) -> AgentProduct:
    """A pipeline stage that verifies inside its node (a strategy) checks the replacement too."""
    top = team.spec.topology
    assert isinstance(top, PipelineSpec)
    index = int(node.split(".", 1)[0].removeprefix("stage"))
    stage = top.stage_list()[index]
    if stage.strategy.kind == "single" or stage.verifier is None:
        return AgentProduct(content)
    outputs = {**state.get("outputs", {}), stage.agent: content}
    verdict = await run.verify(
        stage.verifier, team.resolved.verifiers[stage.verifier], content, state, outputs
    )
    return AgentProduct(content, verdict=verdict)


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


__all__ = ["ResumableTeam", "afork", "aresume"]
