"""Pauses for a person, on LangGraph's own `interrupt` and `Command(resume=...)`.

A pause is two steps: the question (an `event` step, `data.event == "interrupt"`,
recorded by whoever asked) and, once someone answers, the answer (a `message`
step of the agent `human`, so the agents after it see it like any message). The
run in between is `paused`: its checkpoint holds LangGraph's pending interrupt,
so any process can continue it with the answer.

As in LangGraph, the node that paused runs again from its start when the run
continues; the steps it recorded before pausing are discarded first (the
resume truncates to the checkpoint), so none is recorded twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from langgraph.errors import GraphInterrupt
from langgraph.types import interrupt

from mascope.agents import HUMAN, Asker
from mascope.traces import HUMAN_INPUT_EVENT, PAUSE_EVENT

from ._context import RunContext

PauseWhen = Literal["before", "after"]


class Paused(BaseException):
    """LangGraph's interrupt on its way out of a node.

    A BaseException, so a user's `except Exception` (a tool's failure handler,
    a function agent's own `try`) cannot swallow the pause; the node re-raises
    the GraphInterrupt it carries for LangGraph.
    """

    def __init__(self, signal: GraphInterrupt):
        super().__init__("the run is paused for a person's input")
        self.signal = signal


def asker(run: RunContext, agent: str) -> Asker:
    """`ask_human` inside a node of `run`: the question and the answer are steps of `agent`
    and `human`; with no answer yet the run pauses (LangGraph's `interrupt`)."""

    def ask(prompt: str) -> str:
        step = run.record(
            agent=agent, kind="event", content=prompt, data={"event": PAUSE_EVENT, "prompt": prompt}
        )
        try:
            answer = interrupt({"prompt": prompt, "agent": agent, "step": step})
        except GraphInterrupt as exc:
            raise Paused(exc) from None
        text = answer if isinstance(answer, str) else str(answer)
        run.record(
            agent=HUMAN,
            kind="message",
            content=text,
            data={"event": HUMAN_INPUT_EVENT, "answers_step": step},
        )
        return text

    return ask


def default_prompt(when: PauseWhen, actor: str) -> str:
    if when == "before":
        return f"Paused before {actor}. Reply to continue; {actor} sees your reply."
    return f"{actor} has answered (its last step). Reply to continue; the agents after it see your reply."


def with_human(state: Mapping[str, Any], answer: str) -> dict[str, str]:
    """The state's outputs with a person's latest answer added."""
    return {**state.get("outputs", {}), HUMAN: answer}


def pause_reason(value: Any) -> dict[str, Any]:
    """What a pending interrupt asks (`prompt`, `agent`, `step`), from its `Interrupt.value`."""
    return dict(value) if isinstance(value, Mapping) else {"prompt": str(value)}
