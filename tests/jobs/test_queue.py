"""The job queue on SQLite and PostgreSQL: claims, leases, heartbeats, take-over and fenced completion."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import event

from mascope.errors import ConfigError
from mascope.jobs import BatchReport, Completion, JobQueue, build_work, drain_job, run_job
from mascope.traces import TraceStore

from .conftest import psycopg_url
from .workers import label_work


def runs(store: TraceStore, n: int) -> list[str]:
    ids = []
    for i in range(n):
        rid = store.start_run(team="t", task=f"task {i}")
        store.finish_run(rid, status="failed")
        ids.append(rid)
    return ids


def attributions(store: TraceStore, ids: list[str]) -> dict[str, int]:
    return {r: len(store.attributions(r)) for r in ids}


def test_the_jobs_counts_and_cost_follow_completions_requeues_and_redos(qstore: TraceStore) -> None:
    q = JobQueue(qstore)
    q.ensure_job("j-c", kind="tests.jobs.workers:label", config={})
    q.enqueue("j-c", ["a", "b", "c", "d"])

    def counts() -> tuple[int, int, float]:
        job = qstore.get_job("j-c")
        assert job is not None
        return job.done, job.failed, round(job.cost_usd, 6)

    q.claim("j-c", 4)
    q.complete(
        "j-c",
        [Completion("a", cost_usd=0.5), Completion("b", status="failed", cost_usd=0.25, error="x")],
    )
    assert counts() == (1, 1, 0.75)
    q.complete("j-c", [Completion("a", cost_usd=9.0)])  # done already: not ours to record again
    assert counts() == (1, 1, 0.75)
    q.complete("j-c", [Completion("c", cost_usd=1.0), Completion("d", status="not_judged")])
    assert counts() == (2, 2, 1.75)
    states = q.states("j-c")
    assert q.requeue("j-c", {k: states[k].attempts for k in ("b", "d")}) == 2
    assert counts() == (2, 0, 1.75)  # pending again, their earlier cost still spent
    q.claim("j-c", 2)
    q.complete("j-c", [Completion("b", cost_usd=0.5), Completion("d", cost_usd=0.0)])
    assert counts() == (4, 0, 2.0)  # b's redo replaced its earlier cost, as a recount says


def test_two_workers_never_claim_the_same_item(qstore: TraceStore) -> None:
    a, b = JobQueue(qstore), JobQueue(qstore)
    a.ensure_job("j-1", kind="tests.jobs.workers:label", config={})
    assert a.enqueue("j-1", [f"k{i}" for i in range(10)]) == 10
    assert a.enqueue("j-1", ["k0", "k1"]) == 0  # already queued: kept as they are
    first = a.claim("j-1", 4)
    second = b.claim("j-1", 4)
    third = a.claim("j-1", 4)
    assert (len(first), len(second), len(third)) == (4, 4, 2)  # at most the limit each
    keys = [c.key for c in [*first, *second, *third]]
    assert len(keys) == len(set(keys)) == 10
    assert b.claim("j-1", 4) == []  # everything is held
    assert a.pending("j-1") == 10


def test_an_expired_lease_is_taken_over_and_the_late_worker_records_nothing(
    qstore: TraceStore,
) -> None:
    ids = runs(qstore, 2)
    slow, other = JobQueue(qstore), JobQueue(qstore)
    slow.ensure_job("j-2", kind="tests.jobs.workers:label", config={})
    slow.enqueue("j-2", ids)
    assert {c.key for c in slow.claim("j-2", 2, lease_s=0.2)} == set(ids)
    assert other.claim("j-2", 2, lease_s=60) == []  # held while the lease runs
    time.sleep(0.4)  # the slow worker misses its heartbeat
    taken = other.claim("j-2", 2, lease_s=60)
    assert {c.key for c in taken} == set(ids)
    row = {"method": "test", "annotator": "test"}
    # The slow worker comes back and finishes: it no longer holds the items, so nothing of it is kept.
    assert slow.complete("j-2", [Completion(r, attributions=[row]) for r in ids]) == []
    assert slow.heartbeat("j-2", ids) == set()
    assert other.complete("j-2", [Completion(r, attributions=[row]) for r in ids]) == ids
    assert attributions(qstore, ids) == dict.fromkeys(ids, 1)
    states = other.states("j-2")
    assert {s.status for s in states.values()} == {"done"} and all(
        s.attempts == 1 and s.claimed_by is None for s in states.values()
    )
    job = qstore.get_job("j-2")
    assert job is not None and job.done == 2 and job.total == 2


def test_a_worker_stopped_inside_a_transaction_does_not_keep_its_lapsed_items_locked(
    postgres_url: str,
) -> None:
    url = psycopg_url(postgres_url)
    with TraceStore(url) as mine, TraceStore(url) as theirs:
        ids = runs(mine, 3)
        stalled, other = JobQueue(mine, stall_s=0.5), JobQueue(theirs)
        stalled.ensure_job("j-s", kind="tests.jobs.workers:label", config={})
        stalled.enqueue("j-s", ids)
        assert len(stalled.claim("j-s", 3, lease_s=0.3)) == 3
        # The worker's next heartbeat stops for 4 s right after its UPDATE, inside the
        # transaction, with the items' rows locked (as a SIGSTOP there would).
        armed, stopped = threading.Event(), threading.Event()

        def stop_inside(conn, cursor, statement, *_):  # type: ignore[no-untyped-def]
            if armed.is_set() and statement.lstrip().startswith("UPDATE job_items"):
                armed.clear()
                stopped.set()
                time.sleep(4)

        event.listen(mine.engine.write, "after_cursor_execute", stop_inside)
        armed.set()
        beats: list[set[str]] = []
        beat = threading.Thread(target=lambda: beats.append(stalled.heartbeat("j-s", ids)))
        beat.start()
        assert stopped.wait(10)
        taken: list[str] = []
        deadline = time.monotonic() + 3  # well before the stopped worker wakes
        while len(taken) < 3 and time.monotonic() < deadline:
            taken += [c.key for c in other.claim("j-s", 3, lease_s=60)]
            time.sleep(0.05)
        assert sorted(taken) == sorted(ids)  # the server ended the stalled session, freeing them
        beat.join(10)
        # It wakes on a lost connection, tries its heartbeat again, and holds nothing.
        assert beats == [set()]
        row = {"method": "test", "annotator": "test"}
        assert stalled.complete("j-s", [Completion(r, attributions=[row]) for r in ids]) == []
        theirs_done = other.complete("j-s", [Completion(r, attributions=[row]) for r in ids])
        assert sorted(theirs_done) == sorted(ids)
        assert attributions(mine, ids) == dict.fromkeys(ids, 1)


def test_one_group_commit_writes_the_items_still_held_and_none_of_the_one_taken_over(
    qstore: TraceStore,
) -> None:
    ids = runs(qstore, 3)
    qstore.update_run_metadata(ids[0], {"kept": 1})
    mine, other = JobQueue(qstore), JobQueue(qstore)
    mine.ensure_job("j-g", kind="tests.jobs.workers:label", config={})
    mine.enqueue("j-g", ids)
    assert len(mine.claim("j-g", 2, lease_s=60, among=ids[:2])) == 2
    assert len(mine.claim("j-g", 1, lease_s=0.2, among=ids[2:])) == 1
    time.sleep(0.4)  # the lease on the third lapses
    assert [c.key for c in other.claim("j-g", 3, lease_s=60)] == [ids[2]]

    def done(run_id: str, mode: str) -> Completion:
        label = {
            "taxonomy": "mast",
            "mode": mode,
            "present": True,
            "annotator": "llm:x",
            "rationale": "r",
        }
        return Completion(run_id, cost_usd=0.5, replace={"llm:x": [label]}, metadata={"judge": {"mode": mode}},
                          attributions=[{"method": "test", "annotator": "test"}], run_steps=0)  # fmt: skip

    group = [done(ids[0], "FM-1.1"), done(ids[1], "FM-1.2"), done(ids[2], "FM-1.3")]
    assert mine.complete("j-g", group) == ids[:2]
    assert mine.complete("j-g", group) == []  # done already: nothing written twice
    for run_id, mode in zip(ids[:2], ["FM-1.1", "FM-1.2"], strict=True):
        assert [a.mode for a in qstore.annotations(run_id)] == [mode]
        assert len(qstore.attributions(run_id)) == 1
    assert qstore.get_run(ids[0]).metadata_ == {"kept": 1, "judge": {"mode": "FM-1.1"}}
    assert qstore.get_run(ids[1]).metadata_ == {"judge": {"mode": "FM-1.2"}}
    assert qstore.annotations(ids[2]) == [] and qstore.attributions(ids[2]) == []
    assert qstore.get_run(ids[2]).metadata_ in ({}, None)
    states = mine.states("j-g")
    assert [states[r].status for r in ids] == ["done", "done", "pending"]
    assert states[ids[2]].claimed_by == other.worker_id
    job = qstore.get_job("j-g")
    assert job is not None and job.done == 2 and job.cost_usd == 1.0


def test_a_heartbeat_keeps_the_items_of_a_live_worker(qstore: TraceStore) -> None:
    live, other = JobQueue(qstore), JobQueue(qstore)
    live.ensure_job("j-3", kind="tests.jobs.workers:label", config={})
    live.enqueue("j-3", ["a", "b"])
    live.claim("j-3", 2, lease_s=0.05)
    time.sleep(0.1)
    assert live.heartbeat("j-3", ["a", "b"], lease_s=60) == {"a", "b"}
    assert other.claim("j-3", 2) == []
    live.release("j-3", ["a"])
    assert [c.key for c in other.claim("j-3", 2)] == ["a"]


def test_a_completed_item_is_not_claimed_again_until_requeued(qstore: TraceStore) -> None:
    q = JobQueue(qstore)
    q.ensure_job("j-4", kind="tests.jobs.workers:label", config={})
    q.enqueue("j-4", {"t1": {"task": "2 + 2"}, "t2": None})
    claimed = {c.key: c for c in q.claim("j-4", 5)}
    assert claimed["t1"].payload == {"task": "2 + 2"} and claimed["t2"].payload is None
    assert q.complete("j-4", [Completion("t1", result={"ok": True}), Completion("t2", status="failed", error="bad")]) == ["t1", "t2"]  # fmt: skip
    assert q.claim("j-4", 5) == []
    seen = q.states("j-4")
    assert seen["t1"].result == {"ok": True} and seen["t2"].status == "failed"
    # Two schedulers decide to redo t2 from what they saw: it is redone once.
    assert q.requeue("j-4", {"t2": seen["t2"].attempts}) == 1
    assert q.requeue("j-4", {"t2": seen["t2"].attempts}) == 0
    assert [c.key for c in q.claim("j-4", 5)] == ["t2"]


def _drain(target: str, job: str, reports: list[BatchReport]) -> None:
    with TraceStore(target) as store:  # each worker its own connections
        reports.append(asyncio.run(drain_job(store, job, concurrency=3)))


def test_two_workers_in_threads_share_a_job_and_label_each_item_once(
    qstore: TraceStore, target: str
) -> None:
    ids = runs(qstore, 24)
    q = JobQueue(qstore)
    q.ensure_job("j-5", kind="tests.jobs.workers:label", config={"delay": 0.02})
    q.enqueue("j-5", ids)
    reports: list[BatchReport] = []
    threads = [threading.Thread(target=_drain, args=(target, "j-5", reports)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(reports) == 2
    assert sum(r.judged for r in reports) == 24 and sum(r.lost for r in reports) == 0
    assert [r.total for r in reports] == [24, 24]  # each worker's progress counts the whole job
    assert attributions(qstore, ids) == dict.fromkeys(ids, 1)
    assert {s.status for s in q.states("j-5").values()} == {"done"}


async def test_a_worker_waits_for_items_held_elsewhere_and_takes_them_over_when_the_lease_lapses(
    qstore: TraceStore,
) -> None:
    ids = runs(qstore, 3)
    gone = JobQueue(qstore)  # a worker that claimed and then vanished without a trace
    gone.ensure_job("j-6", kind="tests.jobs.workers:label", config={})
    gone.enqueue("j-6", ids)
    gone.claim("j-6", 1, lease_s=0.5)
    report = BatchReport(job_id="j-6", total=3)
    built = build_work("tests.jobs.workers:label", qstore, {})
    await run_job(qstore, job_id="j-6", work=built.work, report=report, lease_s=30)
    assert report.judged == 3
    assert attributions(qstore, ids) == dict.fromkeys(ids, 1)


def test_unknown_work_names_what_is_registered(qstore: TraceStore) -> None:
    assert label_work  # registered on import
    with pytest.raises(ConfigError, match=r"no work registered as 'nope' \(known: .*judge"):
        build_work("nope", qstore, {})


def test_without_ray_workers_are_refused_naming_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    from typer.testing import CliRunner

    from mascope.cli import app

    monkeypatch.setitem(sys.modules, "ray", None)  # what an install without the extra sees
    team = tmp_path / "team.yaml"
    team.write_text(
        "name: t\nagents: [{name: a, role: r}]\ntopology: {kind: pipeline, stages: [a]}\n"
    )
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text('{"task": "x"}\n')
    db = tmp_path / "new.db"
    for args in (
        ["eval", "run", str(team), "--tasks", str(tasks), "--workers", "2", "--db", str(db)],
        ["judge", "--all", "--workers", "2", "--db", str(db)],
    ):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2, result.output
        assert result.stderr.strip() == (
            "error: --workers runs on Ray, which is not installed; pip install 'mascope[ray]'"
        )
    assert not db.exists()


def test_why_a_job_stopped_is_stored_without_secrets(qstore: TraceStore) -> None:
    """A job stops with its endpoint's error text, which may echo a key back."""
    key = "sk-proj-AbCdEf0123456789AbCdEf0123456789AbCdEf01"
    queue = JobQueue(qstore)
    queue.ensure_job("j-secret", kind="judge", config={})
    queue.finish_job("j-secret", status="stopped", error=f"endpoint said 401 for key {key}")
    job = qstore.get_job("j-secret")
    assert job is not None and job.status == "stopped"
    assert key not in (job.error or "") and "401" in (job.error or "")
