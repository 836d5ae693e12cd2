"""Verifiers: judge a candidate answer and say why.

Every verifier returns a `Verdict` (passed, score, feedback, evidence). The
runtime records each verdict as a step, so a wrong verification can itself
be blamed.
"""

from __future__ import annotations

import asyncio
import inspect
import re
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import jsonschema
from pydantic import BaseModel, Field, field_validator

from mascope._safeload import check_schema_size, loads_json
from mascope.errors import ConfigError, StructuredOutputError
from mascope.models import output_spec

from ._call import Recorder, recorded_chat
from ._codeexec import extract_code, run_tests
from ._matching import Extract, MatchMode, match_answer


class Verdict(BaseModel):
    passed: bool
    score: float | None = None
    feedback: str = ""
    evidence: dict[str, Any] = Field(default_factory=dict)


@dataclass
class VerifyContext:
    """What a verifier may look at besides the candidate."""

    task: str
    ground_truth: str | None = None
    outputs: Mapping[str, str] = field(default_factory=dict)
    """Latest output of each agent, by name."""
    recorder: Recorder | None = None
    """Where a verifier that calls a model records its retries and unusable answers."""


class Verifier(ABC):
    """Base class: subclasses implement `averify`."""

    name: str = "verifier"
    kind: str = "custom"

    @abstractmethod
    async def averify(self, candidate: str, ctx: VerifyContext) -> Verdict:
        """Judge `candidate`; `ctx` holds the task, ground truth and agents' outputs."""

    def verify(self, candidate: str, ctx: VerifyContext | None = None) -> Verdict:
        from mascope._sync import run_sync

        return run_sync(
            lambda: self.averify(candidate, ctx or VerifyContext(task="")), "verify", "averify"
        )


class CallableVerifier(Verifier):
    """A Python function `(candidate, ctx) -> bool | Verdict | (bool, feedback)`, sync or async."""

    kind = "python"

    def __init__(self, fn: Callable[..., Any], *, name: str | None = None):
        self.fn = fn
        self.name = name or str(getattr(fn, "__name__", "check"))

    async def averify(self, candidate: str, ctx: VerifyContext) -> Verdict:
        params = len(inspect.signature(self.fn).parameters)
        result = self.fn(candidate, ctx) if params >= 2 else self.fn(candidate)
        if inspect.isawaitable(result):
            result = await result
        if isinstance(result, Verdict):
            return result
        if isinstance(result, tuple) and len(result) == 2:
            return Verdict(
                passed=bool(result[0]), score=1.0 if result[0] else 0.0, feedback=str(result[1])
            )
        if isinstance(result, bool):
            return Verdict(
                passed=result,
                score=1.0 if result else 0.0,
                feedback="" if result else f"{self.name} said no",
            )
        raise ConfigError(
            f"verifier {self.name} returned {type(result).__name__}; return a bool, (bool, feedback) or Verdict"
        )


class AnswerMatch(Verifier):
    """Compare against an expected answer (default: the run's ground truth).

    `mode`: `exact`, `normalised` (case, whitespace, number formats),
    `numeric` (within `tolerance`), `contains` (the expected answer appears as
    whole words or numbers) or `regex` (the expected answer is a pattern);
    see `match_answer`.
    """

    kind = "answer_match"

    def __init__(
        self,
        expected: str | None = None,
        *,
        mode: MatchMode = "normalised",
        extract: Extract = "all",
        marker: str = "ANSWER:",
        tolerance: float = 1e-6,
        name: str = "answer_match",
    ):
        if mode == "regex" and expected is not None:
            try:
                re.compile(expected)
            except re.error as exc:  # else it would never match, silently
                raise ConfigError(
                    f"verifier {name}: expected: not a valid regular expression ({exc}); "
                    "escape special characters such as ( [ * with a backslash"
                ) from None
        self.expected, self.mode, self.extract, self.marker = expected, mode, extract, marker
        self.tolerance, self.name = tolerance, name

    async def averify(self, candidate: str, ctx: VerifyContext) -> Verdict:
        expected = self.expected if self.expected is not None else ctx.ground_truth
        if expected is None:
            raise ConfigError(
                f"verifier {self.name} has no expected answer: set expected or give the run a ground truth"
            )
        result = match_answer(
            candidate,
            expected,
            mode=self.mode,
            extract=self.extract,
            marker=self.marker,
            tolerance=self.tolerance,
        )
        got = result.compared
        ok = result.matched
        feedback = "" if ok else f"the answer {got[:200]!r} does not match what was expected"
        return Verdict(
            passed=ok,
            score=1.0 if ok else 0.0,
            feedback=feedback,
            evidence={"extracted": got[:500]},
        )


class JsonSchemaCheck(Verifier):
    """The candidate must be JSON matching a schema."""

    kind = "json_schema"

    def __init__(self, schema: dict[str, Any], *, name: str = "json_schema"):
        try:
            check_schema_size(schema)
        except ValueError as exc:
            raise ConfigError(f"verifier {name}: {exc}") from None
        try:
            jsonschema.validators.validator_for(schema).check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise ConfigError(f"verifier {name}: not a valid JSON schema: {exc.message}") from None
        from mascope.models import unresolved_ref

        problem = unresolved_ref(schema)
        if problem:
            raise ConfigError(f"verifier {name}: {problem}")
        self.schema, self.name = schema, name
        self._validator = jsonschema.validators.validator_for(schema)(schema)

    async def averify(self, candidate: str, ctx: VerifyContext) -> Verdict:
        from mascope.models import extract_json

        try:
            value = extract_json(candidate)
        except ValueError as exc:
            return Verdict(passed=False, score=0.0, feedback=f"not JSON: {exc}")
        errors = [
            f"{'.'.join(str(p) for p in e.absolute_path) or 'the answer'}: {e.message}"
            for e in self._validator.iter_errors(value)
        ]
        if errors:
            return Verdict(
                passed=False,
                score=0.0,
                feedback="; ".join(errors[:5]),
                evidence={"errors": errors[:20]},
            )
        return Verdict(passed=True, score=1.0)


class CodeTests(Verifier):
    """Run the code in an output against unit tests, in a sandboxed subprocess.

    The code comes from the candidate (or the latest output of `code_from`);
    the tests are fixed (`tests`) or come from another agent's output
    (`tests_from`). Fenced ```python blocks are extracted.
    """

    kind = "code_tests"

    def __init__(
        self,
        *,
        tests: str | None = None,
        tests_from: str | None = None,
        code_from: str | None = None,
        timeout_s: float = 10.0,
        memory_mb: int = 512,
        name: str = "code_tests",
    ):
        if (tests is None) == (tests_from is None):
            raise ConfigError(f"verifier {name}: give exactly one of tests or tests_from")
        self.tests, self.tests_from, self.code_from = tests, tests_from, code_from
        self.timeout_s, self.memory_mb, self.name = timeout_s, memory_mb, name

    async def averify(self, candidate: str, ctx: VerifyContext) -> Verdict:
        code_text = ctx.outputs.get(self.code_from, "") if self.code_from else candidate
        tests_text = (
            self.tests if self.tests is not None else ctx.outputs.get(self.tests_from or "", "")
        )
        if not extract_code(tests_text).strip():
            return Verdict(
                passed=False,
                score=0.0,
                feedback=f"there are no tests to run (from {self.tests_from})",
            )
        result = await asyncio.to_thread(
            run_tests,
            extract_code(code_text),
            extract_code(tests_text),
            timeout_s=self.timeout_s,
            memory_mb=self.memory_mb,
        )
        total = result.passed + result.failed
        score = result.passed / total if total else 0.0
        feedback = (
            "all tests passed" if result.ok else "; ".join(result.errors[:5]) or "no test passed"
        )
        return Verdict(
            passed=result.ok,
            score=score,
            feedback=feedback[:1500],
            evidence={
                "passed": result.passed,
                "failed": result.failed,
                "timed_out": result.timed_out,
                "stdout": result.stdout[-500:],
            },
        )


RUBRIC_FEEDBACK_CHARS = 240
RUBRIC_SHAPE = '{"passed": true|false, "score": 0..1, "feedback": "..."}'


class _RubricAnswer(BaseModel):
    # Bounded strings keep a small model from rambling past max_tokens: backends
    # that compile the schema to a grammar (llama.cpp) cannot emit a longer one.
    passed: bool
    score: float = Field(ge=0, le=1)
    feedback: str = Field(max_length=RUBRIC_FEEDBACK_CHARS)

    @field_validator("score", mode="before")
    @classmethod
    def _clamp(cls, value: Any) -> Any:
        # Grammars do not enforce minimum/maximum; a score of 5 still means "high".
        if isinstance(value, int | float) and not isinstance(value, bool):
            return min(1.0, max(0.0, float(value)))
        return value

    @field_validator("feedback", mode="before")
    @classmethod
    def _shorten(cls, value: Any) -> Any:
        # A backend without a grammar may write more; a long verdict is still a verdict.
        if isinstance(value, str) and len(value) > RUBRIC_FEEDBACK_CHARS:
            return value[: RUBRIC_FEEDBACK_CHARS - 3] + "..."
        return value


RUBRIC_MAX_TOKENS = RUBRIC_FEEDBACK_CHARS + 80
"""Room for the longest verdict the schema allows: a token is at least one character,
and the keys, the bounded numbers and the grammar's single spaces fit in 80."""
_RUBRIC_SPEC = replace(output_spec(_RubricAnswer), name="verdict")


class Rubric(Verifier):
    """An LLM judges the candidate against a rubric.

    When the model cannot give a usable verdict (no JSON, wrong shape, even
    after one repair), the verdict counts as failed with that reason, and the
    raw answer is recorded as a `model_call` step with the error.
    """

    kind = "rubric"

    def __init__(self, rubric: str, *, model: Any = None, name: str = "rubric"):
        self.rubric, self.name = rubric, name
        self._model_ref = model
        self._bound: Any = None
        self.model_id: str | None = None

    def bind_model(self, model: Any) -> None:
        """Use this `ChatModel` (the run's shared instance) instead of building one."""
        self._bound = model

    async def averify(self, candidate: str, ctx: VerifyContext) -> Verdict:
        from mascope.models import get_model

        # One model for every verdict of this verifier: a fresh one per call would
        # reload a local model, and restart a scripted one at its first reply.
        if self._bound is None:
            self._bound = get_model(self._model_ref or "local")
        model = self._bound
        self.model_id = model.model_id
        prompt = (
            f"Task:\n{ctx.task}\n\nCandidate answer:\n{candidate}\n\nRubric:\n{self.rubric}\n\n"
            "Does the candidate satisfy the rubric? Reply with passed (true/false), a score from 0 to 1, "
            "and one or two sentences of feedback the author can act on."
        )
        recorder = ctx.recorder
        try:
            reply = await recorded_chat(
                model,
                [
                    {"role": "system", "content": "You are a strict, fair reviewer."},
                    {"role": "user", "content": prompt},
                ],
                recorder=recorder,
                agent=self.name,
                output=_RUBRIC_SPEC,
                temperature=0,
                max_tokens=RUBRIC_MAX_TOKENS,
            )
        except StructuredOutputError as exc:
            return self._unusable(model.model_id, exc, recorder)
        answer: _RubricAnswer = reply.parsed
        return Verdict(
            passed=answer.passed,
            score=answer.score,
            feedback=answer.feedback,
            evidence={
                "model": model.model_id,
                "input_tokens": reply.usage.input_tokens,
                "output_tokens": reply.usage.output_tokens,
                "cost_usd": reply.cost_usd,
            },
        )

    def _unusable(
        self, model_id: str, exc: StructuredOutputError, recorder: Recorder | None
    ) -> Verdict:
        """The documented rule: an unusable verdict answer is a failed verdict, with the reason."""
        reason = (
            f"the rubric verifier {self.name!r} asked {model_id} for a verdict JSON "
            f"{RUBRIC_SHAPE} but could not use its answer even after one repair: "
            f"{exc.reason or exc}"
        )
        if recorder is not None:
            recorder.record(
                agent=self.name,
                kind="model_call",
                content=exc.last_answer,
                data={
                    "event": "unusable_answer",
                    "asked_for": "verdict JSON",
                    "finish_reason": exc.finish_reason,
                },
                model=model_id,
                input_tokens=exc.input_tokens,
                output_tokens=exc.output_tokens,
                error=reason,
            )
        return Verdict(
            passed=False,
            score=0.0,
            feedback=f"no verdict: {reason}",
            evidence={"model": model_id, "unusable_answer": exc.last_answer[:2000]},
        )


class Ensemble(Verifier):
    """Several verifiers combined: `all`, `any`, `majority`, or `mean` score >= threshold."""

    kind = "ensemble"

    def __init__(
        self,
        verifiers: Sequence[Verifier],
        *,
        mode: Literal["all", "any", "majority", "mean"] = "all",
        threshold: float = 0.5,
        name: str = "ensemble",
    ):
        if not verifiers:
            raise ConfigError(f"verifier {name}: an ensemble needs at least one verifier")
        self.verifiers, self.mode, self.threshold, self.name = (
            list(verifiers),
            mode,
            threshold,
            name,
        )

    async def averify(self, candidate: str, ctx: VerifyContext) -> Verdict:
        verdicts = [await v.averify(candidate, ctx) for v in self.verifiers]
        votes = [v.passed for v in verdicts]
        scores = [v.score if v.score is not None else (1.0 if v.passed else 0.0) for v in verdicts]
        mean = sum(scores) / len(scores)
        if self.mode == "all":
            ok = all(votes)
        elif self.mode == "any":
            ok = any(votes)
        elif self.mode == "majority":
            ok = sum(votes) * 2 > len(votes)
        else:
            ok = mean >= self.threshold
        feedback = "; ".join(
            f"{v.name}: {d.feedback}"
            for v, d in zip(self.verifiers, verdicts, strict=True)
            if d.feedback and not d.passed
        )
        return Verdict(
            passed=ok,
            score=mean,
            feedback=feedback,
            evidence={
                "members": {
                    v.name: d.model_dump() for v, d in zip(self.verifiers, verdicts, strict=True)
                }
            },
        )


VerifierFn = Callable[[str, VerifyContext], bool | Verdict | Awaitable[bool | Verdict]]


def as_verifier(obj: Verifier | Callable[..., Any], *, name: str | None = None) -> Verifier:
    if isinstance(obj, Verifier):
        if name:
            obj.name = name
        return obj
    if callable(obj):
        return CallableVerifier(obj, name=name)
    raise ConfigError(f"a verifier must be a Verifier or a function, not {type(obj).__name__}")


def verdict_text(v: Verdict) -> str:
    head = "PASSED" if v.passed else "FAILED"
    score = "" if v.score is None else f" (score {v.score:.2f})"
    return f"{head}{score}" + (f": {v.feedback}" if v.feedback else "")


def parse_verdict_text(text: str) -> Verdict:
    """A replacement verdict for a fork: JSON `{passed, feedback, ...}` or `pass` / `fail: why`."""
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            return Verdict.model_validate(loads_json(stripped, source="replacement verdict"))
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"replacement verdict is not a valid verdict JSON: {exc}") from None
    word, _, rest = stripped.partition(":")
    # Also what `verdict_text` writes ("FAILED (score 0.00): why"), so a recorded
    # verdict can be given back as a replacement.
    head = re.fullmatch(r"\s*(\w+)\s*(?:\(score\s+([0-9.]+)\))?\s*", word)
    word = head.group(1) if head else word
    score = float(head.group(2)) if head and head.group(2) else None
    if word.lower() in ("pass", "passed", "true", "yes"):
        return Verdict(passed=True, score=1.0 if score is None else score, feedback=rest.strip())
    if word.lower() in ("fail", "failed", "false", "no"):
        return Verdict(
            passed=False, score=0.0 if score is None else score, feedback=rest.strip() or "rejected"
        )
    raise ConfigError(
        'a replacement verdict must be JSON like {"passed": false, "feedback": "..."} or \'pass\' / \'fail: why\''
    )
