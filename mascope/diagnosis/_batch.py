"""Batch jobs over many runs: judge and attribute, as work the job queue runs.

One job per configuration (`judge-<hash>`, `attribute-<hash>`): runs already
done under it are skipped, so rerunning the same command after a kill
continues where it stopped. The work is registered by name (`judge`,
`attribute`) and rebuilt from the job's stored configuration, so any worker
sharing the store can do it; each run is claimed with a lease before work
starts, and its results are committed with its completion only while the
claim holds (see `mascope.jobs`), so a kill never leaves a run half-recorded
and two workers never label one run twice.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, fields
from typing import Any

from mascope.jobs import (
    LEASE_S,
    BatchProgress,
    BatchReport,
    BuiltWork,
    Claimed,
    JobQueue,
    Limiter,
    Outcome,
    RateLimiter,
    build_work,
    register_work,
    run_job,
)
from mascope.models import ChatModel, get_model
from mascope.traces import Run, Step, TraceStore

from ._judge import PROMPT_VERSION, JudgeConfig, ajudge_run, config_of, label_rows
from ._rules import RULE_PREFIX, Finding, detect

__all__ = [
    "LEASE_S",
    "BatchProgress",
    "BatchReport",
    "Outcome",
    "RateLimiter",
    "aattribute_many",
    "ajudge_many",
    "attribute_many",
    "attribute_on_ray",
    "job_id_for",
    "judge_many",
    "judge_on_ray",
]


def _prepare(
    store: TraceStore, *, job_id: str, kind: str, config: dict[str, Any], run_ids: Sequence[str]
) -> tuple[JobQueue, BatchReport, list[str]]:
    """Queue `run_ids` in the job; returns the queue, the report so far, and the runs to do.

    Only finished runs are worked on (running and paused ones are counted in `report.running`,
    kept from being claimed, and left for a later batch), and a run done when it
    had fewer steps is done again, as is one whose work failed before.
    """
    queue = JobQueue(store)
    queue.ensure_job(job_id, kind=kind, config=config)
    unique = list(dict.fromkeys(run_ids))
    queue.enqueue(job_id, unique)
    view = store.job_item_view(job_id, unique)
    states = queue.states(job_id, unique)
    # A paused run (waiting for a person) is not finished either: left for a later batch.
    running = [r for r in unique if view[r].run_status in ("running", "paused")]
    current = [
        r for r in unique
        if r not in running and view[r].status == "done" and view[r].run_steps == view[r].run_step_count
    ]  # fmt: skip
    settled = set(running) | set(current)
    todo = [r for r in unique if r not in settled]
    queue.park(job_id, running)
    # Redo what failed or went stale, unless another worker did it since we looked.
    queue.requeue(job_id, {r: states[r].attempts for r in todo if states[r].status != "pending"})
    report = BatchReport(
        job_id=job_id, total=len(unique), skipped=len(current), running=len(running)
    )
    return queue, report, todo


async def _run_batch(
    store: TraceStore,
    *,
    job_id: str,
    kind: str,
    config: dict[str, Any],
    run_ids: Sequence[str],
    built: BuiltWork,
    concurrency: int,
    rpm: float | None,
    max_cost: float | None,
    on_progress: Callable[[BatchProgress], None] | None,
    lease_s: float = LEASE_S,
) -> BatchReport:
    """Do the runs of `run_ids` not yet done under the job, in this process; items
    another worker holds are counted in `report.elsewhere`."""
    queue, report, todo = _prepare(store, job_id=job_id, kind=kind, config=config, run_ids=run_ids)
    try:
        return await run_job(
            store, job_id=job_id, work=built.work, report=report, among=todo, concurrency=concurrency,
            rpm=rpm, max_cost=max_cost, on_progress=on_progress, lease_s=lease_s, queue=queue,
            failed_status="not_judged", prefetch=built.prefetch,
        )  # fmt: skip
    finally:
        await built.aclose()


def _on_ray(
    store: TraceStore,
    *,
    job_id: str,
    kind: str,
    config: dict[str, Any],
    run_ids: Sequence[str],
    workers: int,
    ray_address: str | None,
    concurrency: int,
    rpm: float | None = None,
    max_cost: float | None = None,
    lease_s: float = LEASE_S,
) -> BatchReport:
    """`_run_batch` on Ray workers: each rebuilds the work from the job and drains
    its pending runs (with any other worker on the job)."""
    import time

    from mascope.jobs import run_on_ray

    _, report, _ = _prepare(store, job_id=job_id, kind=kind, config=config, run_ids=run_ids)
    started = time.monotonic()
    # Ctrl-C stops the workers and comes back as a report marked interrupted.
    report.add_workers(run_on_ray(
        store, job_id, workers=workers, ray_address=ray_address, concurrency=concurrency,
        lease_s=lease_s, rpm=rpm, max_cost=max_cost,
    ))  # fmt: skip
    report.elapsed_s = time.monotonic() - started
    return report


# -- judging ---------------------------------------------------------------------


Loaded = tuple[Run, list[Step], list[Finding]]

PREFETCH_STEPS = 20_000
"""Most steps read at once for one batch of claimed runs; longer runs are read one by one."""


def _load(store: TraceStore, run_id: str) -> Loaded:
    run = store.get_run(run_id)
    steps = list(store.iter_steps(run_id))
    return run, steps, detect(run, steps)


def _load_many(store: TraceStore, run_ids: Sequence[str]) -> dict[str, Loaded]:
    """Runs, steps and rule findings of a batch of runs in two queries; runs beyond
    PREFETCH_STEPS steps in all are left out (the work reads them itself)."""
    runs = store.get_runs(run_ids)
    short, total = [], 0
    for rid in run_ids:
        run = runs.get(rid)
        if run is not None and total + run.step_count <= PREFETCH_STEPS:
            short.append(rid)
            total += run.step_count
    steps = store.steps_of(short)
    return {rid: (runs[rid], steps[rid], detect(runs[rid], steps[rid])) for rid in short}


def _rule_row(f: Finding) -> dict[str, Any]:
    return {"taxonomy": "mast", "mode": f.mode, "present": True, "confidence": 1.0, "evidence_steps": f.evidence_steps,
            "rationale": f.rationale, "annotator": f.annotator, "step_index": f.evidence_steps[0] if f.evidence_steps else None}  # fmt: skip


def job_id_for(config: JudgeConfig) -> str:
    return f"judge-{config.hash()}"


def _judge_config(config: dict[str, Any]) -> JudgeConfig:
    known = {f.name for f in fields(JudgeConfig)}
    return JudgeConfig(**{k: v for k, v in config.items() if k in known})


@register_work("judge")
def judge_work(
    store: TraceStore,
    config: dict[str, Any],
    /,
    *,
    model: ChatModel | None = None,
    on_window: Callable[[str, int, int], None] | None = None,
) -> BuiltWork:
    """The judge's work on one run (rule detectors, then the LLM judge), from a job's
    configuration: a `JudgeConfig` as a dict. `model` replaces the model it names."""
    judge_config = _judge_config(config)
    llm = model or get_model(judge_config.model)
    job_id = job_id_for(judge_config)
    ready: dict[str, Loaded] = {}

    def prefetch(run_ids: Sequence[str]) -> None:
        ready.update(_load_many(store, run_ids))

    async def work(item: Claimed, limiter: Limiter | None) -> Outcome:
        run_id = item.key
        loaded = ready.pop(run_id, None)
        if loaded is None:
            loaded = await asyncio.to_thread(_load, store, run_id)
        judgement = await ajudge_run(
            store,
            run_id,
            judge_config,
            model=llm,
            limiter=limiter,
            job_id=job_id,
            save=False,
            loaded=loaded,
            on_window=None if on_window is None else functools.partial(on_window, run_id),
        )
        llm_rows = label_rows(judgement, judge_config, job_id)
        meta = {
            "judge": {
                "model": judge_config.model,
                "summary": judgement.summary,
                "task_completed": judgement.task_completed,
                "prompt_version": PROMPT_VERSION,
                "job": job_id,
            }
        }
        return Outcome(
            judgement.cost_usd,
            replace={
                RULE_PREFIX: [_rule_row(f) for f in loaded[2]],
                judge_config.annotator: llm_rows,
            },
            metadata=meta,
            labels=judgement.present,
            uncertain=judgement.uncertain,
            run_steps=loaded[0].step_count,
        )

    return BuiltWork(work, llm.aclose, prefetch)  # its HTTP connections belong to this event loop


async def ajudge_many(
    store: TraceStore,
    run_ids: Sequence[str],
    *,
    model: str | ChatModel | None = None,
    config: JudgeConfig | None = None,
    concurrency: int = 4,
    rpm: float | None = None,
    max_cost: float | None = None,
    on_progress: Callable[[BatchProgress], None] | None = None,
    on_window: Callable[[str, int, int], None] | None = None,
) -> BatchReport:
    """Judge many runs as one resumable job: `ajudge` on each, `concurrency` at once.

    Runs already judged under the same configuration are skipped, so running
    it again after a kill continues where it stopped; at most `rpm` requests
    a minute, and no new run once `max_cost` dollars are spent. `on_progress`
    hears the job's progress; `on_window` (run id, windows judged, windows in
    all) within each run.
    """
    config = config_of(model, config)
    client = None if model is None or isinstance(model, str) else model
    config_data = {**asdict(config), "prompt_version": PROMPT_VERSION}
    built = build_work("judge", store, config_data, model=client, on_window=on_window)
    return await _run_batch(store, job_id=job_id_for(config), kind="judge", config=config_data, run_ids=run_ids,
                            built=built, concurrency=concurrency, rpm=rpm, max_cost=max_cost, on_progress=on_progress)  # fmt: skip


def judge_many(
    store: TraceStore,
    run_ids: Sequence[str],
    *,
    model: str | ChatModel | None = None,
    config: JudgeConfig | None = None,
    concurrency: int = 4,
    rpm: float | None = None,
    max_cost: float | None = None,
    on_progress: Callable[[BatchProgress], None] | None = None,
    on_window: Callable[[str, int, int], None] | None = None,
) -> BatchReport:
    """Sync twin of `ajudge_many`."""
    from mascope._sync import run_sync

    return run_sync(
        lambda: ajudge_many(
            store, run_ids, model=model, config=config, concurrency=concurrency, rpm=rpm,
            max_cost=max_cost, on_progress=on_progress, on_window=on_window,
        ),
        "judge_many",
        "ajudge_many",
    )  # fmt: skip


def judge_on_ray(
    store: TraceStore,
    run_ids: Sequence[str],
    *,
    model: str | None = None,
    config: JudgeConfig | None = None,
    workers: int,
    ray_address: str | None = None,
    concurrency: int = 4,
    rpm: float | None = None,
    max_cost: float | None = None,
) -> BatchReport:
    """`judge_many` on `workers` Ray workers (a local runtime, or the cluster at
    `ray_address`); each builds the judge's model from its model string, and the
    request rate and cost cap are shared out among them."""
    config = config_of(model, config)
    config_data = {**asdict(config), "prompt_version": PROMPT_VERSION}
    return _on_ray(store, job_id=job_id_for(config), kind="judge", config=config_data, run_ids=run_ids,
                   workers=workers, ray_address=ray_address, concurrency=concurrency, rpm=rpm, max_cost=max_cost)  # fmt: skip


# -- attribution -------------------------------------------------------------------


def _attribute_job(config: dict[str, Any]) -> str:
    same = {
        k: v for k, v in config.items() if k != "model_ref"
    }  # the endpoint does not make another job
    return "attribute-" + hashlib.sha256(json.dumps(same, sort_keys=True).encode()).hexdigest()[:12]


@register_work("attribute")
def attribute_work(
    store: TraceStore, config: dict[str, Any], /, *, model: ChatModel | None = None
) -> BuiltWork:
    """Attribution of one failed run with one method, from a job's configuration
    (method, model, with_ground_truth, max_replays). `model` replaces the model it names."""
    from ._attribution import aattribute

    llm = model or get_model(config.get("model_ref") or config["model"])
    method = str(config["method"])
    with_ground_truth = bool(config.get("with_ground_truth", True))
    max_replays = int(config.get("max_replays", 5))
    job_id = _attribute_job(config)

    async def work(item: Claimed, limiter: Limiter | None) -> Outcome:
        if limiter is not None:
            await limiter()
        steps = (await asyncio.to_thread(store.get_run, item.key)).step_count
        result = await aattribute(
            store,
            item.key,
            method=method,
            model=llm,
            with_ground_truth=with_ground_truth,
            max_replays=max_replays,
            save=False,
        )
        row = {"method": result.method, "agent": result.agent, "step_index": result.step, "confidence": result.confidence,
               "reason": result.reason, "intervention": result.intervention, "verified": result.verified,
               "replay_run_id": result.replay_run_id, "with_ground_truth": with_ground_truth,
               "annotator": f"llm:{config['model']}", "job_id": job_id}  # fmt: skip
        return Outcome(
            result.cost_usd, attributions=[row], labels=[result.agent or "?"], run_steps=steps
        )

    return BuiltWork(work, llm.aclose)


async def aattribute_many(
    store: TraceStore,
    run_ids: Sequence[str],
    *,
    method: str = "a2p",
    model: str | ChatModel = "local",
    with_ground_truth: bool = True,
    max_replays: int = 5,
    concurrency: int = 4,
    rpm: float | None = None,
    max_cost: float | None = None,
    on_progress: Callable[[BatchProgress], None] | None = None,
    model_ref: str | None = None,
) -> BatchReport:
    """Attribute many failed runs with one method as one resumable job: `aattribute`
    on each, `concurrency` at once (limits as in `ajudge_many`). `model_ref` is
    the model string other workers on the job build the model from (default:
    `model` itself, or the client's `model_id`)."""
    llm = get_model(model) if isinstance(model, str) else model
    if isinstance(model, str) and model_ref is None:
        model_ref = model
    config = _attribute_config(
        method, llm.model_id, model_ref or llm.model_id, with_ground_truth, max_replays
    )
    built = build_work("attribute", store, config, model=llm)
    return await _run_batch(store, job_id=_attribute_job(config), kind="attribute", config=config, run_ids=run_ids,
                            built=built, concurrency=concurrency, rpm=rpm, max_cost=max_cost, on_progress=on_progress)  # fmt: skip


def attribute_many(
    store: TraceStore,
    run_ids: Sequence[str],
    *,
    method: str = "a2p",
    model: str | ChatModel = "local",
    with_ground_truth: bool = True,
    max_replays: int = 5,
    concurrency: int = 4,
    rpm: float | None = None,
    max_cost: float | None = None,
    on_progress: Callable[[BatchProgress], None] | None = None,
    model_ref: str | None = None,
) -> BatchReport:
    """Sync twin of `aattribute_many`."""
    from mascope._sync import run_sync

    return run_sync(
        lambda: aattribute_many(
            store, run_ids, method=method, model=model, with_ground_truth=with_ground_truth,
            max_replays=max_replays, concurrency=concurrency, rpm=rpm, max_cost=max_cost,
            on_progress=on_progress, model_ref=model_ref,
        ),
        "attribute_many",
        "aattribute_many",
    )  # fmt: skip


def _attribute_config(
    method: str, model_id: str, model_ref: str, with_ground_truth: bool, max_replays: int
) -> dict[str, Any]:
    """`model_id` names the job (without its endpoint); `model_ref` is the model
    string a worker elsewhere builds the model from."""
    from ._attribution import PROMPT_VERSION as ATTRIBUTION_PROMPT

    return {"method": method, "model": model_id.split("@", 1)[0], "with_ground_truth": with_ground_truth,
            "max_replays": max_replays, "prompt_version": ATTRIBUTION_PROMPT, "model_ref": model_ref}  # fmt: skip


def attribute_on_ray(
    store: TraceStore,
    run_ids: Sequence[str],
    *,
    method: str,
    model: str,
    model_id: str | None = None,
    with_ground_truth: bool = True,
    max_replays: int = 5,
    workers: int,
    ray_address: str | None = None,
    concurrency: int = 4,
    rpm: float | None = None,
    max_cost: float | None = None,
) -> BatchReport:
    """`attribute_many` on `workers` Ray workers; each builds `model` (a model string)
    itself. `model_id` names the job as the in-process batch does (default `model`)."""
    config = _attribute_config(method, model_id or model, model, with_ground_truth, max_replays)
    return _on_ray(store, job_id=_attribute_job(config), kind="attribute", config=config, run_ids=run_ids,
                   workers=workers, ray_address=ray_address, concurrency=concurrency, rpm=rpm, max_cost=max_cost)  # fmt: skip
