"""The LangGraph state of a run: control data only.

The conversation itself lives in the trace store (and a per-run cache), not
in the state, so each checkpoint stays the same size however long the run
gets: checkpoint bytes grow linearly with steps, not quadratically.
"""

from __future__ import annotations

from typing import Any, TypedDict

from mascope._vocabulary import TerminationReason


class TeamState(TypedDict, total=False):
    task: str
    next_step: int
    """Index of the next step to record; a resumed run discards steps past it."""
    turns: int
    """Agent turns plus verifications so far (for max_steps)."""
    stage: int
    attempts: dict[str, int]
    """Verifications per pipeline stage or verifier node."""
    last_output: str
    last_agent: str
    outputs: dict[str, str]
    """Latest output of each agent."""
    verdict: dict[str, Any] | None
    feedback: str | None
    feedback_for: str | None
    speaker: str | None
    spoken: int
    frontier: list[str]
    """Graph topology: nodes scheduled to run, in order (branches of a fan-out)."""
    pending_final: str | None
    """Group chat: an answer someone claimed is final, awaiting its verifier."""
    awaiting_person: dict[str, Any] | None
    """Group chat with `interrupt: final`: the answer (`answer`) and its ending (`reason`)
    awaiting a person's approval."""
    final_answer: str | None
    done: bool
    termination: TerminationReason | None
    tokens: int
    cost: float
    elapsed: float


def initial_state(task: str) -> TeamState:
    return TeamState(
        task=task,
        next_step=0,
        turns=0,
        stage=0,
        attempts={},
        last_output="",
        last_agent="",
        outputs={},
        verdict=None,
        feedback=None,
        feedback_for=None,
        speaker=None,
        spoken=0,
        pending_final=None,
        final_answer=None,
        done=False,
        termination=None,
        tokens=0,
        cost=0.0,
        elapsed=0.0,
    )
