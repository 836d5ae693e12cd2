"""MAST: the multi-agent system failure taxonomy (Cemri et al., 2025), 14 modes
in 3 categories. Definitions are mascope's own wording. Ids and names follow the
paper (the public MAST repository swaps the names of FM-3.2 and FM-3.3 in one
file). `aliases` are the names the modes had in earlier annotation rounds, so
labels from those rounds map onto MAST-14 by name."""

from __future__ import annotations

from ._model import Category, FailureMode, Taxonomy

_C1 = "FC1"
_C2 = "FC2"
_C3 = "FC3"

MAST = Taxonomy(
    id="mast",
    version="14",
    name="MAST: multi-agent system failure taxonomy",
    categories=[
        Category(id=_C1, name="Specification issues", description="The system was set up or instructed badly, or an agent ignored how it was set up."),
        Category(id=_C2, name="Inter-agent misalignment", description="Agents failed to work together: lost, hid or ignored what others said."),
        Category(id=_C3, name="Task verification", description="The result was not checked, checked wrongly, or the run stopped too early."),
    ],
    modes=[
        FailureMode(
            id="FM-1.1", name="Disobey task specification", category=_C1,
            definition="An agent's output breaks a requirement or constraint the task stated (format, scope, limits, required content).",
            indicators=["answer in a different format than asked", "ignores a stated limit or constraint", "solves a different problem than posed"],
            aliases=["Poor task constraint compliance", "Disobey task specification"],
        ),
        FailureMode(
            id="FM-1.2", name="Disobey role specification", category=_C1,
            definition="An agent acts outside the responsibilities its role gives it, doing another agent's job or something its role forbids.",
            indicators=["a reviewer rewrites the code itself", "an agent calls a tool its role does not allow", "an agent decides what only the manager may decide"],
            aliases=["Disobey role specification"],
        ),
        FailureMode(
            id="FM-1.3", name="Step repetition", category=_C1,
            definition="The run repeats a step that was already done, without new information, wasting turns or looping.",
            indicators=["near-identical messages or tool calls in a row", "the same sub-task redone", "a loop broken only by a step limit"],
            aliases=["Step repetition"],
        ),
        FailureMode(
            id="FM-1.4", name="Loss of conversation history", category=_C1,
            definition="Earlier context is lost (for example truncated away), so an agent acts as if it never happened.",
            indicators=["an agent asks again for information already given", "work is redone after context truncation", "earlier decisions silently reversed"],
            aliases=["Loss of conversation history"],
        ),
        FailureMode(
            id="FM-1.5", name="Unaware of termination conditions", category=_C1,
            definition="Agents do not recognise when the task is finished or cannot be finished, and keep going or stop at the wrong point.",
            indicators=["the run ends only because of a step or round limit", "agents keep talking after the answer is found", "an impossible task is never declared impossible"],
            aliases=["Unaware of stopping conditions", "Unaware of termination conditions"],
        ),
        FailureMode(
            id="FM-2.1", name="Conversation reset", category=_C2,
            definition="The dialogue restarts without reason, throwing away progress and context built so far.",
            indicators=["an agent starts the task over from the beginning", "greetings or task restatement mid-run", "earlier results ignored after a restart"],
            aliases=["Conversation reset"],
        ),
        FailureMode(
            id="FM-2.2", name="Fail to ask for clarification", category=_C2,
            definition="Faced with unclear, missing or contradictory information, an agent guesses instead of asking.",
            indicators=["assumptions made about missing data", "an ambiguous instruction taken one way without asking", "contradictions passed over"],
            aliases=["Fail to elicit clarification", "Fail to ask for clarification"],
        ),
        FailureMode(
            id="FM-2.3", name="Task derailment", category=_C2,
            definition="The run drifts away from the task's goal onto something unrelated or less relevant.",
            indicators=["work on a side question", "the final answer addresses another task", "long detours unrelated to the goal"],
            aliases=["Derailment from task", "Task derailment"],
        ),
        FailureMode(
            id="FM-2.4", name="Information withholding", category=_C2,
            definition="An agent has information that others need to act well and does not pass it on.",
            indicators=["a tool result or finding not shared", "an agent knows of an error but does not say", "partial results reported as complete"],
            aliases=["Withholding relevant information", "Information withholding"],
        ),
        FailureMode(
            id="FM-2.5", name="Ignored other agent's input", category=_C2,
            definition="An agent disregards or fails to act on suggestions, corrections or results from other agents.",
            indicators=["reviewer feedback not applied", "a correction repeated without effect", "another agent's result overwritten without reason"],
            aliases=["Ignoring suggestions from agents", "Ignored other agents' input", "Ignored other agent's input"],
        ),
        FailureMode(
            id="FM-2.6", name="Reasoning-action mismatch", category=_C2,
            definition="What an agent says it will do, or concludes, differs from what it then does.",
            indicators=["plan says one thing, tool call does another", "a stated answer differs from the submitted one", "reasoning ignored by the action"],
            aliases=["Inconsistency between reasoning and action", "Reasoning-action mismatch"],
        ),
        FailureMode(
            id="FM-3.1", name="Premature termination", category=_C3,
            definition="The run ends before the task is done or before the needed information or checks are in.",
            indicators=["final answer before verification passed", "stops after a partial result", "ends while agents still disagree"],
            aliases=["Ill specified termination condition leading to premature termination", "Premature termination"],
        ),
        FailureMode(
            id="FM-3.2", name="No or incomplete verification", category=_C3,
            definition="The result is not checked at all, or the check leaves out parts that matter.",
            indicators=["no test or review before the final answer", "only the easy case tested", "claimed checks that never ran"],
            aliases=["Lack of result verification", "No or incomplete verification"],
        ),
        FailureMode(
            id="FM-3.3", name="Incorrect verification", category=_C3,
            definition="A check is done but reaches the wrong verdict, passing a wrong result or failing a right one.",
            indicators=["a verifier approves a wrong answer", "tests that assert the wrong expectation", "a review that misses an obvious error"],
            aliases=["Lack of critical verification", "Incorrect verification"],
        ),
    ],
)  # fmt: skip
