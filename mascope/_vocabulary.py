"""Strings that cross sub-packages: run statuses, termination reasons, step kinds, event names.

The runtime writes them, the store keeps them, diagnosis, integrations and the
TUI read them. Declared once here as `Literal` types, so a typo where one is
written or compared as a typed value is a type error; the tuples list their
values for checks and help texts. A leaf module (it imports nothing of
mascope), so `traces` can use it without depending on the runtime.

These are the values mascope itself writes. Stored fields stay plain strings:
imported runs (OpenTelemetry, JSONL) may carry others, and must still read.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

RunStatus = Literal[
    "running", "succeeded", "failed", "error", "interrupted", "unknown", "abstained", "paused"
]
"""`unknown`: an imported run whose outcome its source did not say; `abstained`: a run
that chose to give no answer (a calibrated strategy), neither success nor failure;
`paused`: a run waiting for a person's input (`mascope runs resume RUN_ID --input TEXT`),
not finished, neither failed nor interrupted."""
RUN_STATUSES: tuple[RunStatus, ...] = get_args(RunStatus)

TerminationReason = Literal[
    "verifier_passed",  # the (last) verifier passed the answer
    "verifier_failed",  # a pipeline stage used its rounds without passing
    "final_answer",  # an agent called the final-answer tool
    "stop_phrase",  # an agent's message contained the stop phrase
    "end",  # the topology ran out of work (last stage, empty frontier)
    "max_steps",
    "max_rounds",
    "budget_tokens",
    "budget_cost",
    "budget_seconds",
    "abstained",  # a calibrated stage chose to give no answer
    "error",
    "interrupted",  # killed (Ctrl-C, cancelled)
    "paused",  # waiting for a person's input
    "process died",  # the recording process stopped heartbeating
    "imported",  # a run imported from another format
]
"""Why a run ended (`Run.termination_reason`)."""
TERMINATION_REASONS: tuple[TerminationReason, ...] = get_args(TerminationReason)
SUCCESS_TERMINATIONS: tuple[TerminationReason, ...] = (
    "verifier_passed",
    "final_answer",
    "stop_phrase",
    "end",
)
"""Endings that count as success (before the answer is scored against a ground truth)."""
CLAIMED_TERMINATIONS: tuple[TerminationReason, ...] = ("stop_phrase", "final_answer", "end")
"""Endings where an agent, not a verifier, said the work was done."""
LIMIT_TERMINATIONS: tuple[TerminationReason, ...] = ("max_steps", "max_rounds")
"""Endings by a step or round limit (MAST FM-1.5)."""

StepKind = Literal[
    "message",  # an agent's turn: what it said
    "model_call",  # one LLM call (request summary, response, usage)
    "tool_call",  # an agent asked for a tool
    "tool_result",  # what the tool returned
    "refusal",  # a tool call outside the agent's role, refused
    "verdict",  # a verifier's judgement
    "retry",  # a model call that was retried (429, 5xx, timeout)
    "error",  # something failed
    "event",  # anything else the runtime wants on the timeline (truncation, fork, resume)
]
STEP_KINDS: tuple[StepKind, ...] = get_args(StepKind)
TRANSCRIPT_KINDS: tuple[StepKind, ...] = ("message", "verdict")
"""The steps that make up the conversation: what agents said and verifiers judged
(the steps a fork or re-roll can start from)."""

EventName = Literal[
    "resume",  # a run resumed after an interruption
    "context_truncation",  # an agent's prompt lost earlier conversation
    "draw_plan",  # a calibrated strategy chose how many candidates to draw
    "selection",  # a strategy chose among its candidates
    "deferral",  # draft_defer kept the draft or deferred to the strong agent
    "abstained",  # a calibrated stage gave no answer
    "unusable_answer",  # a model's structured answer could not be used, even after a repair
    "manager_fallback",  # the group chat manager's choice was unusable: round robin
    "invalid_speaker",  # the group chat manager chose someone who is not a speaker
    "interrupt",  # the run asks a person for input and pauses (traces.PAUSE_EVENT)
    "human_input",  # a person's reply to a pause, on a `message` step (traces.HUMAN_INPUT_EVENT)
]
"""What an `event` step records, in its `data["event"]`."""
EVENT_NAMES: tuple[EventName, ...] = get_args(EventName)


def event_data(name: EventName, **fields: Any) -> dict[str, Any]:
    """The `data` of an `event` step: its name, then what it carries."""
    return {"event": name, **fields}


def is_event(kind: str, data: dict[str, Any] | None, name: EventName) -> bool:
    """Whether a step (its kind and data) is the event `name`."""
    return kind == "event" and (data or {}).get("event") == name
