"""Test-time strategies: draw several candidates for a stage and pick one.

* `best_of_n`: draw n, verify each, keep the best-scoring (first passing wins ties);
* `self_consistency`: draw n, extract each answer, keep the majority answer;
* `best_of_majority`: draw n, verify each, majority vote among those that
  passed (among all if none passed);
* `review_refine`: draw n, verify each, keep the best m and ask the agent to
  refine each on its verifier feedback, for up to r rounds (`run_review_refine`).

Candidates are drawn concurrently, at most `concurrency` at a time, and
results are taken in sample order, never finish order, so the same candidates
give the same selection however the draws overlap. Each strategy stops early
when its budget (tokens, cost, seconds) runs out, and with `stop_confidence`
once its winner is settled. A verifier that passes wrong answers caps what
resampling can reach, which is why every verdict is recorded: its
false-positive rate can be estimated from the store.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Generic, Literal, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mascope.errors import ConfigError

from ._agent import TurnResult
from ._matching import Extract, extract_answer, normalise
from ._verifiers import Verdict

StrategyKind = Literal[
    "single", "best_of_n", "self_consistency", "best_of_majority", "review_refine", "draft_defer"
]

REFINE_KEEP = 2
"""review_refine keeps this many candidates each round unless the stage sets `keep`."""
REFINE_ROUNDS = 2
"""review_refine refines for at most this many rounds unless the stage sets `rounds`."""

_SAMPLE: ContextVar[int | None] = ContextVar("mascope_strategy_sample", default=None)
_LINEAGE: ContextVar[tuple[int, int | None] | None] = ContextVar(
    "mascope_strategy_lineage", default=None
)


def current_sample() -> int | None:
    """The sample index of the strategy draw running in this task (None outside one)."""
    return _SAMPLE.get()


def current_refinement() -> dict[str, int]:
    """`round` and `parent` of the review_refine candidate drawn in this task (empty outside one).

    First drafts are round 0 and have no parent; a refinement names the
    candidate (sample index) it refines.
    """
    lineage = _LINEAGE.get()
    if lineage is None:
        return {}
    round_, parent = lineage
    return {"round": round_} if parent is None else {"round": round_, "parent": parent}


class Budget(BaseModel):
    """Limits on tokens, dollars and seconds; the first one reached stops the work."""

    model_config = ConfigDict(
        extra="forbid",
        use_attribute_docstrings=True,
        json_schema_extra={"examples": [{"seconds": 300}]},
    )

    tokens: int | None = Field(default=None, ge=1)
    """Most tokens (input plus output) across every model call."""
    cost_usd: float | None = Field(default=None, gt=0)
    """Most dollars, for models with a known price."""
    seconds: float | None = Field(default=None, gt=0)
    """Most wall-clock seconds."""


class StrategySpec(BaseModel):
    """A test-time strategy: draw several candidates for a stage and pick one."""

    model_config = ConfigDict(
        extra="forbid",
        use_attribute_docstrings=True,
        json_schema_extra={"examples": [{"kind": "best_of_n", "n": 3}]},
    )

    kind: StrategyKind = "single"
    """`single` (one attempt), `best_of_n` (best verified), `self_consistency` (majority answer), `best_of_majority`, `review_refine` (refine the best on verifier feedback) or `draft_defer` (a drafter answers; below `tau` the stage agent answers instead)."""
    n: int = Field(default=3, ge=1, le=64)
    """How many candidates to draw."""
    extract: Extract = "all"
    """How self-consistency reads an answer out of a candidate."""
    budget: Budget | None = None
    """Stop drawing candidates when this budget is spent (checked as candidates finish; draws already running finish and count)."""
    concurrency: int = Field(default=4, ge=1, le=64)
    """Most candidates drawn at once for this stage (1 draws one after another; the embedded model runs one call at a time anyway)."""
    first_finish: bool = False
    """best_of_n: take the first candidate to finish that passes with full score and cancel the rest (faster; which one wins may vary from run to run)."""
    stop_confidence: float | None = Field(default=None, gt=0.5, lt=1)
    """Stop drawing once the winner is settled with this confidence, e.g. 0.95 (rules in docs/runtime.md); the samples used are recorded."""
    penalty: float | None = Field(default=None, gt=0)
    """best_of_n / best_of_majority with `calibration`: cost of a wrong accepted answer relative to the gain 1 of a right one, e.g. 4.0; n is chosen (1..n) to maximise expected utility, and the run abstains when answering does not pay or no candidate passes."""
    calibration: str | None = None
    """With `penalty`: the verifier calibration file (from `mascope verifiers calibrate`), relative to the team file."""
    sample_cost: float = Field(default=0.0, ge=0)
    """With `penalty`: the cost of each draw, in units of a right answer's gain."""

    keep: int | None = Field(default=None, ge=1, le=64)
    """review_refine: how many of the best candidates are kept and refined each round, at most n (default 2, or 1 when n is 1)."""
    rounds: int | None = Field(default=None, ge=1, le=16)
    """review_refine: most rounds of refinement (default 2); it stops sooner once a candidate passes with full score."""

    drafter: str | None = None
    """draft_defer: the agent (typically on a cheaper model) that drafts the stage's answer first; the stage's own agent is the strong one it defers to."""
    tau: float | None = Field(default=None, ge=0, le=1)
    """draft_defer: keep the draft when its verifier score (1/0 from passed when the verifier gives no score) is at least tau; below tau, defer to the stage's agent (`mascope team calibrate-tau` picks one from recorded runs)."""

    @model_validator(mode="after")
    def _draft_defer_fields(self) -> StrategySpec:
        if self.kind != "draft_defer":
            misplaced = [f for f in _DRAFT_DEFER_FIELDS if getattr(self, f) is not None]
            if misplaced:
                raise ValueError(
                    f"{misplaced[0]} works only with kind draft_defer, not {self.kind}; remove {misplaced[0]} or set kind: draft_defer"
                )
            return self
        if self.drafter is None:
            raise ValueError(
                "draft_defer needs drafter: the name of the agent that drafts first (the stage's agent is the one it defers to)"
            )
        if self.tau is None:
            raise ValueError(
                "draft_defer needs tau: the verifier score in [0, 1] a draft must reach to be kept, e.g. tau: 0.5"
            )
        # These tune drawing several candidates; a draft_defer stage draws one draft
        # and at most one deferred answer, so a value here would be silently ignored.
        # Compared with the defaults, not `model_fields_set`: a stored spec lists every field.
        fields = type(self).model_fields
        ignored = [f for f in _DRAW_FIELDS if getattr(self, f) != fields[f].default]
        if ignored:
            raise ValueError(
                f"{ignored[0]} does not apply to kind draft_defer (one draft, then at most one deferred answer); remove {ignored[0]}"
            )
        return self

    @model_validator(mode="after")
    def _coherent(self) -> StrategySpec:
        if self.first_finish and self.kind != "best_of_n":
            raise ValueError(
                f"first_finish works only with kind best_of_n, not {self.kind}; remove first_finish or set kind: best_of_n"
            )
        if self.stop_confidence is not None and self.kind == "single":
            raise ValueError(
                "stop_confidence needs several samples; set kind to best_of_n, self_consistency or best_of_majority, or remove stop_confidence"
            )
        self._check_refine()
        if (self.penalty is None) != (self.calibration is None):
            raise ValueError(
                "penalty and calibration go together; set both (calibration: FILE from `mascope verifiers calibrate`) or neither"
            )
        if self.sample_cost and self.penalty is None:
            raise ValueError(
                "sample_cost is used only with penalty and calibration; set them or remove sample_cost"
            )
        if self.penalty is not None and self.kind not in ("best_of_n", "best_of_majority"):
            raise ValueError(
                f"penalty works only with kind best_of_n or best_of_majority, not {self.kind}; change kind or remove penalty and calibration"
            )
        return self

    def _check_refine(self) -> None:
        # None until given (defaults resolve at run time), so a stored spec reloads as written.
        given = [name for name in ("keep", "rounds") if getattr(self, name) is not None]
        if self.kind != "review_refine":
            if given:
                fields = " and ".join(given)
                raise ValueError(
                    f"{fields} {'works' if len(given) == 1 else 'work'} only with kind review_refine, not {self.kind}; remove {fields} or set kind: review_refine"
                )
            return
        if self.keep is not None and self.keep > self.n:
            raise ValueError(
                f"keep ({self.keep}) is more than n ({self.n}): review_refine keeps at most the n candidates it draws; set keep to {self.n} or less, or raise n"
            )
        if self.stop_confidence is not None:
            raise ValueError(
                "stop_confidence does not apply to review_refine (it stops once a candidate passes with full score); remove stop_confidence"
            )


_DRAFT_DEFER_FIELDS = ("drafter", "tau")
_DRAW_FIELDS = ("n", "extract", "budget", "concurrency", "first_finish", "stop_confidence")


@dataclass
class Selection:
    output: str
    index: int
    """Which sample was chosen (0-based sample index)."""
    verdict: Verdict | None
    candidates: list[str] = field(default_factory=list)
    """The outputs the choice was made among, in sample order."""
    votes: dict[str, int] = field(default_factory=dict)
    stopped_by_budget: bool = False
    final: bool = False
    samples: list[int] = field(default_factory=list)
    """The sample index of each of `candidates`."""
    settled: bool = False
    """Drawing stopped early because the winner was settled (or first_finish found one)."""
    dropped: list[int] = field(default_factory=list)
    """Samples started but left out: cancelled mid-draw, or finished after the winner was settled."""

    @property
    def samples_used(self) -> int:
        """How many candidates the choice was made among."""
        return len(self.candidates)


@dataclass
class _Drawn:
    turn: TurnResult
    verdict: Verdict | None


async def run_strategy(
    spec: StrategySpec,
    draw: Callable[[int], Awaitable[TurnResult]],
    verify: Callable[[str], Awaitable[Verdict]] | None,
) -> Selection:
    """Draw candidates with `draw(sample_index)` and select one per `spec`.

    Each draw (and its verification) runs in its own task, where
    `current_sample()` gives its index, so steps it records can say which
    candidate they belong to. A draw that raises cancels the others and the
    error propagates.
    """
    n = 1 if spec.kind == "single" else spec.n
    checks = verify if spec.kind != "self_consistency" else None

    async def one(i: int) -> _Drawn:
        _SAMPLE.set(i)  # this task's own context: its steps carry the sample index
        turn = await draw(i)
        return _Drawn(turn, await checks(turn.output) if checks is not None else None)

    got = await _draw_all(
        range(n),
        one,
        limit=min(spec.concurrency, n),
        spend=_Spend(spec.budget),
        settle=lambda prefix: _settled(spec, prefix, n, checks),
        first=(lambda d: _perfect(d.verdict)) if spec.first_finish else None,
    )
    results, used, first, stopped = got.results, got.settled, got.first, got.stopped
    launched = len(got.launched)

    # Settled in sample order: only that prefix is chosen among; otherwise every draw that finished.
    samples = list(range(used)) if used is not None else sorted(results)
    dropped = sorted(set(range(launched)) - set(samples))
    outputs = [results[i].turn.output for i in samples]
    verdicts = [results[i].verdict for i in samples]
    finals = [results[i].turn.final for i in samples]
    early = first is not None or used is not None

    def pick(at: int, votes: dict[str, int] | None = None) -> Selection:
        return Selection(
            outputs[at], samples[at], verdicts[at], outputs, dict(votes or {}), stopped,
            finals[at], samples, early, dropped,
        )  # fmt: skip

    if first is not None:
        return pick(samples.index(first))
    if spec.kind in ("single", "best_of_n"):
        return pick(max(range(len(outputs)), key=lambda p: _score(verdicts[p], p)))
    keys, votes = _tally(spec, outputs, verdicts)
    winner_key = max(votes, key=lambda k: (votes[k], -min(p for p in keys if keys[p] == k)))
    return pick(min(p for p in keys if keys[p] == winner_key), votes)


@dataclass
class Refined(Selection):
    """What review_refine chose, and the search that led there."""

    rounds: int = 0
    """Refinement rounds run (0 when a first draft passed with full score or the budget ran out first)."""
    max_rounds: int = 0
    """Refinement rounds the stage allowed."""
    lineage: dict[int, tuple[int, int | None]] = field(default_factory=dict)
    """Each candidate's round and the candidate it refines (None for first drafts), by sample index."""
    verdicts: list[Verdict] = field(default_factory=list)
    """The verdict of each of `candidates`."""


@dataclass
class _Candidate:
    turn: TurnResult
    verdict: Verdict


async def run_review_refine(
    spec: StrategySpec,
    draw: Callable[[int], Awaitable[TurnResult]],
    verify: Callable[[str], Awaitable[Verdict]],
    refine: Callable[[int, str, Verdict], Awaitable[TurnResult]],
) -> Refined:
    """Draw n candidates, then refine the best `keep` on their verifier feedback, round by round.

    Candidates are numbered in the order they are asked for: first drafts
    0..n-1 with `draw(index)`, then each round's refinements,
    `refine(index, parent_output, parent_verdict)`, best kept candidate
    first. Each round's pool is the kept candidates plus their refinements,
    and the best `keep` of it go on. The search stops after `rounds` rounds,
    at the earliest candidate (in index order) that passes with full score,
    or when the budget is spent; the best-scoring candidate of all is chosen
    (ties: the earliest). Steps recorded while drawing or verifying a
    candidate carry its `sample`, `round` and `parent` (see
    `current_refinement`).
    """
    keep = min(spec.keep or REFINE_KEEP, spec.n)
    rounds_cap = spec.rounds or REFINE_ROUNDS
    spend = _Spend(spec.budget)
    drawn: dict[int, _Candidate] = {}
    lineage: dict[int, tuple[int, int | None]] = {}
    dropped: list[int] = []
    stopped = False
    perfect: int | None = None

    async def one(i: int, make: Callable[[], Awaitable[TurnResult]]) -> _Candidate:
        _SAMPLE.set(i)  # this task's own context: its steps say which candidate they are
        _LINEAGE.set(lineage[i])
        turn = await make()
        return _Candidate(turn, await verify(turn.output))

    async def batch(jobs: list[tuple[int, Callable[[], Awaitable[TurnResult]]]]) -> None:
        """Draw and verify `jobs` as run_strategy draws, stopping at a full-score pass."""
        nonlocal stopped, perfect
        order = [i for i, _ in jobs]
        makers = dict(jobs)
        got = await _draw_all(
            order,
            lambda i: one(i, makers[i]),
            limit=spec.concurrency,
            spend=spend,
            budget_first=bool(drawn),  # only the very first draw starts whatever the budget
            settle=lambda prefix: _perfect(prefix[-1].verdict),
        )
        stopped = got.stopped
        if got.settled is not None:
            perfect = order[got.settled - 1]
        kept = (
            order[: got.settled]
            if got.settled is not None
            else [i for i in order if i in got.results]
        )
        drawn.update((i, got.results[i]) for i in kept)
        dropped.extend(i for i in got.launched if i not in kept)

    lineage.update((i, (0, None)) for i in range(spec.n))
    await batch([(i, partial(draw, i)) for i in range(spec.n)])
    pool = sorted(drawn)
    rounds = 0
    while perfect is None and not stopped and rounds < rounds_cap and pool:
        if spend.over():
            stopped = True
            break
        rounds += 1
        best = sorted(pool, key=lambda p: _score(drawn[p].verdict, p), reverse=True)[:keep]
        first = len(lineage)
        jobs: list[tuple[int, Callable[[], Awaitable[TurnResult]]]] = []
        for i, parent in enumerate(best, start=first):
            lineage[i] = (rounds, parent)
            jobs.append((i, partial(refine, i, drawn[parent].turn.output, drawn[parent].verdict)))
        await batch(jobs)
        pool = best + [i for i, _ in jobs if i in drawn]

    samples = sorted(drawn)
    winner = max(samples, key=lambda p: _score(drawn[p].verdict, p))
    chosen = drawn[winner]
    return Refined(
        chosen.turn.output, winner, chosen.verdict, [drawn[i].turn.output for i in samples], {},
        stopped, chosen.turn.final, samples, perfect is not None, sorted(dropped),
        rounds, rounds_cap, {i: lineage[i] for i in samples}, [drawn[i].verdict for i in samples],
    )  # fmt: skip


class _Spend:
    """What a strategy's draws have used so far, against its budget."""

    def __init__(self, budget: Budget | None) -> None:
        self.budget = budget
        self.started = time.monotonic()
        self.tokens = 0
        self.cost = 0.0

    def add(self, turn: TurnResult) -> None:
        self.tokens += turn.input_tokens + turn.output_tokens
        self.cost += turn.cost_usd

    def over(self) -> bool:
        return _over(self.budget, self.tokens, self.cost, time.monotonic() - self.started)


class _HasTurn(Protocol):
    @property
    def turn(self) -> TurnResult: ...


_D = TypeVar("_D", bound=_HasTurn)


@dataclass
class _Draws(Generic[_D]):
    results: dict[int, _D]
    """The draws that finished, by index."""
    launched: list[int]
    """The indices started, in order."""
    settled: int | None
    """How long a prefix of the order `settle` said was enough, if it did."""
    first: int | None
    """The draw `first` took, if it took one."""
    stopped: bool
    """The budget ran out before every draw started."""


async def _draw_all(
    order: Sequence[int],
    start: Callable[[int], Coroutine[Any, Any, _D]],
    *,
    limit: int,
    spend: _Spend,
    settle: Callable[[list[_D]], bool],
    first: Callable[[_D], bool] | None = None,
    budget_first: bool = False,
) -> _Draws[_D]:
    """Run `start(i)` for the indices in `order` concurrently, at most `limit` at a time.

    Each draw runs in its own task (so the context variables it sets are its
    own). The budget is checked before each start but the first (before the
    first too with `budget_first`); once it is spent nothing more starts. The
    draws stop, and those still running are cancelled, as soon as `first`
    takes a finished draw or `settle` says a whole prefix of `order` is
    enough; prefixes are judged in order, never finish order, so the same
    draws stop at the same place however they overlapped. A draw that raises
    cancels the others and the error propagates.
    """
    results: dict[int, _D] = {}
    running: dict[asyncio.Task[_D], int] = {}
    launched: list[int] = []
    checked = 0
    stopped = False
    settled: int | None = None
    taken: int | None = None
    try:
        while True:
            while len(launched) < len(order) and len(running) < limit and not stopped:
                if (launched or budget_first) and spend.over():
                    stopped = True
                    break
                i = order[len(launched)]
                running[asyncio.create_task(start(i))] = i
                launched.append(i)
            if not running:
                break
            done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in sorted(done, key=lambda t: running[t]):
                i = running.pop(task)
                results[i] = got = task.result()
                spend.add(got.turn)
                if first is not None and taken is None and first(got):
                    taken = i
            if taken is not None:
                break
            while checked < len(order) and order[checked] in results:
                checked += 1
                if settle([results[j] for j in order[:checked]]):
                    settled = checked
                    break
            if settled is not None:
                break
    finally:
        for task in running:
            task.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)
    return _Draws(results, launched, settled, taken, stopped)


def _score(v: Verdict | None, position: int) -> tuple[int, float, int]:
    if v is None:
        return (0, 0.0, -position)
    return (int(v.passed), v.score if v.score is not None else float(v.passed), -position)


def _perfect(v: Verdict | None) -> bool:
    return v is not None and v.passed and (v.score if v.score is not None else 1.0) >= 1.0


def _tally(
    spec: StrategySpec, outputs: Sequence[str], verdicts: Sequence[Verdict | None]
) -> tuple[dict[int, str], Counter[str]]:
    """Each voter's answer by position, and the votes for each answer.

    best_of_majority votes among the candidates that passed (among all if none did).
    """
    voters: Sequence[int] = range(len(outputs))
    if spec.kind == "best_of_majority":
        voters = [p for p in voters if (v := verdicts[p]) is not None and v.passed] or voters
    keys = {p: normalise(extract_answer(outputs[p], spec.extract)) for p in voters}
    return keys, Counter(keys.values())


def _settled(
    spec: StrategySpec,
    drawn: list[_Drawn],
    n: int,
    verify: Callable[[str], Awaitable[Verdict]] | None,
) -> bool:
    """Whether the first `len(drawn)` samples already decide the winner (see docs/runtime.md)."""
    k = len(drawn)
    if spec.kind == "best_of_n" and _perfect(drawn[-1].verdict):
        # The earliest perfect candidate: later ones only tie, and ties go to the earlier.
        return True
    confidence = spec.stop_confidence
    if confidence is None or spec.kind == "single":
        return False
    if spec.kind == "best_of_n":
        # No verifier: every candidate ties and the first wins. Otherwise, for
        # exchangeable draws the best of all n is among the first k with
        # probability k/n, whatever the score distribution.
        return verify is None or k >= confidence * n - 1e-9  # 0.56 * 25 is 14.000000000000002
    verdicts = [d.verdict for d in drawn]
    if spec.kind == "best_of_majority" and not any(v is not None and v.passed for v in verdicts):
        return False  # nothing verified yet: the vote is not among the right pool
    _, votes = _tally(spec, [d.turn.output for d in drawn], verdicts)
    top = [*sorted(votes.values(), reverse=True), 0]
    return vote_settled(top[0], top[1], n - k, confidence)


def vote_settled(leader: int, runner_up: int, remaining: int, confidence: float) -> bool:
    """Whether a vote of `leader` to `runner_up` is settled at `confidence`.

    Settled when the runner-up can no longer catch up even if it won every
    `remaining` draw, or when, under a uniform prior on how the two top
    answers split, the posterior probability that the leader is the likelier
    one, P(Beta(leader+1, runner_up+1) > 1/2), reaches `confidence` (the
    stopping rule of Adaptive-Consistency, Aggarwal et al. 2023). That
    probability is computed exactly as P(Binomial(leader+runner_up+1, 1/2) <= leader).
    """
    if leader > runner_up + remaining:
        return True
    if leader <= runner_up:
        return False
    m = leader + runner_up + 1
    below = sum(math.comb(m, j) for j in range(leader + 1))
    return below / (1 << m) >= confidence


def _over(budget: Budget | None, tokens: int, cost: float, seconds: float) -> bool:
    if budget is None:
        return False
    return bool(
        (budget.tokens is not None and tokens >= budget.tokens)
        or (budget.cost_usd is not None and cost >= budget.cost_usd)
        or (budget.seconds is not None and seconds >= budget.seconds)
    )


@dataclass
class Deferral:
    """What a draft_defer stage did: the draft, its score, and the deferred answer if any."""

    draft: TurnResult
    draft_verdict: Verdict
    score: float
    """The draft's score: the verdict's score, or 1/0 from passed when it gives none."""
    tau: float
    strong: TurnResult | None = None
    """The strong agent's answer, when the stage deferred (None when the draft was kept)."""
    strong_verdict: Verdict | None = None

    @property
    def deferred(self) -> bool:
        """Whether the stage deferred to the strong agent."""
        return self.strong is not None

    @property
    def chosen(self) -> TurnResult:
        """The answer the stage goes on with."""
        return self.strong if self.strong is not None else self.draft

    @property
    def verdict(self) -> Verdict:
        """The verdict on the chosen answer."""
        return self.strong_verdict if self.strong_verdict is not None else self.draft_verdict


def draft_score(verdict: Verdict) -> float:
    """A verdict's score for deferral: its score, or 1/0 from passed when it gives none."""
    return verdict.score if verdict.score is not None else float(verdict.passed)


def defers(verdict: Verdict, tau: float) -> bool:
    """Whether a draft with this verdict is deferred: strictly below tau (a score equal to tau keeps the draft)."""
    return draft_score(verdict) < tau


async def run_draft_defer(
    spec: StrategySpec,
    draft: Callable[[], Awaitable[TurnResult]],
    strong: Callable[[], Awaitable[TurnResult]],
    verify: Callable[[str], Awaitable[Verdict]],
) -> Deferral:
    """Draft with the cheap agent, verify, and defer to the strong agent below `spec.tau`.

    The strong agent's answer is verified too, as the stage would verify any
    answer, so its verdict (not the draft's) decides what the stage does next.
    """
    if spec.tau is None:  # only a spec built around its validator gets here
        raise ConfigError("strategy.tau: draft_defer needs tau, a score in [0, 1], e.g. tau: 0.5")
    first = await draft()
    verdict = await verify(first.output)
    result = Deferral(first, verdict, draft_score(verdict), spec.tau)
    if defers(verdict, spec.tau):
        result.strong = await strong()
        result.strong_verdict = await verify(result.strong.output)
    return result
