"""Workers in separate processes sharing a job: killed, stalled, and two `mascope judge` at once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from mascope.jobs import JobQueue
from mascope.traces import TraceStore

from ..diagnosis.test_batch import GOOD
from .test_queue import attributions, runs

ROOT = Path(__file__).resolve().parents[2]


def _env(log: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "MASCOPE_TEST_LOG": str(log)}


def _worker(target: str, job: str, *, lease: float, concurrency: int = 2) -> list[str]:
    return [sys.executable, "-m", "tests.jobs.workers", target, job, "--lease", str(lease),
            "--concurrency", str(concurrency)]  # fmt: skip


def _log(log: Path) -> list[tuple[str, str, int]]:
    if not log.exists():
        return []
    return [(w, k, int(p)) for w, k, p in (line.split() for line in log.read_text().splitlines())]


def _wait_for_starts(log: Path, n: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while sum(what == "start" for what, _, _ in _log(log)) < n:
        assert proc.poll() is None, "the worker exited before starting its items"
        assert time.monotonic() < deadline, "the worker never started its items"
        time.sleep(0.02)


def _queue_job(store: TraceStore, job: str, n: int, delay: float) -> list[str]:
    ids = runs(store, n)
    q = JobQueue(store)
    q.ensure_job(job, kind="tests.jobs.workers:label", config={"delay": delay})
    q.enqueue(job, ids)
    return ids


def test_a_worker_killed_mid_item_loses_nothing_and_nothing_is_done_twice(
    qstore: TraceStore, target: str, tmp_path: Path
) -> None:
    ids = _queue_job(qstore, "j-kill", 10, delay=0.4)
    log = tmp_path / "work.log"
    first = subprocess.Popen(_worker(target, "j-kill", lease=300, concurrency=3), env=_env(log))
    _wait_for_starts(log, 4, first)  # past its first items, in the middle of others
    first.send_signal(signal.SIGKILL)
    first.wait()
    cut_off = {k for w, k, p in _log(log) if p == first.pid and w == "start"} - {
        k for w, k, p in _log(log) if p == first.pid and w == "end"
    }
    assert cut_off, "the worker was not killed mid-item"
    # Its lease has 300 s to run, but its process is gone: the next worker takes its items at once.
    second = subprocess.run(
        _worker(target, "j-kill", lease=300),
        env=_env(log),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert second.returncode == 0, second.stderr
    states = JobQueue(qstore).states("j-kill")
    assert {s.status for s in states.values()} == {"done"}  # nothing lost
    assert attributions(qstore, ids) == dict.fromkeys(ids, 1)  # nothing labelled twice
    assert all(states[k].result != {"pid": first.pid} for k in cut_off)


def test_a_stalled_worker_loses_its_items_when_its_lease_lapses_and_its_late_results_are_dropped(
    qstore: TraceStore, target: str, tmp_path: Path
) -> None:
    ids = _queue_job(qstore, "j-stall", 6, delay=1.5)
    log = tmp_path / "work.log"
    stalled = subprocess.Popen(
        _worker(target, "j-stall", lease=1.0), env=_env(log), stdout=subprocess.PIPE, text=True
    )
    try:
        _wait_for_starts(log, 2, stalled)
        stalled.send_signal(signal.SIGSTOP)  # alive, but it no longer heartbeats
        held = {k for w, k, p in _log(log) if p == stalled.pid}
        other = subprocess.run(
            _worker(target, "j-stall", lease=30, concurrency=3), env=_env(log),
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert other.returncode == 0, other.stderr
        assert {s.status for s in JobQueue(qstore).states("j-stall").values()} == {"done"}
    finally:
        stalled.send_signal(signal.SIGCONT)
    out, _ = stalled.communicate(timeout=60)
    judged, lost = map(int, out.split())
    # It finished the items it held, but another worker had taken them over: none of it is kept.
    assert (judged, lost) == (0, len(held))
    assert attributions(qstore, ids) == dict.fromkeys(ids, 1)
    assert {r.agent for r in (qstore.attributions(i)[0] for i in ids)} == {
        f"pid-{other_pid(log, stalled.pid)}"
    }


def other_pid(log: Path, not_pid: int) -> int:
    (pid,) = {p for _, _, p in _log(log) if p != not_pid}
    return pid


def test_two_judge_processes_on_one_job_share_the_runs_without_duplicates(tmp_path: Path) -> None:
    db = tmp_path / "judge.db"
    with TraceStore(db) as store:
        ids = runs(store, 16)
        for rid in ids:  # the judge needs a step to look at
            store.reopen_run(rid)
            store.append_step(rid, agent="a", content="an answer")
            store.finish_run(rid, status="failed")
    script = tmp_path / "judge.yaml"
    script.write_text(json.dumps([GOOD] * 16))
    # A request rate slows each process down, so both are at work on the job at once.
    cmd = [sys.executable, "-m", "mascope.cli", "judge", "--all", "--db", str(db),
           "-m", f"scripted:{script}", "--concurrency", "2", "--rpm", "300", "--json"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)]  # fmt: skip
    outs = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [e for _, e in outs]
    reports = [json.loads(o) for o, _ in outs]
    assert sum(r["judged"] for r in reports) == 16
    assert all(r["judged"] > 0 for r in reports), reports  # both did some of the job
    assert all(r["judged"] + r["elsewhere"] + r["skipped"] == 16 for r in reports)
    with TraceStore(db) as store:
        for rid in ids:
            llm = [a for a in store.annotations(rid) if a.annotator.startswith("llm:")]
            assert len(llm) == 14 and len({a.mode for a in llm}) == 14  # one label per mode
        job = store.get_job(reports[0]["job"])
        assert job is not None and job.done == 16
