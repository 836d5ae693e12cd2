"""Verifier calibration files, and the expected-utility rule that picks n or abstains.

A calibration file (written by `mascope verifiers calibrate`) holds, for each
verifier of one team, how often it accepted wrong candidates (false-positive
rate) and rejected right ones (false-negative rate), with 95% Wilson
intervals, and how often one draw was right (the base rate). A strategy with
`penalty` and `calibration` uses them to choose how many candidates to draw
and whether answering pays at all (see `expected_utility`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mascope._files import write_atomically
from mascope.errors import ConfigError

CALIBRATION_KIND = "mascope.verifier-calibration"
MIN_LABELLED = 10
"""Fewest right and fewest wrong judged candidates a verifier needs to drive a stopping rule."""
MAX_INTERVAL_WIDTH = 0.5
"""Widest 95% interval of the false-positive or false-negative rate that may drive a stopping rule."""


class VerifierRates(BaseModel):
    """One verifier's measured error rates over the candidates it judged."""

    model_config = ConfigDict(extra="forbid")

    candidates: int = Field(ge=0)
    right: int = Field(ge=0)
    """Judged candidates that matched the ground truth."""
    wrong: int = Field(ge=0)
    accepted_wrong: int = Field(ge=0)
    """False positives: wrong candidates the verifier passed."""
    rejected_right: int = Field(ge=0)
    """False negatives: right candidates the verifier failed."""
    fpr: float | None
    """accepted_wrong / wrong (None without wrong candidates)."""
    fpr_interval: tuple[float, float] | None
    fnr: float | None
    """rejected_right / right (None without right candidates)."""
    fnr_interval: tuple[float, float] | None
    base_rate: float | None
    """right / candidates: how often one draw is right."""
    base_rate_interval: tuple[float, float] | None
    task_rates: list[float] = Field(default_factory=list)
    """Per task, the share of its judged candidates that were right (how hard each task was)."""

    def insufficient(self) -> str | None:
        """Why these rates cannot drive a stopping rule (None when they can)."""
        if self.right < MIN_LABELLED or self.wrong < MIN_LABELLED:
            return (
                f"{self.right} right and {self.wrong} wrong judged candidates "
                f"(at least {MIN_LABELLED} of each are needed)"
            )
        for name, interval in (("FPR", self.fpr_interval), ("FNR", self.fnr_interval)):
            if interval is not None and interval[1] - interval[0] > MAX_INTERVAL_WIDTH:
                return f"its {name} interval [{interval[0]:.2f}, {interval[1]:.2f}] is wider than {MAX_INTERVAL_WIDTH}"
        return None


class Calibration(BaseModel):
    """A calibration file: one team's verifiers and their measured rates."""

    model_config = ConfigDict(extra="forbid")

    kind: str = CALIBRATION_KIND
    version: int = 1
    team: str
    team_digest: str
    """Digest of the team spec without its strategies' calibration settings (see `calibration_digest`)."""
    created_at: str
    model: str | None = None
    """The model that replaced the team's own (`--model`) in the labelled runs; None for the team's own."""
    source: str = ""
    """Where the labelled candidates came from (the store)."""
    runs: int = Field(ge=0)
    """Runs with ground truth whose verdicts were labelled."""
    tasks: int = Field(ge=0)
    verifiers: dict[str, VerifierRates]

    def write(self, path: Path) -> None:
        """Write the file whole, so a failure leaves no half file."""
        text = json.dumps(self.model_dump(mode="json"), indent=2) + "\n"
        write_atomically(path, lambda fh: fh.write(text))


def read_calibration(
    path: str | Path, *, team: str, digest: str, model: str | None = None
) -> Calibration:
    """A calibration file, refused with one line unless it was made for this team (run with `model`)."""
    path = Path(path)
    try:
        data: Any = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(
            f"calibration file {path} not found; make it with: mascope verifiers calibrate TEAM.yaml --tasks TASKS.jsonl"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(
            f"calibration file {path} is not readable JSON ({exc}); calibrate again"
        ) from None
    if not isinstance(data, dict) or data.get("kind") != CALIBRATION_KIND:
        raise ConfigError(f"{path} is not a mascope verifier calibration file; calibrate again")
    try:
        cal = Calibration.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(
            f"calibration file {path}: field {where}: {first['msg']}; calibrate again"
        ) from None
    if cal.team != team or cal.team_digest != digest:
        what = f"team {cal.team!r}" if cal.team != team else f"another version of team {team!r}"
        raise ConfigError(
            f"calibration file {path} was made for {what} (digest {cal.team_digest}, this team's is {digest}); "
            f"calibrate this team: mascope verifiers calibrate TEAM.yaml --tasks TASKS.jsonl --out {path}"
        )
    if cal.model != model:
        ran, runs = cal.model or "the team's own models", model or "the team's own models"
        raise ConfigError(
            f"calibration file {path} measured the verifiers with {ran}, but this team runs with {runs}; "
            f"calibrate with the same --model: mascope verifiers calibrate TEAM.yaml --tasks TASKS.jsonl --out {path}"
        )
    return cal


def usable_rates(cal: Calibration, verifier: str, path: str | Path) -> VerifierRates:
    """The verifier's rates, refused with one line when there are too few labelled candidates."""
    rates = cal.verifiers.get(verifier)
    if rates is None:
        raise ConfigError(
            f"calibration file {path} has no verdicts of verifier {verifier!r}; calibrate a team whose stages use it"
        )
    why = rates.insufficient()
    if why is not None:
        shown = f"FPR {_rate(rates.fpr, rates.fpr_interval)}, FNR {_rate(rates.fnr, rates.fnr_interval)}"
        raise ConfigError(
            f"calibration file {path}: verifier {verifier!r} has too few labelled candidates to drive a stopping rule "
            f"({why}; {shown}); calibrate on more tasks or with more --samples"
        )
    return rates


def _rate(value: float | None, interval: tuple[float, float] | None) -> str:
    if value is None or interval is None:
        return "unknown"
    return f"{value:.2f} [{interval[0]:.2f}, {interval[1]:.2f}]"


def expected_utility(
    n: int,
    *,
    base_rates: Sequence[float],
    fpr: float,
    fnr: float,
    penalty: float,
    sample_cost: float = 0.0,
) -> float:
    """Expected utility of drawing up to `n` candidates and answering with the first that passes.

    With p the chance that one draw is right, a = 1 - fnr the chance the
    verifier passes a right candidate and f = fpr the chance it passes a wrong
    one, each draw ends the search with a right answer (gain 1) with
    probability p*a, with a wrong one (gain -penalty) with probability
    (1-p)*f, and otherwise leads to the next draw (q = 1 - p*a - (1-p)*f);
    every draw made costs `sample_cost`, and when none of the n passes the run
    abstains (gain 0). Draw k is made only when the k-1 before it all failed, so

        EU_p(n) = (p*a - penalty*(1-p)*f - sample_cost) * (1 + q + ... + q^(n-1)).

    Tasks differ in p: with the per-task rates p_1..p_T measured by
    calibration, EU(n) is the mean of EU_p(n) over them. For one p, EU is
    monotone in n; over a mix of easy and hard tasks, later draws mostly
    happen on hard tasks, where an accepted answer is more often wrong, so the
    best n can be small (Stroebl et al. 2024, "Inference Scaling fLaws").
    """
    if n < 0 or not base_rates:
        raise ValueError("expected_utility needs n >= 0 and at least one base rate")
    total = 0.0
    accept_right = 1.0 - fnr
    for p in base_rates:
        gain = p * accept_right - penalty * (1.0 - p) * fpr - sample_cost
        q = 1.0 - p * accept_right - (1.0 - p) * fpr
        total += gain * sum(q**k for k in range(n))
    return total / len(base_rates)


@dataclass(frozen=True)
class DrawPlan:
    """How many candidates to draw, or to abstain without drawing."""

    n: int
    """Draws that maximise expected utility (1..the strategy's n)."""
    utility: float
    """Expected utility of drawing `n` (below 0: abstaining, worth 0, is better)."""
    fpr: float
    fnr: float
    base_rate: float

    @property
    def abstain(self) -> bool:
        return self.utility < 0


def plan_draws(
    rates: VerifierRates, *, max_n: int, penalty: float, sample_cost: float = 0.0
) -> DrawPlan:
    """The n in 1..max_n with the highest expected utility (the smallest n on ties)."""
    base = rates.task_rates or [rates.base_rate or 0.0]
    fpr, fnr = rates.fpr or 0.0, rates.fnr or 0.0
    best_n, best = 1, float("-inf")
    for n in range(1, max_n + 1):
        eu = expected_utility(
            n, base_rates=base, fpr=fpr, fnr=fnr, penalty=penalty, sample_cost=sample_cost
        )
        if eu > best + 1e-12:
            best_n, best = n, eu
    return DrawPlan(best_n, best, fpr, fnr, rates.base_rate or 0.0)
