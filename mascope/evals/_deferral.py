"""Choosing a draft_defer stage's tau from recorded runs with a known answer.

Each deferral event of a stage is one record: the draft's score, whether the
draft was right and, when the stage deferred, whether the strong agent was
right. A tau defers exactly the records scoring below it, so its accuracy is
known from the record only when every record it would defer was deferred when
it ran; record calibration runs at `tau: 1` and every tau can be evaluated.
The chosen tau is the most accurate one within the deferral rate allowed
(ties: fewer deferrals). Nothing is assumed about the strong agent on tasks it
never answered: taus that would need that are shown as not evaluable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mascope._vocabulary import is_event
from mascope.diagnosis import wilson
from mascope.errors import ConfigError
from mascope.graphs import PipelineSpec, Team
from mascope.traces import TraceStore

MIN_RECORDS = 10
"""Fewer records than this and the choice is reported as unreliable."""


@dataclass
class DeferralRecord:
    """One recorded pass through a draft_defer stage, scored against the run's ground truth."""

    run_id: str
    score: float
    draft_correct: bool
    strong_correct: bool | None
    """None when the stage kept the draft: the strong agent never answered."""
    strong_tokens: int = 0
    strong_cost_usd: float = 0.0


@dataclass
class TauPoint:
    """What one threshold would have done on the records."""

    tau: float
    deferred: int
    records: int
    correct: int | None
    """Right answers under this tau; None when it needs a strong answer never recorded."""
    strong_tokens: int = 0
    strong_cost_usd: float = 0.0

    @property
    def deferral_rate(self) -> float:
        """Share of records this tau defers."""
        return self.deferred / self.records

    @property
    def accuracy(self) -> float | None:
        """Share of records answered right under this tau (None when not evaluable)."""
        return None if self.correct is None else self.correct / self.records

    @property
    def interval(self) -> tuple[float, float] | None:
        """95% Wilson interval of the accuracy."""
        return None if self.correct is None else wilson(self.correct, self.records)


@dataclass
class TauCalibration:
    """Every candidate tau on the records, and the one chosen."""

    stage: int
    node: str
    records: list[DeferralRecord]
    points: list[TauPoint]
    chosen: TauPoint | None
    max_deferral_rate: float
    skipped: dict[str, int] = field(default_factory=dict)
    """Events left out, by reason (no ground truth, answer step missing, another drafter)."""

    @property
    def reliable(self) -> bool:
        """Enough records to say anything (at least MIN_RECORDS)."""
        return len(self.records) >= MIN_RECORDS


def draft_defer_stage(team: Team, stage: int | None, *, source: str) -> tuple[int, Any]:
    """The index and spec of the team's draft_defer stage (`stage`, or its only one)."""
    top = team.spec.topology
    stages = top.stage_list() if isinstance(top, PipelineSpec) else []
    found = [i for i, s in enumerate(stages) if s.strategy.kind == "draft_defer"]
    if not found:
        raise ConfigError(
            f"{source}: no pipeline stage has strategy kind draft_defer; nothing to calibrate"
        )
    if stage is None:
        if len(found) > 1:
            raise ConfigError(
                f"--stage: {source} has draft_defer stages {', '.join(map(str, found))}; pick one with --stage"
            )
        stage = found[0]
    if stage not in found:
        raise ConfigError(
            f"--stage: stage {stage} of {source} is not a draft_defer stage; its draft_defer stages are {', '.join(map(str, found))}"
        )
    return stage, stages[stage]


def deferral_records(
    store: TraceStore, team: Team, stage: int, spec: Any
) -> tuple[list[DeferralRecord], dict[str, int]]:
    """Every recorded pass through the stage, in finished runs of the team with a ground truth."""
    node = f"stage{stage}.{spec.agent}"
    records: list[DeferralRecord] = []
    skipped: dict[str, int] = {}

    def skip(reason: str) -> None:
        skipped[reason] = skipped.get(reason, 0) + 1

    finished = store.runs_with_steps(
        store.all_run_ids(team=team.name), keep=lambda r: r.status in ("succeeded", "failed")
    )
    for run, ordered in finished:
        steps = {s.index: s for s in ordered}
        for s in steps.values():
            data = s.data or {}
            if not is_event(s.kind, data, "deferral") or data.get("node") != node:
                continue
            if run.ground_truth is None:
                skip("run has no ground truth")
                continue
            if data.get("drafter") != spec.strategy.drafter:
                skip("another drafter")
                continue
            # Trace data is untrusted (runs can be imported): use only what has the right type.
            draft_at, strong_at = data.get("draft_step"), data.get("strong_step")
            draft = steps.get(draft_at) if isinstance(draft_at, int) else None
            strong = steps.get(strong_at) if isinstance(strong_at, int) else None
            score = data.get("score")
            if (
                draft is None
                or (data.get("deferred") is True and strong is None)
                or not isinstance(score, int | float)
            ):
                skip("answer step missing")
                continue
            truth = run.ground_truth
            tokens, cost = data.get("strong_tokens"), data.get("strong_cost_usd")
            records.append(
                DeferralRecord(
                    run.id, float(score), team.score(draft.content, truth).matched,
                    team.score(strong.content, truth).matched if strong is not None else None,
                    tokens if isinstance(tokens, int) else 0,
                    float(cost) if isinstance(cost, int | float) else 0.0,
                )
            )  # fmt: skip
    return records, skipped


def tau_points(records: list[DeferralRecord]) -> list[TauPoint]:
    """Each distinct deferral decision: tau 0, every recorded score, and 1 (the lowest that defers each set)."""
    points: list[TauPoint] = []
    for tau in sorted({0.0, 1.0, *(r.score for r in records)}):
        deferred = [r for r in records if r.score < tau]
        if points and points[-1].deferred == len(deferred):
            continue  # defers the same drafts as the lower tau already listed
        known = all(r.strong_correct is not None for r in deferred)
        correct = (
            sum(bool(r.strong_correct) for r in deferred)
            + sum(r.draft_correct for r in records if r.score >= tau)
            if known
            else None
        )
        points.append(
            TauPoint(
                tau, len(deferred), len(records), correct,
                sum(r.strong_tokens for r in deferred), sum(r.strong_cost_usd for r in deferred),
            )
        )  # fmt: skip
    return points


def choose_tau(points: list[TauPoint], max_deferral_rate: float) -> TauPoint | None:
    """The most accurate evaluable tau deferring at most `max_deferral_rate` (ties: fewer deferrals)."""
    allowed = [
        p for p in points if p.correct is not None and p.deferral_rate <= max_deferral_rate + 1e-12
    ]
    if not allowed:
        return None
    return max(allowed, key=lambda p: (p.correct or 0, -p.deferred, -p.tau))


def calibrate_tau(
    store: TraceStore,
    team: Team,
    *,
    stage: int | None = None,
    max_deferral_rate: float = 1.0,
    source: str = "team",
) -> TauCalibration:
    """Pick a tau for the team's draft_defer stage from its recorded runs (see the module docstring)."""
    if not 0 <= max_deferral_rate <= 1:
        raise ConfigError(
            f"--max-deferral-rate: must be between 0 and 1, got {max_deferral_rate}; e.g. 0.3 defers at most 30% of drafts"
        )
    index, spec = draft_defer_stage(team, stage, source=source)
    records, skipped = deferral_records(store, team, index, spec)
    points = tau_points(records) if records else []
    return TauCalibration(
        index, f"stage{index}.{spec.agent}", records, points,
        choose_tau(points, max_deferral_rate), max_deferral_rate, skipped,
    )  # fmt: skip
