"""Batch jobs over many runs: bounded concurrency, a request rate, a cost cap, resumable.

One job per configuration (`judge-<hash>`, `attribute-<hash>`): runs already
done under it are skipped, so rerunning the same command after a kill
continues where it stopped. Each run's results and its "done" mark are
written in one transaction (finished runs are committed together, a group
commit), so a kill never leaves a run half-recorded or processed twice.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from mascope.errors import (
    AuthenticationError,
    EndpointError,
    ModelNotFoundError,
    StructuredOutputError,
    UserError,
)
from mascope.models import ChatModel, get_model
from mascope.traces import Run, Step, TraceStore

from ._judge import PROMPT_VERSION, JudgeConfig, ajudge_run, label_rows
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
    """Runs done in this invocation."""
    skipped: int = 0
    not_judged: int = 0
    cost_usd: float = 0.0
    stopped: str | None = None
    """Why the job stopped early (cost cap, endpoint down), if it did."""
    modes: Counter[str] = field(default_factory=Counter)
    uncertain: Counter[str] = field(default_factory=Counter)
    """Modes the judge called present without evidence that checks out (or agreement), per run."""
    failures: dict[str, str] = field(default_factory=dict)
    elapsed_s: float = 0.0
    cost_known: bool = True
    running: int = 0
    """Runs still running: left for a later batch."""
    elsewhere: int = 0
    """Runs another worker was doing (or had just done) when this one came to them."""
    interrupted: bool = False
    """Stopped by Ctrl-C or SIGTERM; the committed results are kept."""

    @property
    def nothing_done(self) -> bool:
        """There was work this batch tried, and none of it succeeded."""
        return self.judged == 0 and self.not_judged > 0


@dataclass
class Outcome:
    """What one run's work produced, to be committed with its done mark."""

    cost_usd: float | None
    replace: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    attributions: list[dict[str, Any]] = field(default_factory=list)
    metadata: dict[str, Any] | None = None
    labels: list[str] = field(default_factory=list)
    """Short tags counted in the job summary (failure modes, blamed agents)."""
    uncertain: list[str] = field(default_factory=list)
    """Failure modes left uncertain, counted apart from `labels`."""


Work = Callable[[str, Callable[[], Awaitable[None]] | None], Awaitable[Outcome]]


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


LEASE_S = 300.0
"""How long a worker's claim on an item holds without a heartbeat; then another worker may take it."""


async def run_job(
    store: TraceStore,
    *,
    job_id: str,
    kind: str,
    config: dict[str, Any],
    run_ids: Sequence[str],
    work: Work,
    model: ChatModel,
    concurrency: int = 4,
    rpm: float | None = None,
    max_cost: float | None = None,
    on_progress: Callable[[BatchProgress], None] | None = None,
    lease_s: float = LEASE_S,
) -> BatchReport:
    """Do `work` for each run not yet done under `job_id`, with the guarantees above.

    Only finished runs are worked on (running ones are counted in `report.running`
    and left for a later batch), and a run done when it had fewer steps is done
    again. Each item is claimed in the store before work starts, so workers
    sharing a store (other processes, other machines) never do one run twice;
    items another worker holds are counted in `report.elsewhere`. Cancelling the
    task (Ctrl-C) keeps what was committed and returns the report with
    `interrupted` set.
    """
    config_hash = job_id.rsplit("-", 1)[-1]
    store.ensure_job(job_id, kind=kind, config=config, config_hash=config_hash)
    store.add_job_items(job_id, run_ids)
    unique = list(dict.fromkeys(run_ids))
    view = store.job_item_view(job_id, unique)
    running = [r for r in unique if view[r].run_status == "running"]
    current = [
        r for r in unique
        if view[r].run_status != "running" and view[r].status == "done" and view[r].run_steps == view[r].run_step_count
    ]  # fmt: skip
    settled = set(running) | set(current)
    todo = [r for r in unique if r not in settled]
    report = BatchReport(
        job_id=job_id, total=len(unique), skipped=len(current), running=len(running)
    )
    limiter = RateLimiter(rpm) if rpm else None
    stop = asyncio.Event()
    workers = max(1, concurrency)
    in_flight = 0
    started = time.monotonic()
    pending: list[dict[str, Any]] = []
    flushing = asyncio.Lock()
    claiming = asyncio.Lock()
    claimed: list[tuple[str, int]] = []
    held: set[str] = set()
    cursor = 0

    def progress() -> None:
        if on_progress is not None:
            on_progress(
                BatchProgress(
                    report.total,
                    report.judged,
                    report.skipped + report.running + report.elsewhere,
                    report.not_judged,
                    report.cost_usd,
                    in_flight,
                )
            )

    def capped() -> bool:
        if max_cost is not None and report.cost_usd >= max_cost:
            report.stopped = (
                report.stopped or f"cost cap reached (${report.cost_usd:.4f} of ${max_cost:.4f})"
            )
            stop.set()
            return True
        return False

    async def commit(item: dict[str, Any]) -> None:
        pending.append(item)
        async with flushing:
            if not pending:
                return  # an earlier flush already wrote ours
            batch = pending[:]
            pending.clear()
            await asyncio.to_thread(store.finish_job_items, job_id, batch)
            held.difference_update(i["run_id"] for i in batch)

    async def next_item() -> tuple[str, int] | None:
        """The next item this worker holds a claim on, claiming a small batch when out."""
        nonlocal cursor
        async with claiming:
            while not claimed and cursor < len(todo) and not stop.is_set():
                chunk = todo[cursor : cursor + workers]
                cursor += len(chunk)
                got = await asyncio.to_thread(store.claim_job_items, job_id, chunk, lease_s=lease_s)
                held.update(got)
                claimed.extend(got.items())
                report.elsewhere += len(chunk) - len(got)
                if len(got) < len(chunk):
                    progress()
            if stop.is_set() or not claimed:
                return None
            return claimed.pop(0)

    async def one(run_id: str, steps: int) -> None:
        nonlocal in_flight
        if capped():
            return
        in_flight += 1
        progress()
        try:
            outcome = await work(run_id, limiter)
        except (StructuredOutputError, UserError) as exc:
            report.not_judged += 1
            report.failures[run_id] = str(exc)
            await commit({"run_id": run_id, "status": "not_judged", "error": str(exc)})
            return
        except (EndpointError, AuthenticationError, ModelNotFoundError) as exc:
            report.failures[run_id] = str(exc)
            await commit({"run_id": run_id, "status": "error", "error": str(exc)})
            report.stopped = report.stopped or f"the endpoint failed: {exc}"
            stop.set()
            return
        finally:
            in_flight -= 1
        cost = outcome.cost_usd
        if cost is None:
            report.cost_known = False
            cost = 0.0
        report.cost_usd += cost
        await commit({
            "run_id": run_id, "status": "done", "cost_usd": cost, "replace": outcome.replace,
            "attributions": outcome.attributions, "metadata": outcome.metadata, "run_steps": steps,
        })  # fmt: skip
        report.judged += 1
        report.modes.update(outcome.labels)
        report.uncertain.update(outcome.uncertain)
        progress()
        capped()

    async def worker() -> None:
        while (item := await next_item()) is not None:
            await one(*item)

    async def heartbeat() -> None:
        while True:
            await asyncio.sleep(max(0.05, lease_s / 3))
            await asyncio.to_thread(store.renew_job_claims, job_id, sorted(held))

    progress()
    beat = asyncio.create_task(heartbeat())
    try:
        await asyncio.gather(*(worker() for _ in range(workers)))
    except asyncio.CancelledError:
        # Interrupted: what was committed stays; the claims still held are given back below.
        report.interrupted = True
        report.stopped = report.stopped or "interrupted"
    finally:
        beat.cancel()
        await asyncio.to_thread(store.release_job_claims, job_id)
        await model.aclose()  # its HTTP connections belong to this event loop
    report.elapsed_s = time.monotonic() - started
    store.finish_job(job_id, status="stopped" if report.stopped else "done", error=report.stopped)
    return report


# -- judging ---------------------------------------------------------------------


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
    on_window: Callable[[str, int, int], None] | None = None,
) -> BatchReport:
    """Judge `run_ids` under `config` (rule detectors, then the LLM judge).

    `on_window` hears (run id, windows judged, windows in all) within each run.
    """
    llm = model or get_model(config.model)
    job_id = job_id_for(config)

    async def work(run_id: str, limiter: Callable[[], Awaitable[None]] | None) -> Outcome:
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
            on_window=None if on_window is None else functools.partial(on_window, run_id),
        )
        llm_rows = label_rows(judgement, config, job_id)
        meta = {
            "judge": {
                "model": config.model,
                "summary": judgement.summary,
                "task_completed": judgement.task_completed,
                "prompt_version": PROMPT_VERSION,
                "job": job_id,
            }
        }
        return Outcome(
            judgement.cost_usd,
            replace={RULE_PREFIX: [_rule_row(f) for f in loaded[2]], config.annotator: llm_rows},
            metadata=meta,
            labels=judgement.present,
            uncertain=judgement.uncertain,
        )

    config_data = {**asdict(config), "prompt_version": PROMPT_VERSION}
    return await run_job(store, job_id=job_id, kind="judge", config=config_data, run_ids=run_ids, work=work, model=llm,
                         concurrency=concurrency, rpm=rpm, max_cost=max_cost, on_progress=on_progress)  # fmt: skip


# -- attribution -------------------------------------------------------------------


async def aattribute_batch(
    store: TraceStore,
    run_ids: Sequence[str],
    *,
    method: str,
    model: ChatModel,
    with_ground_truth: bool = True,
    max_replays: int = 5,
    concurrency: int = 4,
    rpm: float | None = None,
    max_cost: float | None = None,
    on_progress: Callable[[BatchProgress], None] | None = None,
) -> BatchReport:
    """Attribute many failed runs with one method, as a resumable job."""
    from ._attribution import PROMPT_VERSION as ATTRIBUTION_PROMPT
    from ._attribution import aattribute

    config = {"method": method, "model": model.model_id.split("@", 1)[0], "with_ground_truth": with_ground_truth,
              "max_replays": max_replays, "prompt_version": ATTRIBUTION_PROMPT}  # fmt: skip
    job_id = (
        "attribute-" + hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12]
    )

    async def work(run_id: str, limiter: Callable[[], Awaitable[None]] | None) -> Outcome:
        if limiter is not None:
            await limiter()
        result = await aattribute(
            store,
            run_id,
            method=method,
            model=model,
            with_ground_truth=with_ground_truth,
            max_replays=max_replays,
            save=False,
        )
        row = {"method": result.method, "agent": result.agent, "step_index": result.step, "confidence": result.confidence,
               "reason": result.reason, "intervention": result.intervention, "verified": result.verified,
               "replay_run_id": result.replay_run_id, "with_ground_truth": with_ground_truth,
               "annotator": f"llm:{config['model']}", "job_id": job_id}  # fmt: skip
        return Outcome(result.cost_usd, attributions=[row], labels=[result.agent or "?"])

    return await run_job(store, job_id=job_id, kind="attribute", config=config, run_ids=run_ids, work=work, model=model,
                         concurrency=concurrency, rpm=rpm, max_cost=max_cost, on_progress=on_progress)  # fmt: skip
