"""Test-time strategies: draw several candidates for a stage and pick one.

* `best_of_n`: draw n, verify each, keep the best-scoring (first passing wins ties);
* `self_consistency`: draw n, extract each answer, keep the majority answer;
* `best_of_majority`: draw n, verify each, majority vote among those that
  passed (among all if none passed).

Each stops early when its budget (tokens, cost, seconds) runs out. A verifier
that passes wrong answers caps what resampling can reach, which is why every
verdict is recorded: its false-positive rate can be estimated from the store.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ._agent import TurnResult
from ._matching import Extract, extract_answer, normalise
from ._verifiers import Verdict

StrategyKind = Literal["single", "best_of_n", "self_consistency", "best_of_majority"]


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
    """`single` (one attempt), `best_of_n` (best verified), `self_consistency` (majority answer) or `best_of_majority`."""
    n: int = Field(default=3, ge=1, le=64)
    """How many candidates to draw."""
    extract: Extract = "all"
    """How self-consistency reads an answer out of a candidate."""
    budget: Budget | None = None
    """Stop drawing candidates when this budget is spent."""


@dataclass
class Selection:
    output: str
    index: int
    """Which candidate was chosen (0-based)."""
    verdict: Verdict | None
    candidates: list[str] = field(default_factory=list)
    votes: dict[str, int] = field(default_factory=dict)
    stopped_by_budget: bool = False
    final: bool = False


async def run_strategy(
    spec: StrategySpec,
    draw: Callable[[int], Awaitable[TurnResult]],
    verify: Callable[[str], Awaitable[Verdict]] | None,
) -> Selection:
    """Draw candidates with `draw(sample_index)` and select one per `spec`."""
    started = time.monotonic()
    tokens = 0
    cost = 0.0
    outputs: list[str] = []
    verdicts: list[Verdict | None] = []
    finals: list[bool] = []
    stopped = False
    n = 1 if spec.kind == "single" else spec.n
    for i in range(n):
        if i and _over(spec.budget, tokens, cost, time.monotonic() - started):
            stopped = True
            break
        turn = await draw(i)
        tokens += turn.input_tokens + turn.output_tokens
        cost += turn.cost_usd
        outputs.append(turn.output)
        finals.append(turn.final)
        verdicts.append(
            await verify(turn.output)
            if verify is not None and spec.kind != "self_consistency"
            else None
        )
        if (
            spec.kind == "best_of_n"
            and verdicts[-1] is not None
            and verdicts[-1].passed
            and (verdicts[-1].score or 1.0) >= 1.0
        ):
            break  # a perfect candidate: more samples cannot beat it

    if spec.kind in ("single", "best_of_n"):

        def score(i: int) -> tuple[int, float, int]:
            v = verdicts[i]
            if v is None:
                return (0, 0.0, -i)
            return (int(v.passed), v.score if v.score is not None else float(v.passed), -i)

        best = max(range(len(outputs)), key=score)
        return Selection(
            outputs[best],
            best,
            verdicts[best],
            outputs,
            stopped_by_budget=stopped,
            final=finals[best],
        )

    pool = list(range(len(outputs)))
    if spec.kind == "best_of_majority":
        passed = [i for i in pool if verdicts[i] is not None and verdicts[i].passed]  # type: ignore[union-attr]
        pool = passed or pool
    keys = {i: normalise(extract_answer(outputs[i], spec.extract)) for i in pool}
    votes = Counter(keys.values())
    winner_key, _ = max(
        votes.items(), key=lambda kv: (kv[1], -min(i for i in pool if keys[i] == kv[0]))
    )
    chosen = min(i for i in pool if keys[i] == winner_key)
    return Selection(
        outputs[chosen], chosen, verdicts[chosen], outputs, dict(votes), stopped, finals[chosen]
    )


def _over(budget: Budget | None, tokens: int, cost: float, seconds: float) -> bool:
    if budget is None:
        return False
    return bool(
        (budget.tokens is not None and tokens >= budget.tokens)
        or (budget.cost_usd is not None and cost >= budget.cost_usd)
        or (budget.seconds is not None and seconds >= budget.seconds)
    )
