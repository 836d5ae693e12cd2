"""How a run ends: the `RunResult` a run returns, the `ResultEvent` that closes a
stream, the default answer scoring, and closing a run's row (scored against its
ground truth, or paused for a person) into its `RunResult`. `Team` and the
resume and fork code in `_resume` end every run through `close_run` or
`close_paused` here, so a run is scored and closed the same way however it ran.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from mascope._vocabulary import SUCCESS_TERMINATIONS, TerminationReason
from mascope.agents import MatchResult, match_answer
from mascope.errors import UserError
from mascope.traces import Step, TraceStore

from ._context import RunContext
from ._events import RestartEvent, RunEventKind, StepEvent, TokenEvent
from ._resolved import Scorer
from ._spec import ScoringSpec


@dataclass(frozen=True)
class RunResult:
    """How a run ended; `steps` loads its steps from the store on first use."""

    run_id: str
    status: str
    answer: str | None
    termination_reason: str | None
    step_count: int
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    error: str | None = None
    parent_run_id: str | None = None
    fork_step: int | None = None
    prompt: str | None = None
    """A paused run: what the person is asked (continue it with `Team.resume(run_id, input=...)`)."""
    store: TraceStore | None = field(default=None, repr=False, compare=False)
    _loaded: dict[str, list[Step]] = field(default_factory=dict, repr=False, compare=False)

    @property
    def steps(self) -> list[Step]:
        """Every step of the run, in order (read from the store once, then kept)."""
        if "steps" not in self._loaded:
            if self.store is None:
                raise UserError(
                    f"this RunResult for run {self.run_id} has no store; read its steps with "
                    f"TraceStore(...).steps({self.run_id!r})"
                )
            self._loaded["steps"] = self.store.steps(self.run_id)
        return self._loaded["steps"]

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"

    @property
    def paused(self) -> bool:
        """The run is waiting for a person's input (see `prompt`): neither done nor failed."""
        return self.status == "paused"

    @property
    def abstained(self) -> bool:
        """The run chose to give no answer (a calibrated strategy): neither success nor failure."""
        return self.status == "abstained"

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True)
class ResultEvent:
    """The last event of `Team.astream`: how the run ended."""

    event: ClassVar[RunEventKind] = "result"
    result: RunResult


RunEvent = StepEvent | TokenEvent | RestartEvent | ResultEvent
"""What `Team.astream` yields; tell them apart by class or by `event`."""


def answer_matches(answer: str | None, expected: str) -> bool:
    """The default scoring: the expected answer appears in the answer (or in its
    part after `ANSWER:`) as whole words or numbers, after normalising."""
    return answer is not None and match_answer(answer, expected).matched


def score_answer(
    answer: str | None, expected: str, scoring: ScoringSpec, scorer: Scorer | None = None
) -> MatchResult:
    """Score a final answer against the ground truth the way the team says."""
    if answer is None:
        return MatchResult(False, scoring.function or scoring.match, "")
    if scorer is None:
        return match_answer(
            answer,
            expected,
            mode=scoring.match,
            extract=scoring.extract,
            marker=scoring.marker,
            tolerance=scoring.tolerance,
        )
    name = scoring.function or "function"
    try:
        got = scorer(answer, expected)
    except Exception as exc:  # a user's scorer failing must not lose the run's outcome
        return MatchResult(False, f"{name} (raised {type(exc).__name__}: {exc})"[:300], answer)
    if isinstance(got, MatchResult):
        return got
    if isinstance(got, tuple) and len(got) == 2:
        return MatchResult(bool(got[0]), name, answer, found=str(got[1]) or None)
    return MatchResult(bool(got), name, answer)


def close_paused(run: RunContext, pause: dict[str, Any]) -> RunResult:
    """Close the run row as `paused`, saying what the person is asked."""
    prompt = str(pause.get("prompt", ""))
    row = run.store.finish_run(
        run.run_id,
        status="paused",
        termination_reason="paused",
        metadata={"pause": {"prompt": prompt, "step": pause.get("step")}},
    )
    return run_result(run, row, None, prompt)


def close_run(
    run: RunContext,
    final: Mapping[str, Any],
    status_override: str | None,
    error: str | None,
) -> RunResult:
    """Close the run row from the graph's final state (scored against the run's ground
    truth, if it has one), or as `error` with `status_override="error"`."""
    if status_override == "error":
        row = run.store.finish_run(
            run.run_id, status="error", termination_reason="error", metadata={"error": error}
        )
    else:
        reason: TerminationReason = final.get("termination") or "end"
        answer = final.get("final_answer")
        if answer is None and reason != "abstained":
            answer = final.get("last_output") or None
        status = "succeeded" if reason in SUCCESS_TERMINATIONS else "failed"
        meta: dict[str, Any] = {}
        if reason == "abstained":
            # Neither right nor wrong: no answer was given (see docs/runtime.md).
            status = "abstained"
        elif run.ground_truth is not None:
            team = run.team
            scored = score_answer(answer, run.ground_truth, team.spec.scoring, team.scorer)
            correct = scored.matched
            meta["answer_correct"] = correct
            meta["scoring"] = {
                "matcher": scored.matcher,
                "matched": correct,
                "span": list(scored.span) if scored.span else None,
                "found": scored.found[:500] if scored.found else None,
            }
            if status == "succeeded" and not correct:
                status = "failed"
        row = run.store.finish_run(
            run.run_id,
            status=status,
            final_answer=answer,
            termination_reason=reason,
            metadata=meta or None,
        )
    return run_result(run, row, error)


def run_result(
    run: RunContext, row: Any, error: str | None, prompt: str | None = None
) -> RunResult:
    """The RunResult of a run whose row was just closed."""
    return RunResult(
        run_id=row.id,
        status=row.status,
        answer=row.final_answer,
        termination_reason=row.termination_reason,
        step_count=row.step_count,
        input_tokens=row.input_tokens,
        output_tokens=row.output_tokens,
        cost_usd=row.cost_usd,
        error=run.store.redact.optional(error),  # it is printed and may quote the task
        parent_run_id=row.parent_run_id,
        fork_step=row.fork_step,
        prompt=run.store.redact.optional(prompt),
        store=run.store,
    )


__all__ = [
    "ResultEvent",
    "RunEvent",
    "RunResult",
    "answer_matches",
    "close_paused",
    "close_run",
    "run_result",
    "score_answer",
]
