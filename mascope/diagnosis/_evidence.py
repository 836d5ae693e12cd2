"""Evidence that checks out: a mode is present only when what the judge cites is really there.

A weak judge marks modes present with evidence that does not exist: step
numbers the run does not have, or quotes that appear nowhere in the steps it
cites. `check_evidence` turns such a verdict into "uncertain" (never into
"absent": the judge did say present) and says why; `agreement` does the same
for a mode judged several times (`--samples k`) whose verdicts disagree.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from mascope.traces import Step

LabelStatus = Literal["present", "absent", "uncertain"]

_QUOTED = re.compile(r"\"([^\"]+)\"|“([^”]+)”|«([^»]+)»")
_MIN_QUOTE = 8
"""Shorter quoted bits ("pass", "yes") are names or words, not quotations to check."""


@dataclass(frozen=True)
class EvidenceCheck:
    """A mode's status after checking its evidence, and why."""

    status: LabelStatus
    reason: str = ""
    steps: list[int] = field(default_factory=list)
    """The cited steps the run has."""
    missing_quotes: list[str] = field(default_factory=list)


def _norm(text: str) -> str:
    return " ".join(text.casefold().split()).strip(" .,;:!?'\"`")


def quotes_in(text: str) -> list[str]:
    """Quoted passages in a rationale (double or typographic quotes), long enough to check."""
    found = ("".join(groups) for groups in _QUOTED.findall(text or ""))
    return [q for q in found if len(_norm(q)) >= _MIN_QUOTE]


def check_evidence(
    present: bool,
    evidence_steps: Sequence[int],
    rationale: str,
    steps: Sequence[Step],
    *,
    quotes: Sequence[str] = (),
) -> EvidenceCheck:
    """Present only if the judge cites a step the run has and every quote is found in a cited step.

    `quotes` are quotations the judge gave separately; quoted passages in the
    rationale are checked too.
    """
    if not present:
        return EvidenceCheck("absent")
    by_index = {s.index: s for s in steps}
    cited = [i for i in dict.fromkeys(evidence_steps) if i in by_index]
    if not cited:
        if not evidence_steps:
            return EvidenceCheck("uncertain", "cites no step")
        named = ", ".join(str(i) for i in dict.fromkeys(evidence_steps))
        plural = "s" if len(set(evidence_steps)) > 1 else ""
        have = (
            (
                f"steps {min(by_index)}-{max(by_index)}"
                if len(by_index) > 1
                else f"step {min(by_index)}"
            )
            if by_index
            else "no steps"
        )
        return EvidenceCheck(
            "uncertain",
            f"cited step{plural} {named} do{'' if plural else 'es'} not exist "
            f"(the trace shown has {have})",
        )
    texts = [_norm(by_index[i].content) for i in cited]
    missing = [q for q in [*quotes, *quotes_in(rationale)] if not any(_norm(q) in t for t in texts)]
    if missing:
        return EvidenceCheck(
            "uncertain",
            f"quote {missing[0][:80]!r} is not in step{'s' if len(cited) > 1 else ''} "
            f"{', '.join(map(str, cited))}",
            cited,
            missing,
        )
    return EvidenceCheck("present", "", cited)


def agreement(votes: Sequence[LabelStatus], *, threshold: float = 0.7) -> LabelStatus:
    """One status from k samples: present (or absent) when at least `threshold` of them say so, else uncertain."""
    if not votes:
        return "uncertain"
    for status in ("present", "absent"):
        if sum(v == status for v in votes) / len(votes) >= threshold:
            return status
    return "uncertain"


__all__ = ["EvidenceCheck", "LabelStatus", "agreement", "check_evidence", "quotes_in"]
