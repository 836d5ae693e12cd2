"""`mascope eval repair`: what each attribution method's diagnosis fixes.

A diagnosis is worth what it repairs. For each real failed run, every method
names a step (and, for some, what that step should have said); the run is
forked there with that correction and the rest of the team is re-run
`samples` times. The share of those re-runs that succeed is the method's
repair rate, set beside the baseline of re-running the whole team from
scratch as often: a diagnosis that does no better than trying again has not
helped.

How each method's answer becomes a repair:

- a method that proposes content (`reroll`: what the decisive step said in a
  re-roll that succeeded; `a2p` and `counterfactual`: the proposed correction)
  is applied as a fork at the blamed step with that content;
- a method that names a step but proposes no content (`all-at-once`,
  `step-by-step`, `binary-search`), or whose content cannot be applied there,
  is taken to mean "this step went wrong": the run is re-rolled from it (the
  steps before it kept, that step and the rest produced again live);
- a method that names no step (undecided, or its model's answer was
  unusable) leaves the user only the baseline: it is scored with the
  baseline's own re-runs from scratch.

Everything is recorded in the store: the generated runs (metadata
`repair_eval`), and, as child runs of each failed run, the methods' replays,
the repair forks and re-rolls and the re-runs from scratch (metadata
`repair`), so `mascope tui` shows them as branches. Each finished method's
outcome is kept in the failed run's metadata under `repair`, so an
evaluation that is killed and started again with the same store reuses the
generated runs and the finished outcomes instead of redoing them (a method
cut off midway is redone; its partial re-runs stay in the store).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mascope.diagnosis import aattribute, verdict_correction, wilson
from mascope.errors import ConfigError, MascopeError, did_you_mean
from mascope.models import ChatModel
from mascope.traces import Run, TraceStore

if TYPE_CHECKING:
    from mascope.diagnosis import AttributionResult
    from mascope.graphs import RunResult, Team

    from ._repair_tasks import RepairTask

METHODS = ("reroll", "counterfactual", "a2p", "all-at-once", "step-by-step", "binary-search")
NEEDS_MODEL = frozenset(METHODS) - {"reroll"}
WITH_CONTENT = frozenset({"reroll", "counterfactual", "a2p"})
"""Methods whose answer includes what the blamed step should have said."""
BASELINE = "from scratch"
LEDGER = "repair_eval"
"""Run metadata key of a generated attempt."""
OUTCOMES = "repair"
"""Run metadata key of the measured outcomes (on a failed run) or what a replay measures (on a child)."""


def parse_methods(text: str | None) -> list[str]:
    """`a2p,reroll` -> ["a2p", "reroll"]; None or `all` -> every method (the names are
    checked by `check_arguments`, as for a Python caller)."""
    if not text or text.strip() == "all":
        return list(METHODS)
    chosen = [m.strip() for m in text.split(",") if m.strip()]
    if not chosen:
        raise ConfigError(f"--methods is empty; choose from {', '.join(METHODS)} or all")
    return list(dict.fromkeys(chosen))


@dataclass
class Trial:
    """What `n` re-runs of one repair of one failed run measured."""

    how: str
    """`fork` (the blamed step replaced by the correction), `re-roll` (re-run from the
    blamed step) or `from scratch`."""
    step: int | None
    successes: int = 0
    n: int = 0
    run_ids: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"how": self.how, "step": self.step, "successes": self.successes, "n": self.n, "run_ids": self.run_ids}  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Trial:
        return cls(d["how"], d.get("step"), d["successes"], d["n"], list(d.get("run_ids", [])))


@dataclass
class Outcome:
    """One method on one failed run: its answer, what diagnosing cost, what its repair did."""

    method: str
    agent: str | None
    step: int | None
    content: str | None
    replays: int
    """Re-runs the method itself made to diagnose (reroll's re-rolls, counterfactual's forks)."""
    model_calls: int
    seconds: float
    """Wall time of the diagnosis (its replays included, the repair re-runs not)."""
    trial: Trial
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method, "agent": self.agent, "step": self.step, "content": self.content,
            "replays": self.replays, "model_calls": self.model_calls, "seconds": self.seconds,
            "trial": self.trial.as_dict(), "error": self.error,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Outcome:
        return cls(
            d["method"], d.get("agent"), d.get("step"), d.get("content"), d.get("replays", 0),
            d.get("model_calls", 0), d.get("seconds", 0.0), Trial.from_dict(d["trial"]), d.get("error"),
        )  # fmt: skip


def _add_tallies(into: dict[str, list[int]], more: dict[str, list[int]]) -> None:
    """Add `more`'s [successes, tries] per key into `into`."""
    for key, (ok, n) in more.items():
        tally = into.setdefault(key, [0, 0])
        tally[0] += ok
        tally[1] += n


@dataclass
class RepairScore:
    """A method's repair rate over the failed runs (or the baseline's)."""

    method: str
    runs: int = 0
    successes: int = 0
    trials: int = 0
    repaired_runs: int = 0
    """Failed runs with at least one successful re-run."""
    replays: list[int] = field(default_factory=list)
    model_calls: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    how: Counter[str] = field(default_factory=Counter)
    errors: int = 0
    by_shape: dict[str, list[int]] = field(default_factory=dict)
    """Shape -> [successful re-runs, re-runs]."""

    def add(self, shape: str, o: Outcome) -> None:
        self.runs += 1
        self.successes += o.trial.successes
        self.trials += o.trial.n
        self.repaired_runs += o.trial.successes > 0
        self.replays.append(o.replays)
        self.model_calls.append(o.model_calls)
        self.seconds.append(o.seconds)
        self.how[o.trial.how] += 1
        self.errors += o.error is not None
        tally = self.by_shape.setdefault(shape, [0, 0])
        tally[0] += o.trial.successes
        tally[1] += o.trial.n

    def merge(self, other: RepairScore) -> None:
        """Count in `other`: the same method on other failed runs (another seed or store)."""
        if other.method != self.method:
            raise ValueError(f"cannot count {other.method!r}'s score in {self.method!r}'s")
        self.runs += other.runs
        self.successes += other.successes
        self.trials += other.trials
        self.repaired_runs += other.repaired_runs
        self.replays += other.replays
        self.model_calls += other.model_calls
        self.seconds += other.seconds
        self.how.update(other.how)
        self.errors += other.errors
        _add_tallies(self.by_shape, other.by_shape)

    @property
    def rate(self) -> float | None:
        return self.successes / self.trials if self.trials else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method, "runs": self.runs, "successes": self.successes, "trials": self.trials,
            "repair_rate": self.rate, "ci": list(wilson(self.successes, self.trials)),
            "repaired_runs": self.repaired_runs,
            "replays_per_run": statistics.fmean(self.replays) if self.replays else None,
            "replays_median": statistics.median(self.replays) if self.replays else None,
            "model_calls_per_run": statistics.fmean(self.model_calls) if self.model_calls else None,
            "seconds_per_run": statistics.median(self.seconds) if self.seconds else None,
            "how": dict(self.how), "errors": self.errors,
            "by_shape": {k: (s / n if n else None) for k, (s, n) in sorted(self.by_shape.items())},
        }  # fmt: skip


@dataclass
class RepairEval:
    runs: int
    """Failed runs measured."""
    wanted: int
    attempts: int
    """Runs of the generated tasks made to collect the failed ones."""
    attempts_by_shape: dict[str, list[int]]
    """Shape -> [successes, attempts] of the generated runs (the teams' first-try success rate)."""
    baseline: RepairScore
    methods: list[RepairScore]
    samples: int
    temperature: float | None
    model: str | None
    seconds: float
    reused: int = 0
    """Generated runs and method outcomes taken from the store instead of redone."""
    interrupted: bool = False

    def merge(self, other: RepairEval) -> None:
        """Count in `other`: the same methods and settings on another seed, measured
        apart (in its own store, often at the same time: the wall time is the longer one)."""
        self.runs += other.runs
        self.wanted += other.wanted
        self.attempts += other.attempts
        self.seconds = max(self.seconds, other.seconds)
        self.reused += other.reused
        self.interrupted = self.interrupted or other.interrupted
        _add_tallies(self.attempts_by_shape, other.attempts_by_shape)
        for mine, theirs in zip(
            [*self.methods, self.baseline], [*other.methods, other.baseline], strict=True
        ):
            mine.merge(theirs)

    def times_baseline(self, score: RepairScore) -> float | None:
        """`score`'s repair rate as a multiple of re-running from scratch (None: no rate, or a zero baseline)."""
        if score.rate is None or not self.baseline.rate:
            return None
        return score.rate / self.baseline.rate

    def as_dict(self) -> dict[str, Any]:
        return {
            "runs": self.runs, "wanted": self.wanted, "attempts": self.attempts,
            "attempts_by_shape": self.attempts_by_shape, "samples": self.samples,
            "temperature": self.temperature, "model": self.model, "seconds": self.seconds,
            "reused": self.reused, "interrupted": self.interrupted,
            "baseline": self.baseline.as_dict(), "methods": [m.as_dict() for m in self.methods],
        }  # fmt: skip


# -- one repair ---------------------------------------------------------------------


def _node_position(store: TraceStore, run: Run, team: Team, step: int) -> int:
    """The step a re-roll re-runs the blamed step from: the first message or verdict of its node."""
    from mascope.diagnosis import reroll_positions

    found = reroll_positions(store, run, team)
    if not found:
        raise MascopeError(f"run {run.id} has no agent message or verdict to re-run from")
    inside = [p for p in found if p.start <= step]
    return (inside[-1] if inside else found[0]).step


async def _gather(
    make: Callable[[], Any], n: int, concurrency: int
) -> list[RunResult | BaseException]:
    gate = asyncio.Semaphore(concurrency)

    async def one() -> Any:
        async with gate:
            try:
                return await make()
            except (KeyboardInterrupt, asyncio.CancelledError):
                raise
            except Exception as exc:  # a crashed re-run is a failed re-run
                return exc

    return list(await asyncio.gather(*(one() for _ in range(n))))


def _tally(trial: Trial, results: Sequence[RunResult | BaseException]) -> Trial:
    for r in results:
        trial.n += 1
        if not isinstance(r, BaseException):
            trial.run_ids.append(r.run_id)
            trial.successes += r.status == "succeeded"
    return trial


async def abaseline(
    store: TraceStore, run_id: str, *, team: Team, samples: int, concurrency: int = 1
) -> Trial:
    """Re-run the failed run's team from scratch `samples` times (child runs of it)."""
    run = store.get_run(store.resolve_run_id(run_id))
    from mascope.diagnosis import reroll_positions

    found = reroll_positions(store, run, team)
    meta = {OUTCOMES: {"of": run.id, "method": BASELINE}}
    if found and found[0].start == 0:
        # A re-roll from the first node keeps nothing: a run from scratch, recorded as a branch.
        first = found[0].step
        results = await _gather(
            lambda: team.areroll(run.id, step=first, metadata=meta), samples, concurrency
        )
    else:
        results = await _gather(
            lambda: team.arun(run.task, ground_truth=run.ground_truth, metadata=meta),
            samples,
            concurrency,
        )
    return _tally(Trial(BASELINE, None), results)


async def arepair(
    store: TraceStore,
    run_id: str,
    *,
    team: Team,
    step: int,
    content: str | None,
    samples: int,
    method: str = "",
    concurrency: int = 1,
) -> Trial:
    """Repair a failed run as a diagnosis says, `samples` times: fork at `step` with
    `content` (None: re-roll from that step's node) and count the re-runs that succeed."""
    run = store.get_run(store.resolve_run_id(run_id))
    steps = {s.index: s for s in store.steps(run.id)}
    target = steps.get(step)
    if target is None:
        raise MascopeError(f"run {run.id} has no step {step}")
    meta = {OUTCOMES: {"of": run.id, "method": method, "step": step}}
    forkable = target.kind in ("message", "verdict") and target.checkpoint_id is not None
    if content is not None and content.strip() and forkable:
        text = verdict_correction(target, content)
        try:
            first = await team.afork(run.id, step=step, content=text)
        except MascopeError:
            pass  # a correction the step cannot take (say, a verdict it cannot parse): re-roll
        else:
            store.update_run_metadata(first.run_id, meta)
            trial = _tally(Trial("fork", step), [first])

            async def fork() -> RunResult:
                r = await team.afork(run.id, step=step, content=text)
                store.update_run_metadata(r.run_id, meta)
                return r

            return _tally(trial, await _gather(fork, samples - 1, concurrency))
    at = _node_position(store, run, team, step)
    results = await _gather(
        lambda: team.areroll(run.id, step=at, metadata=meta), samples, concurrency
    )
    return _tally(Trial("re-roll", at), results)


# -- one method on one failed run ------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """What decides the measurements (a stored outcome is reused only under the same)."""

    samples: int
    reroll_samples: int
    reroll_max_replays: int
    max_replays: int
    with_ground_truth: bool
    model: str | None
    concurrency: int

    def key(self, method: str) -> dict[str, Any]:
        """The settings an outcome of `method` depends on."""
        base: dict[str, Any] = {"samples": self.samples}
        if method == "reroll":
            base |= {
                "reroll_samples": self.reroll_samples,
                "reroll_max_replays": self.reroll_max_replays,
            }
        elif method in NEEDS_MODEL:
            base |= {"model": self.model, "with_ground_truth": self.with_ground_truth}
            if method == "counterfactual":
                base["max_replays"] = self.max_replays
        return base


async def _diagnose(
    store: TraceStore, run_id: str, method: str, team: Team, model: ChatModel | None, s: Settings
) -> AttributionResult:
    if method == "reroll":
        return await aattribute(
            store, run_id, method="reroll", team=team, samples=s.reroll_samples,
            max_replays=s.reroll_max_replays, concurrency=s.concurrency,
        )  # fmt: skip
    assert model is not None
    return await aattribute(
        store, run_id, method=method, model=model, team=team, max_replays=s.max_replays,
        with_ground_truth=s.with_ground_truth,
    )  # fmt: skip


async def _measure(
    store: TraceStore,
    run_id: str,
    method: str,
    team: Team,
    model: ChatModel | None,
    s: Settings,
    baseline: Trial,
) -> Outcome:
    t0 = time.perf_counter()
    try:
        result = await _diagnose(store, run_id, method, team, model, s)
    except MascopeError as exc:
        # An unusable answer names no step: the user can only try again.
        return Outcome(method, None, None, None, 0, 0, time.perf_counter() - t0, baseline, str(exc))
    seconds = time.perf_counter() - t0
    replays = result.replays_used if method == "reroll" else len(result.replays)
    content = result.intervention if method in WITH_CONTENT else None
    if result.step is None or result.decided is False:
        trial = baseline
    else:
        trial = await arepair(
            store, run_id, team=team, step=result.step, content=content, samples=s.samples,
            method=method, concurrency=s.concurrency,
        )  # fmt: skip
    return Outcome(
        method, result.agent, result.step, content, replays, result.model_calls, seconds, trial
    )


# -- the evaluation --------------------------------------------------------------------


def measured_runs(store: TraceStore, seed: int, methods: Sequence[str]) -> int:
    """How many of the store's failed runs of `seed` have an outcome for every one of
    `methods` and the baseline (they are measured in order, so these are the first ones)."""
    return sum(
        run.status == "failed"
        and all(m in ((run.metadata_ or {}).get(OUTCOMES) or {}) for m in [BASELINE, *methods])
        for run in _ledger(store, seed).values()
    )


def _ledger(store: TraceStore, seed: int) -> dict[int, Run]:
    """Finished generated runs of this seed already in the store, by task index."""
    out: dict[int, Run] = {}
    before: str | None = None
    while True:
        page = store.list_runs(before=before, limit=1000)
        for r in page:
            made = (r.metadata_ or {}).get(LEDGER) or {}
            if (
                r.parent_run_id is None
                and made.get("seed") == seed
                and r.status in ("succeeded", "failed", "error")
            ):
                out.setdefault(int(made["index"]), r)
        if len(page) < 1000:
            return out
        before = page[-1].id


def check_arguments(
    runs: int, samples: int, methods: Sequence[str], shapes: Sequence[str], temperature: float | None,
    reroll_samples: int, reroll_max_replays: int, max_attempts: int | None, concurrency: int,
) -> None:  # fmt: skip
    """A one-line ConfigError for the first argument out of range."""
    from ._repair_tasks import SHAPES

    for name, value in (("--runs", runs), ("--samples", samples), ("--reroll-samples", reroll_samples),
                        ("--reroll-max-replays", reroll_max_replays), ("--concurrency", concurrency)):  # fmt: skip
        if value < 1:
            raise ConfigError(f"{name} must be at least 1 (got {value})")
    if max_attempts is not None and max_attempts < runs:
        raise ConfigError(f"--max-attempts must be at least --runs ({runs}); got {max_attempts}")
    if not methods:
        raise ConfigError(f"no methods chosen; choose from {', '.join(METHODS)}")
    for m in methods:
        if m not in METHODS:
            raise ConfigError(
                f"unknown method {m!r}{did_you_mean(m, METHODS)}; choose from {', '.join(METHODS)}"
            )
    if not shapes:
        raise ConfigError(f"no team shapes chosen; choose from {', '.join(SHAPES)}")
    for shape in shapes:
        if shape not in SHAPES:
            raise ConfigError(
                f"unknown team shape {shape!r}{did_you_mean(shape, SHAPES)}; choose from {', '.join(SHAPES)}"
            )
    if temperature is not None and not 0 < temperature <= 2:
        raise ConfigError(
            f"--temperature must be above 0 and at most 2 (got {temperature:g}); at 0 nothing could be re-rolled"
        )


async def aevaluate_repair(
    *,
    runs: int,
    seed: int = 0,
    samples: int = 4,
    methods: Sequence[str] = METHODS,
    model: ChatModel | None = None,
    db: str | Path | None = None,
    shapes: Sequence[str] | None = None,
    temperature: float | None = None,
    reroll_samples: int = 4,
    reroll_max_replays: int = 16,
    max_replays: int = 3,
    max_attempts: int | None = None,
    with_ground_truth: bool = True,
    concurrency: int = 1,
    tasks: Iterable[RepairTask] | None = None,
    build: Callable[[str, TraceStore], Team] | None = None,
    on_run: Callable[[int, int], None] | None = None,
) -> RepairEval:
    """Measure every method's repair rate on `runs` failed runs, beside re-running from scratch.

    Tasks come from `seed` (`mascope.evals._repair_tasks`: arithmetic for the
    demo team and a solver-reviewer pipeline, function writing for
    planner-coder-tester) and are run once each until `runs` of them have
    failed (at most `max_attempts` runs, default 10 per failed run wanted).
    Each failed run is re-run from scratch `samples` times (the baseline), and
    each method diagnoses it and has its repair re-run `samples` times; see the
    module docstring for how an answer becomes a repair. `tasks` and `build`
    replace the generated tasks and teams (tests use deterministic teams).
    """
    from ._repair_tasks import DEFAULT_TEMPERATURE, SHAPES, build_team, make_tasks

    shapes = tuple(shapes or SHAPES)
    check_arguments(runs, samples, methods, shapes, temperature, reroll_samples, reroll_max_replays, max_attempts, concurrency)  # fmt: skip
    if any(m in NEEDS_MODEL for m in methods) and model is None:
        raise ConfigError(
            f"the methods {', '.join(m for m in methods if m in NEEDS_MODEL)} need a model; pass --model or choose only reroll"
        )
    temp = DEFAULT_TEMPERATURE if temperature is None else temperature
    source = iter(tasks) if tasks is not None else make_tasks(seed, shapes)
    make = build or (lambda shape, store: build_team(shape, store=store, temperature=temp))
    cap = max_attempts if max_attempts is not None else 10 * runs
    settings = Settings(
        samples, reroll_samples, reroll_max_replays, max_replays, with_ground_truth,
        model.model_id if model is not None else None, concurrency,
    )  # fmt: skip
    started = time.perf_counter()
    baseline = RepairScore(BASELINE)
    scores = {m: RepairScore(m) for m in methods}
    by_shape: dict[str, list[int]] = {}
    collected = attempts = reused = 0
    interrupted = False
    with contextlib.ExitStack() as stack:
        if db is None:
            db = (
                Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mascope-repair-")))
                / "repair.db"
            )
        store = TraceStore(db)
        stack.callback(store.close)
        store.recover_interrupted()
        done = _ledger(store, seed)
        teams: dict[str, Team] = {}
        try:
            for index, task in zip(itertools.count(), source, strict=False):
                if collected >= runs or attempts >= cap:
                    break
                attempts += 1
                team = teams.get(task.shape) or teams.setdefault(
                    task.shape, make(task.shape, store)
                )
                row = done.get(index)
                if row is not None and row.task == task.task:
                    reused += 1
                    run_id, status = row.id, row.status
                else:
                    made = {
                        LEDGER: {"seed": seed, "index": index, "task": task.id, "shape": task.shape}
                    }
                    r = await team.arun(task.task, ground_truth=task.ground_truth, metadata=made)
                    run_id, status = r.run_id, r.status
                tally = by_shape.setdefault(task.shape, [0, 0])
                tally[0] += status == "succeeded"
                tally[1] += 1
                if status != "failed":
                    continue  # a success has nothing to repair; a crash cannot be re-run
                reused += await _measure_run(
                    store, run_id, task.shape, team, model, settings, methods, baseline, scores
                )
                collected += 1
                if on_run is not None:
                    on_run(collected, runs)
        except asyncio.CancelledError:
            interrupted = True  # whole failed runs only are scored
    return RepairEval(
        runs=collected, wanted=runs, attempts=attempts, attempts_by_shape=by_shape,
        baseline=baseline, methods=list(scores.values()), samples=samples,
        temperature=temp if tasks is None else temperature,
        model=settings.model if any(m in NEEDS_MODEL for m in methods) else None,
        seconds=time.perf_counter() - started, reused=reused, interrupted=interrupted,
    )  # fmt: skip


async def _measure_run(
    store: TraceStore,
    run_id: str,
    shape: str,
    team: Team,
    model: ChatModel | None,
    s: Settings,
    methods: Sequence[str],
    baseline: RepairScore,
    scores: dict[str, RepairScore],
) -> int:
    """Baseline and every method on one failed run, reusing stored outcomes; returns how many were reused."""
    saved: dict[str, Any] = dict((store.get_run(run_id).metadata_ or {}).get(OUTCOMES) or {})
    reused = 0
    key = {"samples": s.samples}
    entry = saved.get(BASELINE)
    if entry is not None and entry.get("settings") == key:
        base = Trial.from_dict(entry["trial"])
        reused += 1
    else:
        base = await abaseline(
            store, run_id, team=team, samples=s.samples, concurrency=s.concurrency
        )
        saved[BASELINE] = {"settings": key, "trial": base.as_dict()}
        store.update_run_metadata(run_id, {OUTCOMES: saved})
    baseline.add(shape, Outcome(BASELINE, None, None, None, 0, 0, 0.0, base))
    for method in methods:
        entry = saved.get(method)
        if entry is not None and entry.get("settings") == s.key(method):
            outcome = Outcome.from_dict(entry["outcome"])
            reused += 1
        else:
            outcome = await _measure(store, run_id, method, team, model, s, base)
            saved[method] = {"settings": s.key(method), "outcome": outcome.as_dict()}
            store.update_run_metadata(run_id, {OUTCOMES: saved})
        scores[method].add(shape, outcome)
    return reused


def evaluate_repair(**kwargs: Any) -> RepairEval:
    """Sync twin of `aevaluate_repair` (same keyword arguments)."""
    from mascope._sync import run_sync

    return run_sync(lambda: aevaluate_repair(**kwargs), "evaluate_repair", "aevaluate_repair")


__all__ = [
    "BASELINE",
    "METHODS",
    "Outcome",
    "RepairEval",
    "RepairScore",
    "Trial",
    "abaseline",
    "aevaluate_repair",
    "arepair",
    "check_arguments",
    "evaluate_repair",
    "parse_methods",
]
