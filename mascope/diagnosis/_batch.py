"""Judge batch jobs: many runs, bounded concurrency, a request rate, a cost cap, resumable.

One job per judge configuration (`judge-<hash>`): runs already judged under
it are skipped, so rerunning the same command after a kill continues where it
stopped. Each run's labels and its "done" mark are written in one
transaction, so a kill never leaves a run half-recorded or judged twice.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from mascope.errors import (
    AuthenticationError,
    EndpointError,
    ModelNotFoundError,
    StructuredOutputError,
)
from mascope.models import ChatModel, get_model
from mascope.traces import Run, Step, TraceStore

from ._judge import PROMPT_VERSION, JudgeConfig, ajudge_run
from ._rules import RULE_PREFIX, Finding, detect


@dataclass
class BatchProgress:
    total: int
    done: int
    skipped: int
    failed: int
    cost_usd: float
    in_flight: int


@dataclass
class BatchReport:
    job_id: str
    total: int
    judged: int = 0
    skipped: int = 0
    not_judged: int = 0
    cost_usd: float = 0.0
    stopped: str | None = None
    """Why the job stopped early (cost cap, endpoint down), if it did."""
    modes: Counter[str] = field(default_factory=Counter)
    failures: dict[str, str] = field(default_factory=dict)
    elapsed_s: float = 0.0
    cost_known: bool = True


class RateLimiter:
    """At most `rpm` acquisitions per minute, evenly spaced (no bursts)."""

    def __init__(self, rpm: float):
        self.interval = 60.0 / rpm
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def __call__(self) -> None:
        async with self._lock:
            now = time.monotonic()
            wait = self._next - now
            self._next = max(now, self._next) + self.interval
        if wait > 0:
            await asyncio.sleep(wait)


def _load(store: TraceStore, run_id: str) -> tuple[Run, list[Step], list[Finding]]:
    run = store.get_run(run_id)
    steps = list(store.iter_steps(run_id))
    return run, steps, detect(run, steps)


def _rule_row(f: Finding) -> dict[str, Any]:
    return {"taxonomy": "mast", "mode": f.mode, "present": True, "confidence": 1.0, "evidence_steps": f.evidence_steps,
            "rationale": f.rationale, "annotator": f.annotator, "step_index": f.evidence_steps[0] if f.evidence_steps else None}  # fmt: skip


def job_id_for(config: JudgeConfig) -> str:
    return f"judge-{config.hash()}"


async def ajudge_batch(
    store: TraceStore,
    run_ids: Sequence[str],
    config: JudgeConfig,
    *,
    concurrency: int = 4,
    rpm: float | None = None,
    max_cost: float | None = None,
    model: ChatModel | None = None,
    on_progress: Callable[[BatchProgress], None] | None = None,
) -> BatchReport:
    """Judge `run_ids` under `config`; see the module docstring for the guarantees."""
    llm = model or get_model(config.model)
    job_id = job_id_for(config)
    store.ensure_job(
        job_id,
        kind="judge",
        config={**asdict(config), "prompt_version": PROMPT_VERSION},
        config_hash=config.hash(),
    )
    store.add_job_items(job_id, run_ids)
    states = store.job_item_states(job_id, run_ids)
    todo = [r for r in dict.fromkeys(run_ids) if states.get(r) != "done"]
    report = BatchReport(
        job_id=job_id, total=len(dict.fromkeys(run_ids)), skipped=len(run_ids) - len(todo)
    )
    limiter = RateLimiter(rpm) if rpm else None
    stop = asyncio.Event()
    semaphore = asyncio.Semaphore(max(1, concurrency))
    in_flight = 0
    started = time.monotonic()

    def progress() -> None:
        if on_progress is not None:
            on_progress(
                BatchProgress(
                    report.total,
                    report.judged,
                    report.skipped,
                    report.not_judged,
                    report.cost_usd,
                    in_flight,
                )
            )

    pending: list[dict[str, Any]] = []
    flushing = asyncio.Lock()

    async def commit(item: dict[str, Any]) -> None:
        # Group commit: while one batch is being written, finished runs queue up
        # and go in the next transaction together. A run counts as done only
        # once its transaction has committed.
        pending.append(item)
        async with flushing:
            if not pending:
                return
            batch = pending[:]
            pending.clear()
            await asyncio.to_thread(store.finish_job_items, job_id, batch)

    async def one(run_id: str) -> None:
        nonlocal in_flight
        async with semaphore:
            if stop.is_set():
                return
            if max_cost is not None and report.cost_usd >= max_cost:
                report.stopped = (
                    report.stopped
                    or f"cost cap reached (${report.cost_usd:.4f} of ${max_cost:.4f})"
                )
                stop.set()
                return
            in_flight += 1
            progress()
            try:
                loaded = await asyncio.to_thread(_load, store, run_id)
                judgement = await ajudge_run(
                    store,
                    run_id,
                    config,
                    model=llm,
                    limiter=limiter,
                    job_id=job_id,
                    save=False,
                    loaded=loaded,
                )
            except StructuredOutputError as exc:
                report.not_judged += 1
                report.failures[run_id] = str(exc)
                await asyncio.to_thread(
                    store.finish_job_item, job_id, run_id, status="not_judged", error=str(exc)
                )
                return
            except (EndpointError, AuthenticationError, ModelNotFoundError) as exc:
                report.failures[run_id] = str(exc)
                await asyncio.to_thread(
                    store.finish_job_item, job_id, run_id, status="error", error=str(exc)
                )
                report.stopped = report.stopped or f"the judge's endpoint failed: {exc}"
                stop.set()
                return
            finally:
                in_flight -= 1
            cost = judgement.cost_usd
            if cost is None:
                report.cost_known = False
                cost = 0.0
            report.cost_usd += cost
            findings = loaded[2]
            await commit({
                "run_id": run_id,
                "status": "done",
                "cost_usd": cost,
                "replace": {RULE_PREFIX: [_rule_row(f) for f in findings], config.annotator: [
                    {"taxonomy": config.taxonomy, "mode": mode, "present": r.present, "confidence": r.confidence,
                     "evidence_steps": r.evidence_steps, "rationale": r.rationale, "annotator": config.annotator,
                     "prompt_version": f"{PROMPT_VERSION}/{config.hash()}", "job_id": job_id,
                     "step_index": r.evidence_steps[0] if r.present and r.evidence_steps else None}
                    for mode, r in judgement.modes.items()
                ]},
                "metadata": {"judge": {"model": config.model, "summary": judgement.summary, "task_completed": judgement.task_completed, "prompt_version": PROMPT_VERSION, "job": job_id}},
            })  # fmt: skip
            report.judged += 1
            report.modes.update(judgement.present)
            progress()
            if max_cost is not None and report.cost_usd >= max_cost:
                report.stopped = (
                    report.stopped
                    or f"cost cap reached (${report.cost_usd:.4f} of ${max_cost:.4f})"
                )
                stop.set()

    progress()
    try:
        await asyncio.gather(*(one(r) for r in todo))
    finally:
        await llm.aclose()  # its HTTP connections belong to this event loop
    report.elapsed_s = time.monotonic() - started
    store.finish_job(job_id, status="stopped" if report.stopped else "done", error=report.stopped)
    return report
