"""Asking a person: `ask_human` pauses a run until someone answers, and a verifier
whose verdict is a person's.

The pause itself is the runtime's (`mascope.graphs` puts LangGraph's `interrupt`
behind the hook set here), so agents and verifiers can ask without importing it.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from contextvars import ContextVar

from mascope.errors import UserError

from ._verifiers import Verdict, Verifier, VerifyContext

HUMAN = "human"
"""The agent name of a person's answers in the trace (and their key in the state's outputs)."""

Asker = Callable[[str], str]
"""`(prompt) -> the person's answer`; pauses the run until there is one."""

_asker: ContextVar[Asker | None] = ContextVar("mascope_asker", default=None)


def ask_human(prompt: str) -> str:
    """Pause the run until a person answers `prompt`; returns their answer.

    Call it from a function agent, a tool or a callable verifier while a team
    runs. The run ends `paused` (the prompt is a step of the trace) and goes on
    when someone resumes it with an answer (`mascope runs resume RUN_ID --input
    TEXT`, or `team.resume(run_id, input=...)`). As in LangGraph, the node that
    asked then runs again from its start, and this call returns the answer.
    """
    asker = _asker.get()
    if asker is None:
        raise UserError(
            "ask_human works only while a mascope team runs (in a function agent, tool or "
            "verifier of the team)"
        )
    if not isinstance(prompt, str) or not prompt.strip():
        raise UserError("ask_human needs a prompt: the question the person is to answer")
    return asker(prompt)


@contextlib.contextmanager
def asking(asker: Asker) -> Iterator[None]:
    """Within this block `ask_human` calls `asker` (the runtime sets it around each node)."""
    token = _asker.set(asker)
    try:
        yield
    finally:
        _asker.reset(token)


_YES = re.compile(
    r"\s*(y|yes|ok|okay|pass|passed|approve|approved|lgtm|accept|accepted)\b\W*", re.I
)


def human_verdict(answer: str) -> Verdict:
    """A person's answer as a verdict: `yes`, `ok`, `pass`, `approve` (and the like) pass;
    anything else fails, and the answer (after a leading `no`/`fail:`) is the feedback."""
    match = _YES.match(answer)
    if match:
        return Verdict(passed=True, score=1.0, feedback=answer[match.end() :].strip())
    rest = re.sub(r"^\s*(no|n|fail|failed|reject|rejected)\b\W*", "", answer, flags=re.I).strip()
    return Verdict(passed=False, score=0.0, feedback=rest or "a person rejected it")


DEFAULT_HUMAN_PROMPT = "Does this answer pass? Reply yes, or no and what to fix."


class HumanVerifier(Verifier):
    """A person gives the verdict: the run pauses with the candidate and `prompt`.

    The reply `yes` (or `ok`, `pass`, `approve`) passes; anything else fails and is
    sent back as feedback (`no: the total is wrong` gives the feedback `the total is wrong`).
    """

    kind = "human"

    def __init__(self, prompt: str | None = None, *, name: str = "human_check"):
        self.prompt = prompt
        self.name = name

    async def averify(self, candidate: str, ctx: VerifyContext) -> Verdict:
        question = self.prompt or DEFAULT_HUMAN_PROMPT
        answer = ask_human(f"{question}\n\nAnswer to check:\n{candidate}")
        verdict = human_verdict(answer)
        verdict.evidence["human_input"] = answer
        return verdict


DEFAULT_ON_FAIL_PROMPT = "The check failed: {feedback}. Reply pass to accept the answer anyway, or no (and why) to reject it."


class AskHumanOnFail(Verifier):
    """Another verifier first; when it fails, the run pauses and a person decides.

    The reply `yes` / `pass` / `ok` accepts the answer anyway; anything else keeps the
    failure, with the person's words (if any beyond `no`) as the feedback. The first
    verifier's verdict is kept in the evidence (`verifier_verdict`).
    """

    def __init__(
        self,
        verifier: Verifier | Callable[..., object],
        *,
        prompt: str | None = None,
        name: str | None = None,
    ):
        from ._verifiers import as_verifier

        self.verifier = as_verifier(verifier)  # type: ignore[arg-type]
        self.prompt = prompt
        self.name = name or self.verifier.name
        self.kind = self.verifier.kind

    async def averify(self, candidate: str, ctx: VerifyContext) -> Verdict:
        first = await self.verifier.averify(candidate, ctx)
        if first.passed:
            return first
        question = (self.prompt or DEFAULT_ON_FAIL_PROMPT).replace(
            "{feedback}", first.feedback or "no reason given"
        )
        answer = ask_human(f"{question}\n\nAnswer checked:\n{candidate}")
        verdict = human_verdict(answer)
        if not verdict.passed and verdict.feedback == "a person rejected it":
            verdict.feedback = first.feedback or verdict.feedback  # a bare `no` keeps the reason
        verdict.evidence.update({"verifier_verdict": first.model_dump(), "human_input": answer})
        return verdict
