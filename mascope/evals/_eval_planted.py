"""`mascope eval planted`: attribution and labelling measured against planted faults.

Each case runs a working team once as it is (the reference, which must
succeed) and once with one fault injected (which must fail), through the real
runtime and trace store. The faulty agent, the step its faulty turn recorded
and the fault's MAST mode are the truth every method is scored against. With
a fault rate the fault fires with that probability each time its turn runs,
so the faulty team is run until a run fails (the failure a user would be
diagnosing).
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mascope.diagnosis import (
    Corrections,
    JudgeConfig,
    JudgeFn,
    aattribute,
    ajudge,
    apply_rules,
    detect,
    wilson,
)
from mascope.errors import ConfigError, MascopeError, did_you_mean
from mascope.models import ChatModel, ScriptedModel
from mascope.traces import Run, Step, TraceStore

from ._embedded import EmbeddedCase, make_embedded_cases, plant_embedded
from ._planted import Case, build_team, make_cases, stratified

if TYPE_CHECKING:
    from mascope.graphs import Team

ATTRIBUTION_METHODS = (
    "reroll",
    "counterfactual+reference",
    "counterfactual",
    "a2p",
    "all-at-once",
    "step-by-step",
    "binary-search",
)
LABELLERS = ("rules", "judge")
FAMILIES = ("function", "embedded")
"""Teams of deterministic function agents (`_planted`), or of embedded-model agents (`_embedded`)."""
EMBEDDED_CASES = 60
"""Cases of the embedded family without --limit."""
EMBEDDED_FAULT_RATE = 0.5
"""The embedded family's fault rate without --fault-rate (its faults are always stochastic)."""
CHOICES = ATTRIBUTION_METHODS + LABELLERS
NEEDS_MODEL = {"counterfactual", "a2p", "all-at-once", "step-by-step", "binary-search", "judge"}


@dataclass
class Planted:
    """One case run: its failed run, the reference run, and the truth."""

    case: Case | EmbeddedCase
    run_id: str
    reference_id: str
    agent: str
    step: int
    trace: list[Step]
    """The failed run's steps."""
    team: Team | None = None
    """The faulty team that ran it, when its fault draws (its re-runs keep drawing)."""
    attempts: int = 1
    """Runs of the faulty team until one failed."""


@dataclass
class AttributionScore:
    method: str
    n: int = 0
    step: int = 0
    agent: int = 0
    within_1: int = 0
    no_answer: int = 0
    verified: int = 0
    replays: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    by_fault: dict[str, list[int]] = field(default_factory=dict)
    """Fault kind -> [step hits, cases]."""

    def add(self, p: Planted, agent: str | None, step: int | None, seconds: float) -> None:
        self.n += 1
        hit = step == p.step
        self.step += hit
        self.agent += agent == p.agent
        self.within_1 += step is not None and abs(step - p.step) <= 1
        self.seconds.append(seconds)
        _tally(self.by_fault, p, hit)

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method, "n": self.n,
            "step_accuracy": _rate(self.step, self.n), "step_ci": list(wilson(self.step, self.n)),
            "agent_accuracy": _rate(self.agent, self.n), "agent_ci": list(wilson(self.agent, self.n)),
            "step_within_1": _rate(self.within_1, self.n), "no_answer": self.no_answer,
            "verified": self.verified if self.replays else None,
            "replays_per_run": statistics.fmean(self.replays) if self.replays else None,
            "replays_median": _median(self.replays),
            "seconds_per_run": _median(self.seconds),
            "step_accuracy_by_fault": {k: _rate(h, n) for k, (h, n) in sorted(self.by_fault.items())},
        }  # fmt: skip


@dataclass
class LabelScore:
    """How often a labeller marks the planted mode present (and with the planted step as evidence)."""

    labeller: str
    n: int = 0
    found: int = 0
    at_step: int = 0
    other_modes: int = 0
    no_answer: int = 0
    seconds: list[float] = field(default_factory=list)
    by_fault: dict[str, list[int]] = field(default_factory=dict)

    def add(self, p: Planted, modes: dict[str, list[int]], seconds: float) -> None:
        self.n += 1
        evidence = modes.get(p.case.fault.mode)
        self.found += evidence is not None
        self.at_step += evidence is not None and any(abs(s - p.step) <= 1 for s in evidence)
        self.other_modes += len(set(modes) - {p.case.fault.mode})
        self.seconds.append(seconds)
        _tally(self.by_fault, p, evidence is not None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "labeller": self.labeller, "n": self.n,
            "planted_mode_found": _rate(self.found, self.n), "found_ci": list(wilson(self.found, self.n)),
            "evidence_at_planted_step": _rate(self.at_step, self.n),
            "other_modes_per_run": self.other_modes / self.n if self.n else None, "no_answer": self.no_answer,
            "seconds_per_run": _median(self.seconds),
            "found_by_fault": {k: _rate(h, n) for k, (h, n) in sorted(self.by_fault.items())},
        }  # fmt: skip


@dataclass
class PlantedEval:
    cases: int
    model: str | None
    shapes: dict[str, int]
    faults: dict[str, int]
    not_decisive: list[str]
    attribution: list[AttributionScore]
    labelling: list[LabelScore]
    seconds: float
    baselines: list[AttributionScore] = field(default_factory=list)
    """Trivial answers for scale: always the first step; always the last message."""
    done: int = 0
    """Cases run (all of `total` unless interrupted)."""
    total: int = 0
    interrupted: bool = False
    """Cancelled part way (Ctrl-C): the scores cover the `done` cases only."""
    family: str = "function"
    skipped: dict[str, list[str]] = field(default_factory=dict)
    """Why cases had no failed run to score (embedded family), each with its case ids."""
    fault_free: tuple[int, int] = (0, 0)
    """Fault-free runs that succeeded, of those run (embedded family: the team's base success)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "family": self.family, "skipped": self.skipped,
            "fault_free": {"succeeded": self.fault_free[0], "runs": self.fault_free[1]},
            "cases": self.cases, "model": self.model, "shapes": self.shapes, "faults": self.faults,
            "not_decisive": self.not_decisive, "seconds": self.seconds,
            "attribution": [a.as_dict() for a in self.attribution],
            "labelling": [x.as_dict() for x in self.labelling],
            "baselines": [b.as_dict() for b in self.baselines],
            "done": self.done, "total": self.total, "interrupted": self.interrupted,
        }  # fmt: skip


def _rate(hits: int, n: int) -> float | None:
    return hits / n if n else None


def _median(xs: Sequence[float]) -> float | None:
    return statistics.median(xs) if xs else None


def _tally(by_fault: dict[str, list[int]], p: Planted, hit: bool) -> None:
    counts = by_fault.setdefault(p.case.fault.kind, [0, 0])
    counts[0] += hit
    counts[1] += 1


FAST = tuple(m for m in CHOICES if m not in NEEDS_MODEL and m != "reroll")
"""What runs when no methods are named: the methods that need no LLM (seconds, not hours).
reroll needs no LLM either, but only stochastic faults can be re-rolled."""


def parse_methods(text: str | None, *, stochastic: bool = False) -> list[str]:
    """`a2p,rules` -> ["a2p", "rules"]; None -> the fast methods (FAST, plus reroll when
    the faults are stochastic: a deterministic team cannot be re-rolled); `all` -> every one."""
    if not text:
        return [*FAST, "reroll"] if stochastic else list(FAST)
    if text.strip() == "all":
        return [m for m in CHOICES if stochastic or m != "reroll"]
    chosen = [m.strip() for m in text.split(",") if m.strip()]
    for m in chosen:
        if m not in CHOICES:
            raise ConfigError(
                f"unknown method {m!r}{did_you_mean(m, CHOICES)}; choose from {', '.join(CHOICES)}"
            )
    return chosen


def _turn_step(steps: Sequence[Step], agent: str, turn: int) -> Step:
    """The step that recorded the agent's `turn`-th message (or verdict)."""
    own = [s for s in steps if s.agent == agent and s.kind in ("message", "verdict")]
    return own[turn]


def reference_corrections(reference: Sequence[Step]) -> Corrections:
    """Corrections from the fault-free run: each agent's own words at the same turn.

    This isolates the replay search from the quality of proposed corrections:
    it says whether forking and re-running finds the decisive step when the
    right correction is on offer for every step.
    """
    known: dict[tuple[str, str, int], str] = {}
    seen: Counter[tuple[str, str]] = Counter()
    for s in reference:
        if s.kind in ("message", "verdict"):
            known[(s.agent, s.kind, seen[(s.agent, s.kind)])] = s.content
            seen[(s.agent, s.kind)] += 1

    async def propose(run: Run, steps: Sequence[Step]) -> list[tuple[int, str]]:
        counts: Counter[tuple[str, str]] = Counter()
        out: list[tuple[int, str]] = []
        for s in steps:
            if s.kind in ("message", "verdict"):
                key = (s.agent, s.kind, counts[(s.agent, s.kind)])
                counts[(s.agent, s.kind)] += 1
                if key in known:
                    out.append((s.index, known[key]))
        return out

    return propose


MAX_ATTEMPTS = 200
"""Runs of a team with a fault rate before giving up on seeing it fail."""


async def plant(store: TraceStore, case: Case) -> Planted | None:
    """Run the reference and the faulty team; None when the fault did not make the run fail."""
    n = len(case.numbers)
    reference = await build_team(case.shape, n_numbers=n, fault=None, store=store).arun(
        case.task, ground_truth=case.ground_truth
    )
    if reference.status != "succeeded":
        raise MascopeError(
            f"planted case {case.id}: the fault-free team failed ({reference.termination_reason})"
        )
    team = build_team(case.shape, n_numbers=n, fault=case.fault, store=store)
    most = 1 if case.fault.rate is None else MAX_ATTEMPTS
    attempt = 0
    while attempt < most:
        attempt += 1
        result = await team.arun(case.task, ground_truth=case.ground_truth)
        if result.status != "succeeded":
            break
    else:
        return None
    steps = store.steps(result.run_id)
    truth = _turn_step(steps, case.fault.agent, case.fault.turn)
    return Planted(
        case, result.run_id, reference.run_id, truth.agent, truth.index, steps,
        team=team if case.fault.rate is not None else None, attempts=attempt,
    )  # fmt: skip


async def aevaluate_planted(
    *,
    methods: Sequence[str],
    model: ChatModel | None,
    limit: int | None = None,
    seed: int = 0,
    max_replays: int = 5,
    with_ground_truth: bool = True,
    db: str | Path | None = None,
    on_case: Callable[[int, int], None] | None = None,
    fault_rate: float | None = None,
    samples: int | None = None,
    reroll_replays: int | None = None,
    concurrency: int = 4,
    family: str = "function",
    team_model: str | ChatModel = "local",
    judge: JudgeFn = ajudge,
) -> PlantedEval:
    """Run the planted-failure benchmark with `methods` (see CHOICES).

    `fault_rate` makes every fault fire with that probability each time its
    turn runs; `samples`, `reroll_replays` and `concurrency` tune `reroll`.
    `family="embedded"` plants faults in teams of `team_model` agents instead
    (fault rate EMBEDDED_FAULT_RATE unless given; `limit` cases, EMBEDDED_CASES by default).
    The `judge` labeller calls `judge` (default `mascope.diagnosis.ajudge`, whose
    signature it has), to wrap or replay the judge's answers.
    """
    if family not in FAMILIES:
        raise ConfigError(
            f"unknown family {family!r}{did_you_mean(family, FAMILIES)}; choose from {', '.join(FAMILIES)}"
        )
    if fault_rate is not None and not 0 < fault_rate < 1:
        raise ConfigError(f"--fault-rate must be above 0 and below 1 (got {fault_rate:g})")
    if any(m in NEEDS_MODEL for m in methods) and model is None:
        raise ConfigError(
            "the LLM methods need a model; pass --model or choose only rules/counterfactual+reference"
        )
    cases: Sequence[Case | EmbeddedCase] = (
        make_embedded_cases(
            n=limit or EMBEDDED_CASES,
            seed=seed,
            fault_rate=EMBEDDED_FAULT_RATE if fault_rate is None else fault_rate,
        )
        if family == "embedded"
        else stratified(make_cases(seed=seed, fault_rate=fault_rate), limit)
    )
    skipped: dict[str, list[str]] = {}
    fault_free = [0, 0]
    reroll = {"samples": samples, "max_replays": reroll_replays, "concurrency": concurrency}
    started = time.perf_counter()
    scores = {m: AttributionScore(m) for m in methods if m in ATTRIBUTION_METHODS}
    labels = {m: LabelScore(m) for m in methods if m in LABELLERS}
    not_decisive: list[str] = []
    first, last = AttributionScore("always step 0"), AttributionScore("always the last message")
    done = 0
    interrupted = False
    with tempfile.TemporaryDirectory(prefix="mascope-planted-") as tmp:
        store = TraceStore(db or Path(tmp) / "planted.db")
        try:
            for i, case in enumerate(cases):
                done = i
                if isinstance(case, EmbeddedCase):
                    planted = await _plant_embedded(
                        store, case, team_model, seed * 100_003 + i, skipped, fault_free
                    )
                else:
                    planted = await plant(store, case)
                if planted is None:
                    not_decisive.append(case.id)
                else:
                    steps = planted.trace
                    first.add(planted, steps[0].agent, 0, 0.0)
                    final = [x for x in steps if x.kind == "message"][-1]
                    last.add(planted, final.agent, final.index, 0.0)
                    await _score_case(
                        store, planted, scores, labels, model, max_replays, with_ground_truth,
                        save=db is not None, reroll=reroll, judge=judge,
                    )  # fmt: skip
                done = i + 1
                if on_case is not None:
                    on_case(done, len(cases))
        except asyncio.CancelledError:
            # A case cut off midway may have scored some methods: drop none of
            # them, but count only whole cases as done.
            interrupted = True
        finally:
            store.close()
    if model is not None:
        await model.aclose()
    return PlantedEval(
        cases=done - len(not_decisive),
        model=model.model_id
        if model is not None and any(m in NEEDS_MODEL for m in methods)
        else None,
        shapes=dict(Counter(c.shape for c in cases[:done])),
        faults=dict(Counter(c.fault.kind for c in cases[:done])),
        not_decisive=not_decisive,
        attribution=list(scores.values()),
        labelling=list(labels.values()),
        seconds=time.perf_counter() - started,
        baselines=[first, last],
        done=done,
        total=len(cases),
        interrupted=interrupted,
        family=family,
        skipped=skipped,
        fault_free=(fault_free[0], fault_free[1]),
    )


async def _plant_embedded(
    store: TraceStore,
    case: EmbeddedCase,
    model: str | ChatModel,
    seed: int,
    skipped: dict[str, list[str]],
    fault_free: list[int],
) -> Planted | None:
    """A case of the embedded family, or None (with the reason in `skipped`)."""
    got = await plant_embedded(store, case, model=model, seed=seed)
    fault_free[0] += got.reference_ok
    fault_free[1] += 1
    if got.skipped is not None or got.run_id is None or got.step is None:
        skipped.setdefault(got.skipped or "no failed run", []).append(case.id)
        return None
    return Planted(
        case, got.run_id, got.reference_id, case.fault.agent, got.step, store.steps(got.run_id),
        team=got.team, attempts=got.attempts,
    )  # fmt: skip


async def _score_case(
    store: TraceStore,
    p: Planted,
    scores: dict[str, AttributionScore],
    labels: dict[str, LabelScore],
    model: ChatModel | None,
    max_replays: int,
    with_truth: bool,
    *,
    save: bool,
    reroll: dict[str, Any] | None = None,
    judge: JudgeFn = ajudge,
) -> None:
    """Score one case; with `save`, its attributions and labels are kept in the store."""
    case = p.case
    if p.team is not None:
        team = p.team
    else:
        assert isinstance(case, Case)  # an embedded case always keeps the team that ran it
        team = build_team(case.shape, n_numbers=len(case.numbers), fault=case.fault, store=store)
    for method, score in scores.items():
        t0 = time.perf_counter()
        if method == "reroll":
            try:
                result = await aattribute(
                    store, p.run_id, method="reroll", team=team, save=save, **(reroll or {})
                )
            except MascopeError:
                score.no_answer += 1
                score.add(p, None, None, time.perf_counter() - t0)
                continue
            score.add(p, result.agent, result.step, time.perf_counter() - t0)
            score.no_answer += not result.decided
            score.replays.append(result.replays_used)
            score.verified += bool(result.verified)
            continue
        reference = (
            reference_corrections(store.steps(p.reference_id))
            if method == "counterfactual+reference"
            else None
        )
        try:
            result = await aattribute(
                store, p.run_id, method="counterfactual" if reference else method,
                model=model if model is not None else ScriptedModel([]), with_ground_truth=with_truth,
                team=team, max_replays=max_replays, corrections=reference, save=save,
            )  # fmt: skip
        except MascopeError:
            score.no_answer += 1
            score.add(p, None, None, time.perf_counter() - t0)
            continue
        score.add(p, result.agent, result.step, time.perf_counter() - t0)
        if result.method == "counterfactual":
            score.replays.append(len(result.replays))
            score.verified += bool(result.verified)
    run = store.get_run(p.run_id)
    for labeller, lscore in labels.items():
        t0 = time.perf_counter()
        found: dict[str, list[int]] = {}
        if labeller == "rules":
            for f in apply_rules(store, p.run_id) if save else detect(run, p.trace):
                found.setdefault(f.mode, []).extend(f.evidence_steps)
        else:
            assert model is not None
            try:
                judged = await judge(
                    store, p.run_id, model=model, save=save,
                    config=JudgeConfig(model=model.model_id, with_ground_truth=with_truth),
                )  # fmt: skip
            except MascopeError:
                lscore.no_answer += 1
            else:
                found = {m: r.evidence_steps for m, r in judged.modes.items() if r.present}
        lscore.add(p, found, time.perf_counter() - t0)
