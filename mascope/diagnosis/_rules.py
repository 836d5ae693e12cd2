"""Rule detectors: failure modes the runtime's own records show, no LLM needed.

Each detector reads a run and its steps and returns findings with evidence
steps. They label runs offline and hand what they found to the LLM judge.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher

from mascope._vocabulary import (
    CLAIMED_TERMINATIONS,
    LIMIT_TERMINATIONS,
    TRANSCRIPT_KINDS,
    TerminationReason,
    is_event,
)
from mascope.traces import Run, Step, TraceStore

RULE_PREFIX = "rule:"


@dataclass(frozen=True)
class Finding:
    detector: str
    mode: str
    evidence_steps: list[int] = field(default_factory=list)
    rationale: str = ""

    @property
    def annotator(self) -> str:
        return RULE_PREFIX + self.detector


Detector = Callable[[Run, Sequence[Step]], list[Finding]]
_WORDS = re.compile(r"\w+")


def _similar(a: str, b: str) -> float:
    if not a or not b:
        return 0.0
    if a == b:
        return 1.0
    wa, wb = _WORDS.findall(a.lower()), _WORDS.findall(b.lower())
    if not wa or not wb:
        return 0.0
    return SequenceMatcher(None, wa[:400], wb[:400], autojunk=False).ratio()


_TOKENS = re.compile(r"\w+|[^\w\s]")


def _same_answer(a: str, b: str, threshold: float) -> bool:
    """Nearly the same words and exactly the same numbers and symbols: `a - b` then `a + b`
    is a fix, not a repeat, though the words match."""
    ta, tb = _TOKENS.findall(a.casefold()), _TOKENS.findall(b.casefold())
    facts = [t for t in ta if not t.isalpha()], [t for t in tb if not t.isalpha()]
    if facts[0] != facts[1] or not ta or not tb:
        return False
    return (
        ta == tb or SequenceMatcher(None, ta[:400], tb[:400], autojunk=False).ratio() >= threshold
    )


def step_repetition(
    run: Run, steps: Sequence[Step], *, threshold: float = 0.9, window: int = 4
) -> list[Finding]:
    """FM-1.3: an agent says (or calls) nearly the same thing again within a few of its turns."""
    pairs: list[tuple[int, int]] = []
    last: dict[tuple[str, str], list[Step]] = {}
    for s in steps:
        if s.kind not in ("message", "tool_call") or len(s.content.strip()) < 8:
            continue
        key = (s.agent, s.kind)
        history = last.setdefault(key, [])
        for earlier in history[-window:]:
            if _similar(earlier.content, s.content) >= threshold:
                pairs.append((earlier.index, s.index))
                break
        history.append(s)
    if not pairs:
        return []
    evidence = sorted({i for pair in pairs for i in pair})
    agents = sorted({steps_by_index(steps)[b].agent for _, b in pairs})
    return [
        Finding(
            "step-repetition",
            "FM-1.3",
            evidence,
            f"{len(pairs)} near-identical repeat(s) by {', '.join(agents)}",
        )
    ]


def step_limit(run: Run, steps: Sequence[Step]) -> list[Finding]:
    """FM-1.5: the run did not stop by itself; a step or round limit stopped it."""
    if run.termination_reason not in LIMIT_TERMINATIONS:
        return []
    tail = [s.index for s in steps if s.kind in TRANSCRIPT_KINDS][-3:]
    return [
        Finding(
            "step-limit",
            "FM-1.5",
            tail,
            f"the run was ended by its {run.termination_reason.replace('_', ' ')} limit",
        )
    ]


def _final_message(steps: Sequence[Step]) -> Step | None:
    for s in reversed(steps):
        if s.kind == "message":
            return s
    return None


def no_verification(run: Run, steps: Sequence[Step]) -> list[Finding]:
    """FM-3.2: a native run's final answer was never checked: no verdict came after it."""
    if run.source != "native" or run.status not in ("succeeded", "failed"):
        return []
    final = _final_message(steps)
    if final is None:
        return []
    if any(s.kind == "verdict" and s.index > final.index for s in steps):
        return []
    checked_earlier = any(s.kind == "verdict" for s in steps)
    why = (
        "the final answer was not checked (only earlier work was)"
        if checked_earlier
        else "nothing was checked by a verifier"
    )
    return [Finding("no-verification", "FM-3.2", [final.index], why)]


def premature_termination(run: Run, steps: Sequence[Step]) -> list[Finding]:
    """FM-3.1: the run stopped on its own while the latest verdict still said no."""
    if run.termination_reason not in CLAIMED_TERMINATIONS:
        return []
    verdicts = [s for s in steps if s.kind == "verdict"]
    if not verdicts or (verdicts[-1].data or {}).get("passed", True):
        return []
    last = verdicts[-1]
    later = [s.index for s in steps if s.index > last.index and s.kind == "message"]
    return [
        Finding(
            "premature-termination",
            "FM-3.1",
            [last.index, *later[-1:]],
            "the run ended although the last verification failed",
        )
    ]


def context_truncation(run: Run, steps: Sequence[Step]) -> list[Finding]:
    """FM-1.4: earlier conversation was cut from an agent's prompt."""
    cuts = [s.index for s in steps if is_event(s.kind, s.data, "context_truncation")]
    if not cuts:
        return []
    after = [
        s.index for s in steps if s.kind == "message" and (s.data or {}).get("context_dropped")
    ]
    return [
        Finding(
            "context-truncation",
            "FM-1.4",
            sorted({*cuts, *after[:5]}),
            f"context was truncated {len(cuts) + len(after)} time(s)",
        )
    ]


def out_of_role_tools(run: Run, steps: Sequence[Step]) -> list[Finding]:
    """FM-1.2: an agent tried to use a tool its role does not allow."""
    refusals = [s for s in steps if s.kind == "refusal"]
    if not refusals:
        return []
    calls = [s.index - 1 for s in refusals if s.index > 0]
    agents = sorted({s.agent for s in refusals})
    return [
        Finding(
            "out-of-role-tool",
            "FM-1.2",
            sorted({*calls, *(s.index for s in refusals)}),
            f"out-of-role tool calls by {', '.join(agents)}",
        )
    ]


def _right(run: Run, answer: str | None, expected: str) -> bool:
    """Whether `answer` is right, scored the way the run's team scores (a team that
    scores on the last number must not be read as "the truth appears somewhere")."""
    from mascope.graphs._result import score_answer
    from mascope.graphs._spec import ScoringSpec

    raw = (run.spec or {}).get("scoring") if run.source == "native" else None
    try:
        scoring = ScoringSpec.model_validate(raw or {})
    except ValueError:
        scoring = ScoringSpec()
    if scoring.function is not None:  # never import from a stored spec here: the default matcher
        scoring = ScoringSpec()
    return score_answer(answer, expected, scoring).matched


def verifier_passed_wrong_answer(run: Run, steps: Sequence[Step]) -> list[Finding]:
    """FM-3.3: a verifier passed the final answer, but the answer is wrong against the ground truth."""
    if (run.metadata_ or {}).get("answer_correct") is not False:
        return []
    passed = [s for s in steps if s.kind == "verdict" and (s.data or {}).get("passed")]
    if not passed:
        return []
    if run.ground_truth is not None:
        # What the verifier passed is the message just before its verdict. If that
        # was right, the mistake came later (a later agent broke a checked answer).
        checked = [s for s in steps if s.kind == "message" and s.index < passed[-1].index]
        if checked and _right(run, checked[-1].content, run.ground_truth):
            return []
    return [
        Finding(
            "verifier-passed-wrong-answer",
            "FM-3.3",
            [passed[-1].index],
            f"{passed[-1].agent} passed an answer that does not match the ground truth",
        )
    ]


def _pipeline_stages(run: Run) -> list[dict[str, str | None]] | None:
    """The stages of a native pipeline run as {agent, verifier}, or None for other runs."""
    topology = (run.spec or {}).get("topology") or {}
    if topology.get("kind") != "pipeline" or not isinstance(topology.get("stages"), list):
        return None
    stages = []
    for stage in topology["stages"]:
        if isinstance(stage, str):
            stages.append({"agent": stage, "verifier": None, "retry_from": None})
        elif isinstance(stage, dict) and isinstance(stage.get("agent"), str):
            stages.append(
                {"agent": stage["agent"], "verifier": stage.get("verifier"),
                 "retry_from": stage.get("retry_from")}
            )  # fmt: skip
        else:
            return None
    return stages


def ignored_feedback(run: Run, steps: Sequence[Step], *, threshold: float = 0.9) -> list[Finding]:
    """FM-2.5: the agent a failed verdict went back to answers, in its next turn, nearly as before.

    In a pipeline the feedback goes to the agent the stage retries from, who
    speaks first after the verdict; elsewhere to the agent whose answer was
    checked. Another agent repeating itself (a tester whose tests were fine)
    is not ignoring feedback.
    """
    evidence: list[int] = []
    messages = [s for s in steps if s.kind == "message"]
    pipeline = _pipeline_stages(run) is not None
    for v in (s for s in steps if s.kind == "verdict" and not (s.data or {}).get("passed", True)):
        before = [m for m in messages if m.index < v.index]
        later = [m for m in messages if m.index > v.index]
        if not before or not later:
            continue
        receiver = later[0].agent if pipeline else before[-1].agent
        prior = next((m for m in reversed(before) if m.agent == receiver), None)
        after = next((m for m in later if m.agent == receiver), None)
        if prior is None or after is None:
            continue
        if _same_answer(prior.content, after.content, threshold):
            evidence += [v.index, after.index]
    if not evidence:
        return []
    return [
        Finding(
            "ignored-feedback",
            "FM-2.5",
            sorted(set(evidence)),
            "after a failed check, the agent it went back to gave nearly the same answer again",
        )
    ]


_CLAIMED: tuple[TerminationReason, ...] = (*CLAIMED_TERMINATIONS, "verifier_passed")


def skipped_stage(run: Run, steps: Sequence[Step]) -> list[Finding]:
    """FM-3.1: a pipeline claimed its answer before one of its stages or verifiers ever ran."""
    stages = _pipeline_stages(run)
    if stages is None or run.termination_reason not in _CLAIMED:
        return []
    if run.status not in ("succeeded", "failed"):
        return []
    claim = _final_message(steps)
    if claim is None:
        return []
    ran_agents = {s.agent for s in steps if s.kind == "message" and s.index <= claim.index}
    ran_verifiers = {s.agent for s in steps if s.kind == "verdict"}
    missing = [f"stage {st['agent']!r}" for st in stages if st["agent"] not in ran_agents] + [
        f"verifier {st['verifier']!r}"
        for st in stages
        if st["verifier"] and st["verifier"] not in ran_verifiers
    ]
    if not missing:
        return []
    return [
        Finding(
            "skipped-stage",
            "FM-3.1",
            [claim.index],
            f"{claim.agent} claimed the answer at step {claim.index} before "
            f"{', '.join(dict.fromkeys(missing))} ever ran",
        )
    ]


def conversation_reset(
    run: Run, steps: Sequence[Step], *, threshold: float = 0.9, min_chars: int = 20
) -> list[Finding]:
    """FM-2.1: mid-run, an agent sends the task again or repeats the run's first message: it starts over.

    Only after at least two messages that moved on, so an agent restating the
    task to open the run is not a restart; and not when the agent only says its
    own last line again (that is step repetition).
    """
    messages = [s for s in steps if s.kind == "message" and s.content.strip()]
    if len(messages) < 4:
        return []
    first = messages[0]
    starts = [t for t in (run.task or "", first.content) if len(t.strip()) >= min_chars]

    def restates(m: Step) -> bool:
        return len(m.content.strip()) >= min_chars and any(
            _similar(m.content, t) >= threshold for t in starts
        )

    resets = []
    for i, m in enumerate(messages[1:], start=1):
        if not restates(m):
            continue
        progress = [x for x in messages[1:i] if not restates(x)]
        own = [x for x in messages[:i] if x.agent == m.agent]
        # An agent saying its own last line again is repetition (FM-1.3), not a restart.
        if len(progress) >= 2 and not (own and _similar(own[-1].content, m.content) >= threshold):
            resets.append(m)
    if not resets:
        return []
    return [
        Finding(
            "conversation-reset",
            "FM-2.1",
            sorted({first.index, *(m.index for m in resets)}),
            f"{resets[0].agent} started over at step {resets[0].index}: it repeats the task or the "
            "run's first message",
        )
    ]


DETECTORS: dict[str, Detector] = {
    "step-repetition": step_repetition,
    "step-limit": step_limit,
    "no-verification": no_verification,
    "premature-termination": premature_termination,
    "context-truncation": context_truncation,
    "out-of-role-tool": out_of_role_tools,
    "verifier-passed-wrong-answer": verifier_passed_wrong_answer,
    "ignored-feedback": ignored_feedback,
    "skipped-stage": skipped_stage,
    "conversation-reset": conversation_reset,
}


def steps_by_index(steps: Sequence[Step]) -> dict[int, Step]:
    return {s.index: s for s in steps}


def detect(
    run: Run, steps: Sequence[Step], detectors: Sequence[str] | None = None
) -> list[Finding]:
    """Run the detectors (default: all) over one run."""
    names = list(detectors) if detectors is not None else list(DETECTORS)
    findings: list[Finding] = []
    for name in names:
        findings.extend(DETECTORS[name](run, steps))
    return findings


def apply_rules(store: TraceStore, run_id: str) -> list[Finding]:
    """Detect and store: the run's `rule:*` annotations are replaced by the new findings."""
    run = store.get_run(run_id)
    findings = detect(run, list(store.iter_steps(run_id)))
    store.replace_annotations(
        run_id,
        annotator_prefix=RULE_PREFIX,
        annotations=[
            {"taxonomy": "mast", "mode": f.mode, "present": True, "confidence": 1.0, "evidence_steps": f.evidence_steps,
             "rationale": f.rationale, "annotator": f.annotator, "step_index": f.evidence_steps[0] if f.evidence_steps else None}
            for f in findings
        ],
    )  # fmt: skip
    return findings
