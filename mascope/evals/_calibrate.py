"""Verifier calibration: label every judged candidate against the ground truth, from the trace store.

Every verdict a verifier gives is a step; the candidate it judged is the
latest message before it in the same thread and sample. Against the run's
ground truth, scored the way the team scores its answers, each judged
candidate is right or wrong, and each verifier's false-positive rate
(accepted but wrong / wrong) and false-negative rate (rejected but right /
right) follow, with 95% Wilson intervals.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mascope.agents import Calibration, VerifierRates
from mascope.errors import ConfigError

if TYPE_CHECKING:
    from mascope.graphs import TeamSpec
    from mascope.jobs import BatchProgress
    from mascope.traces import Run, Step, TraceStore

    from ._tasks import EvalReport, EvalTask

_LIVE = ("running",)


@dataclass
class _Tally:
    right: int = 0
    wrong: int = 0
    accepted_wrong: int = 0
    rejected_right: int = 0
    by_task: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    """Per task: [right, judged]."""

    def add(self, task: str, right: bool, passed: bool) -> None:
        self.right += right
        self.wrong += not right
        self.accepted_wrong += passed and not right
        self.rejected_right += right and not passed
        counts = self.by_task[task]
        counts[0] += right
        counts[1] += 1

    def rates(self) -> VerifierRates:
        from mascope.diagnosis import wilson

        def rate(k: int, n: int) -> tuple[float | None, tuple[float, float] | None]:
            if not n:
                return None, None
            low, high = wilson(k, n)
            return round(k / n, 6), (round(low, 6), round(high, 6))

        total = self.right + self.wrong
        fpr, fpr_i = rate(self.accepted_wrong, self.wrong)
        fnr, fnr_i = rate(self.rejected_right, self.right)
        base, base_i = rate(self.right, total)
        return VerifierRates(
            candidates=total, right=self.right, wrong=self.wrong,
            accepted_wrong=self.accepted_wrong, rejected_right=self.rejected_right,
            fpr=fpr, fpr_interval=fpr_i, fnr=fnr, fnr_interval=fnr_i,
            base_rate=base, base_rate_interval=base_i,
            task_rates=[round(r / n, 6) for r, n in self.by_task.values() if n],
        )  # fmt: skip


def judged_candidates(steps: Sequence[Step]) -> Iterable[tuple[Step, str]]:
    """Each verdict step of a run with the candidate it judged.

    The candidate is the latest message before the verdict in the same
    thread and the same strategy sample (candidates drawn concurrently
    interleave their steps; each carries its sample index). Verdicts written
    by a fork's intervention judged nothing and are left out.
    """
    for at, step in enumerate(steps):
        data = step.data or {}
        if step.kind != "verdict" or data.get("intervention") or "passed" not in data:
            continue
        thread, sample = data.get("thread"), data.get("sample")
        for prev in reversed(steps[:at]):
            pdata = prev.data or {}
            if prev.kind != "message" or pdata.get("thread") != thread:
                continue
            if sample is not None and pdata.get("sample") != sample:
                continue
            yield step, prev.content
            break


def calibrate_runs(
    store: TraceStore,
    spec: TeamSpec,
    *,
    run_ids: Sequence[str] | None = None,
    score: Callable[[str, str], bool] | None = None,
    model: str | None = None,
) -> Calibration:
    """A calibration of `spec`'s verifiers from stored runs of that team with a ground truth.

    `run_ids` limits it to those runs (default: every finished run of the
    team whose stored spec is this team's, by `calibration_digest`, run with
    `model` or, without it, the team's own model). Forks and
    re-rolls are left out: their steps before the fork are their parent's.
    `score(answer, ground_truth)` labels a candidate (default: the team's own
    scoring). `model` is the model that replaced the team's own in those runs.
    """
    from mascope.graphs import Team, calibration_digest, parse_team

    digest = calibration_digest(spec)
    if score is None:
        team = Team.from_spec(spec, source=spec.name)

        def score(answer: str, truth: str) -> bool:
            return team.score(answer, truth).matched

    ids = list(run_ids) if run_ids is not None else store.all_run_ids(team=spec.name)
    same: dict[str | None, bool] = {}

    ran_with = model or spec.model

    def ours(run: Run) -> bool:
        if run_ids is not None:
            return True
        if (run.metadata_ or {}).get("model", spec.model) != ran_with:
            return False  # candidates of another model say little about these
        if run.spec_hash not in same:
            try:
                same[run.spec_hash] = calibration_digest(parse_team(dict(run.spec or {}))) == digest
            except ConfigError:
                same[run.spec_hash] = False
        return same[run.spec_hash]

    tallies: dict[str, _Tally] = defaultdict(_Tally)
    runs: int = 0
    tasks: set[str] = set()

    def wanted(r: Run) -> bool:
        return (
            r.ground_truth is not None
            and r.status not in _LIVE
            and r.parent_run_id is None
            and r.team == spec.name
            and ours(r)
        )

    for run, steps in store.runs_with_steps(ids, keep=wanted):
        truth = run.ground_truth or ""
        labelled = False
        for verdict, candidate in judged_candidates(steps):
            right = bool(score(candidate, truth))
            tallies[verdict.agent].add(run.task, right, bool((verdict.data or {}).get("passed")))
            labelled = True
        if labelled:
            runs += 1
            tasks.add(run.task)
    return Calibration(
        team=spec.name,
        team_digest=digest,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        model=model,
        source=str(store.path or "store"),
        runs=runs,
        tasks=len(tasks),
        verifiers={name: tally.rates() for name, tally in sorted(tallies.items())},
    )


def calibration_tasks(tasks: Sequence[EvalTask], samples: int) -> list[EvalTask]:
    """The tasks with a ground truth, each `samples` times (keys `ID#k` beyond the first)."""
    out: list[EvalTask] = []
    for t in tasks:
        if t.ground_truth is None:
            continue
        out += [t if k == 0 else replace(t, key=f"{t.key}#{k}") for k in range(samples)]
    return out


async def acalibrate(
    store: TraceStore,
    spec: TeamSpec,
    tasks: Sequence[EvalTask],
    *,
    samples: int = 1,
    model: str | None = None,
    source: str = "team",
    concurrency: int = 4,
    on_progress: Callable[[BatchProgress], None] | None = None,
) -> tuple[Calibration, EvalReport]:
    """Run the team (its strategies without calibration settings) on every task with a
    ground truth, `samples` times each, as an eval job, and calibrate from those runs."""
    from mascope.graphs import without_calibration
    from mascope.jobs import JobQueue

    from ._tasks import aeval_run

    plain = without_calibration(spec)
    runs_of = calibration_tasks(tasks, samples)
    report = await aeval_run(
        store, plain, runs_of, model=model, source=source, concurrency=concurrency,
        on_progress=on_progress,
    )  # fmt: skip
    states = JobQueue(store).states(report.job_id)
    ids = [str(s.result["run_id"]) for s in states.values() if s.result and s.result.get("run_id")]
    return calibrate_runs(store, plain, run_ids=ids, model=model), report


def check_calibratable(spec: TeamSpec, tasks: Sequence[EvalTask] | None) -> None:
    """Refuse, before anything runs, a team without verifiers or tasks without ground truth."""
    if not spec.verifiers:
        raise ConfigError(
            f"team {spec.name!r} has no verifiers to calibrate; add one under verifiers: and name it on a stage"
        )
    if tasks is not None and not any(t.ground_truth is not None for t in tasks):
        raise ConfigError(
            'no task in the task file has a ground truth; calibration labels candidates right or wrong against "ground_truth"'
        )


def calibration_summary(cal: Calibration) -> list[dict[str, Any]]:
    """One row per verifier: its counts, rates, intervals and whether it may drive a stopping rule."""
    rows = []
    for name, r in cal.verifiers.items():
        rows.append(
            {"verifier": name, **r.model_dump(mode="json", exclude={"task_rates"}), "insufficient": r.insufficient()}
        )  # fmt: skip
    return rows
