"""A team over a dataset of tasks: a JSONL task file, the `run-task` work, and the eval's report.

Each task is one item of a job in the store (`eval-<hash>` of the team, its
model and the tasks), so a killed eval resumes without redoing finished tasks
and several workers can share one. Every task is a recorded run; the item's
result (its run, whether it succeeded, tokens and cost) is committed with the
item's completion.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mascope._safeload import Limits, loads_json, read_text
from mascope.errors import ConfigError, did_you_mean
from mascope.jobs import (
    FAILED_STATUSES,
    LEASE_S,
    BatchProgress,
    BatchReport,
    BuiltWork,
    Claimed,
    JobQueue,
    Limiter,
    Outcome,
    build_work,
    register_work,
    run_job,
)

if TYPE_CHECKING:
    from mascope.graphs import TeamSpec
    from mascope.traces import TraceStore

TASK_FILE_LIMITS = Limits(max_bytes=256 * 1024 * 1024)
_TASK_FIELDS = ("task", "input")
_TRUTH_FIELDS = ("ground_truth", "expect", "target")
_FIELDS = (*_TASK_FIELDS, *_TRUTH_FIELDS, "id", "metadata")
_SHAPE = (
    'each line is {"id": ..., "task": "...", "ground_truth": "..."} (id and ground_truth optional)'
)


@dataclass(frozen=True)
class EvalTask:
    """One task of a dataset: what to ask, the right answer if known, and where it came from."""

    key: str
    """The task's id in the job: its `id`, or `line-N` for a line without one."""
    task: str
    ground_truth: str | None
    line: int
    metadata: dict[str, Any] = field(default_factory=dict)


def load_tasks(path: str | Path) -> list[EvalTask]:
    """Tasks from a JSONL file, one JSON object a line (blank lines skipped).

    A malformed line is a one-line `ConfigError` naming the file and the line,
    raised before anything runs.
    """
    path = Path(path)
    text = read_text(path, what="task file", limits=TASK_FILE_LIMITS)
    tasks: list[EvalTask] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        where = f"{path} line {number}"
        try:
            # Bounded like every other file mascope reads: a deeply nested line is a
            # one-line error, not a RecursionError out of the JSON parser.
            data = loads_json(raw, source=where, limits=TASK_FILE_LIMITS)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{where}: not valid JSON ({exc.msg}); {_SHAPE}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: expected a JSON object, got {_kind(data)}; {_SHAPE}")
        task = _parse_task(data, where, number)
        if task.key in seen:
            raise ConfigError(
                f"{where}: id {task.key!r} repeats the id of line {seen[task.key]}; give each task its own id"
            )
        seen[task.key] = number
        tasks.append(task)
    if not tasks:
        raise ConfigError(f"task file {path} holds no tasks; {_SHAPE}")
    return tasks


def _parse_task(data: dict[str, Any], where: str, number: int) -> EvalTask:
    for name in data:
        if name not in _FIELDS:
            raise ConfigError(
                f"{where}: unknown field {name!r}{did_you_mean(name, _FIELDS)}; {_SHAPE}"
            )
    given = [f for f in _TASK_FIELDS if f in data]
    if not given:
        raise ConfigError(f'{where}: no "task" field; {_SHAPE}')
    truths = [f for f in _TRUTH_FIELDS if f in data]
    if len(given) > 1 or len(truths) > 1:
        both = given if len(given) > 1 else truths
        raise ConfigError(f"{where}: both {both[0]!r} and {both[1]!r}; give one")
    task = data[given[0]]
    if not isinstance(task, str) or not task.strip():
        raise ConfigError(f'{where}: "{given[0]}" must be a non-empty string')
    truth = data.get(truths[0]) if truths else None
    if truth is not None:
        if isinstance(truth, bool) or not isinstance(truth, str | int | float):
            raise ConfigError(
                f'{where}: "{truths[0]}" must be a string or a number, not {_kind(truth)}'
            )
        truth = str(truth)
    ident = data.get("id")
    if ident is not None and (
        isinstance(ident, bool) or not isinstance(ident, str | int) or not str(ident).strip()
    ):
        raise ConfigError(f'{where}: "id" must be a non-empty string or an integer')
    metadata = data.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise ConfigError(f'{where}: "metadata" must be an object')
    key = str(ident) if ident is not None else f"line-{number:06d}"
    return EvalTask(key, task, truth, number, metadata)


def _kind(value: Any) -> str:
    return {list: "a list", dict: "an object", str: "a string", bool: "a boolean"}.get(
        type(value), "null" if value is None else "a number"
    )


def eval_job_id(spec: TeamSpec, model: str | None, tasks: Sequence[EvalTask]) -> str:
    """The job of this team (with this model) over these tasks: the same command resumes it."""
    digest = hashlib.sha256()
    digest.update(json.dumps([spec.hash(), model]).encode())
    for t in tasks:
        digest.update(json.dumps([t.key, t.task, t.ground_truth]).encode())
    return f"eval-{digest.hexdigest()[:12]}"


def eval_config(spec: TeamSpec, model: str | None, source: str) -> dict[str, Any]:
    """The `run-task` work's configuration: enough for any process to rebuild the team."""
    return {
        "team": spec.dump(),
        "team_dir": str(spec.source_dir) if spec.source_dir is not None else None,
        "model": model,
        "source": source,
    }


@register_work("run-task")
def run_task_work(store: TraceStore, config: dict[str, Any], /, **_: Any) -> BuiltWork:
    """Run the team on one task and score it against the task's ground truth.

    One team per worker runs its tasks side by side, sharing its models (one
    HTTP pool, one loaded embedded model; a scripted model's replies are used
    in order across the worker's tasks).
    """
    from mascope.graphs import Team, parse_team

    source = str(config.get("source") or "team")
    team = Team.from_spec(
        parse_team(dict(config["team"]), source=source),
        model=config.get("model"),
        store=store,
        source=source,
        base_dir=config.get("team_dir"),
    )
    team.check_models()  # a bad model or a missing key fails before any task runs

    async def work(item: Claimed, limiter: Limiter | None) -> Outcome:
        payload = item.payload or {}
        if limiter is not None:
            await limiter()
        result = await team.arun(
            str(payload["task"]),
            ground_truth=payload.get("ground_truth"),
            metadata={"eval": {"task_id": item.key, "line": payload.get("line")}},
        )
        return Outcome(
            result.cost_usd,
            labels=[result.status],
            result={
                "run_id": result.run_id,
                "status": result.status,
                "succeeded": result.succeeded,
                "input_tokens": result.input_tokens,
                "output_tokens": result.output_tokens,
                "cost_usd": result.cost_usd,
                "steps": result.step_count,
            },
        )

    async def close() -> None:
        models = {
            id(m): m for a in team.agents.values() if not a.is_function for m in [team.model_for(a)]
        }
        for model in models.values():
            await model.aclose()  # its HTTP connections belong to this event loop

    return BuiltWork(work, close)


@dataclass
class EvalReport:
    """An eval's outcome over all its tasks (done by this process or any other)."""

    job_id: str
    team: str
    total: int
    runs: int = 0
    """Tasks with a recorded run."""
    succeeded: int = 0
    abstained: int = 0
    """Runs that gave no answer on purpose: neither success nor failure."""
    paused: int = 0
    """Runs waiting for a person's input (`mascope runs resume RUN_ID --input TEXT`): not answered yet."""
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = 0.0
    """None when a run's cost is unknown (no price for its model)."""
    statuses: dict[str, int] = field(default_factory=dict)
    not_run: dict[str, str] = field(default_factory=dict)
    """Tasks whose run could not be started, with why."""
    pending: int = 0
    """Tasks not done yet (interrupted, or held by another worker)."""
    batch: BatchReport | None = None
    """What this invocation did."""

    @property
    def answered(self) -> int:
        """Runs that gave an answer (every run but the abstained and the paused ones)."""
        return self.runs - self.abstained - self.paused

    @property
    def success_rate(self) -> float:
        """Succeeded / answered: abstained runs count as neither success nor failure."""
        return self.succeeded / self.answered if self.answered else float("nan")

    @property
    def interval(self) -> tuple[float, float]:
        """95% Wilson interval of the success rate."""
        from mascope.diagnosis import wilson

        return wilson(self.succeeded, self.answered)

    @property
    def coverage(self) -> float:
        """Answered / runs."""
        return self.answered / self.runs if self.runs else float("nan")

    @property
    def risk(self) -> float:
        """Wrong (answered but not succeeded) / answered."""
        return (self.answered - self.succeeded) / self.answered if self.answered else float("nan")

    def as_dict(self) -> dict[str, Any]:
        low, high = self.interval
        b = self.batch
        answered = self.answered
        return {
            "job": self.job_id, "team": self.team, "tasks": self.total, "runs": self.runs,
            "succeeded": self.succeeded, "success_rate": None if not answered else round(self.success_rate, 4),
            "interval": None if not answered else [round(low, 4), round(high, 4)],
            "abstained": self.abstained, "paused": self.paused, "answered": answered,
            "coverage": None if not self.runs else round(self.coverage, 4),
            "risk": None if not answered else round(self.risk, 4),
            "input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
            "cost_usd": self.cost_usd, "statuses": self.statuses, "not_run": self.not_run,
            "pending": self.pending, "ran_now": b.judged if b else 0,
            "elapsed_s": round(b.elapsed_s, 3) if b else None, "interrupted": bool(b and b.interrupted),
        }  # fmt: skip


def eval_report(store: TraceStore, job_id: str, team: str) -> EvalReport:
    """The report of an eval job from its items' stored results."""
    states = JobQueue(store).states(job_id)
    report = EvalReport(job_id=job_id, team=team, total=len(states))
    cost_known = True
    for key, state in sorted(states.items()):
        if state.status == "pending":
            report.pending += 1
            continue
        if state.status != "done" or not state.result:
            report.not_run[key] = state.error or "could not run"
            continue
        r = state.result
        report.runs += 1
        report.succeeded += bool(r.get("succeeded"))
        report.abstained += r.get("status") == "abstained"
        report.paused += r.get("status") == "paused"
        report.input_tokens += int(r.get("input_tokens") or 0)
        report.output_tokens += int(r.get("output_tokens") or 0)
        status = str(r.get("status"))
        report.statuses[status] = report.statuses.get(status, 0) + 1
        if r.get("cost_usd") is None:
            cost_known = False
        else:
            report.cost_usd = (report.cost_usd or 0.0) + float(r["cost_usd"])
    if not cost_known:
        report.cost_usd = None
    return report


def queue_eval(
    store: TraceStore,
    spec: TeamSpec,
    tasks: Sequence[EvalTask],
    *,
    model: str | None = None,
    source: str = "team",
) -> str:
    """Queue the eval's tasks as a job in the store (tasks already there keep their
    state); returns the job's id."""
    job_id = eval_job_id(spec, model, tasks)
    queue = JobQueue(store)
    queue.ensure_job(job_id, kind="run-task", config=eval_config(spec, model, source))
    queue.enqueue(job_id, {t.key: {"task": t.task, "ground_truth": t.ground_truth, "line": t.line} for t in tasks})  # fmt: skip
    # Tasks whose run could not be started last time are tried again.
    failed = {k: s.attempts for k, s in queue.states(job_id).items() if s.status in FAILED_STATUSES}
    queue.requeue(job_id, failed)
    store.recover_interrupted()  # runs of a killed eval on this host end as interrupted
    return job_id


async def aeval_run(
    store: TraceStore,
    spec: TeamSpec,
    tasks: Sequence[EvalTask],
    *,
    model: str | None = None,
    source: str = "team",
    concurrency: int = 4,
    lease_s: float = LEASE_S,
    on_progress: Callable[[BatchProgress], None] | None = None,
) -> EvalReport:
    """Run the team on every task not yet run under this eval's job, in this process
    (with any other workers on the same job), and report over all its tasks."""
    job_id = queue_eval(store, spec, tasks, model=model, source=source)
    queue = JobQueue(store)
    built = build_work("run-task", store, eval_config(spec, model, source))
    batch = BatchReport(job_id=job_id, total=len(tasks), skipped=len(tasks) - queue.pending(job_id))
    try:
        await run_job(
            store, job_id=job_id, work=built.work, report=batch, concurrency=concurrency,
            lease_s=lease_s, on_progress=on_progress, queue=queue,
        )  # fmt: skip
    finally:
        await built.aclose()
    report = eval_report(store, job_id, spec.name)
    for key, why in batch.failures.items():
        report.not_run[key] = why
    report.batch = batch
    return report


def eval_on_ray(
    store: TraceStore,
    spec: TeamSpec,
    tasks: Sequence[EvalTask],
    *,
    workers: int,
    ray_address: str | None = None,
    model: str | None = None,
    source: str = "team",
    concurrency: int = 4,
    lease_s: float = LEASE_S,
) -> EvalReport:
    """`aeval_run` with `workers` Ray workers (a local Ray runtime, or the cluster at
    `ray_address`) pulling the tasks from the store's queue."""
    import time

    from mascope.jobs import run_on_ray

    job_id = queue_eval(store, spec, tasks, model=model, source=source)
    skipped = len(tasks) - JobQueue(store).pending(job_id)
    started = time.monotonic()
    reports = run_on_ray(
        store, job_id, workers=workers, ray_address=ray_address, concurrency=concurrency, lease_s=lease_s
    )  # fmt: skip
    batch = BatchReport(job_id=job_id, total=len(tasks), skipped=skipped)
    batch.add_workers(reports)  # Ctrl-C: one report, marked interrupted
    # As in-process: the time the work took (the longest worker's), not Ray's start-up.
    batch.elapsed_s = max((r.elapsed_s for r in reports), default=time.monotonic() - started)
    report = eval_report(store, job_id, spec.name)
    report.not_run.update(batch.failures)
    report.batch = batch
    return report
