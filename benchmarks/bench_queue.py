"""The job queue: `eval run` throughput, and workers killed mid-item as numbers.

    .venv/bin/python benchmarks/bench_queue.py --write docs/benchmarks.md

Throughput: `mascope eval run` of TASKS tasks on a one-agent team with a scripted
model (so the runtime, the recorder and the queue are measured, not a model):
tasks/s with the in-process executor at several concurrencies, and with 1, 2 and
4 Ray workers on a local Ray runtime (wall time from the command's start,
the runtime's start-up included). SQLite store.

Kill trials: a job of ITEMS items (each sleeps 0.2 s, then labels its run with one
attribution committed with the item's completion) is started by a worker process
that is SIGKILLed after a random number of started items; a second worker
finishes the job. Stall trials SIGSTOP the first worker instead (alive, no
heartbeat, lease 1 s) and let it go on after the second worker finished, so its
late completions must be dropped. Ray trials kill one Ray worker process mid-job.
Lost: items not done at the end. Done twice: runs with more than one attribution.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine, write_section

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mascope.jobs import JobQueue  # noqa: E402
from mascope.traces import TraceStore  # noqa: E402

TEAM = """
name: adder
model: scripted:{script}
agents:
  - name: solver
    role: arithmetic solver
    goal: Add the numbers.
topology:
  kind: pipeline
  stages: [solver]
"""
KIND = "tests.jobs.workers:label"


def _env(**extra: str) -> dict[str, str]:
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{path}" if path else str(ROOT), **extra}


def eval_case(tmp: Path, tasks: int, *extra: str) -> tuple[float, dict[str, object]]:
    """Seconds for one `mascope eval run` (fresh store) and its JSON report."""
    script = tmp / "replies.json"
    script.write_text(json.dumps(["ANSWER: 4"] * tasks))
    team = tmp / "team.yaml"
    team.write_text(TEAM.format(script=script))
    file = tmp / "tasks.jsonl"
    file.write_text("".join(json.dumps({"id": f"t{i:04d}", "task": f"What is {i % 3 + 2} + 2?", "ground_truth": str(i % 3 + 4)}) + "\n" for i in range(tasks)))  # fmt: skip
    db = tmp / f"eval-{time.monotonic_ns()}.db"
    cmd = [sys.executable, "-m", "mascope.cli", "eval", "run", str(team), "--tasks", str(file),
           "--db", str(db), "--json", *extra]  # fmt: skip
    started = time.monotonic()
    done = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=1800)
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"eval run failed: {done.stderr[-2000:]}")
    return elapsed, json.loads(done.stdout)


def throughput(tasks: int, concurrencies: list[int], ray_workers: list[int]) -> list[str]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for c in concurrencies:
            elapsed, report = eval_case(Path(tmp), tasks, "--concurrency", str(c))
            inner = float(report["elapsed_s"])  # type: ignore[arg-type]
            rows.append(f"| in-process, concurrency {c} | {tasks} | {tasks / inner:.1f} | {tasks / elapsed:.1f} | {report['succeeded']}/{report['runs']} |")  # fmt: skip
            print(rows[-1], flush=True)
        for w in ray_workers:
            elapsed, report = eval_case(Path(tmp), tasks, "--workers", str(w), "--concurrency", "8")
            inner = float(report["elapsed_s"])  # type: ignore[arg-type]
            rows.append(f"| {w} Ray worker(s), concurrency 8 each | {tasks} | {tasks / inner:.1f} | {tasks / elapsed:.1f} | {report['succeeded']}/{report['runs']} |")  # fmt: skip
            print(rows[-1], flush=True)
    return rows


def _runs(store: TraceStore, n: int) -> list[str]:
    ids = []
    for i in range(n):
        rid = store.start_run(team="t", task=f"item {i}")
        store.finish_run(rid, status="failed")
        ids.append(rid)
    return ids


def _starts(log: Path) -> list[tuple[str, int]]:
    if not log.exists():
        return []
    return [(k, int(p)) for w, k, p in (line.split() for line in log.read_text().splitlines()) if w == "start"]  # fmt: skip


def _tally(store: TraceStore, job: str, ids: list[str]) -> tuple[int, int]:
    states = JobQueue(store).states(job)
    lost = sum(states[r].status != "done" for r in ids)
    twice = sum(len(store.attributions(r)) > 1 for r in ids)
    return lost, twice


def _queue(target: str, items: int, job: str, delay: float) -> list[str]:
    with TraceStore(target) as store:
        ids = _runs(store, items)
        q = JobQueue(store)
        q.ensure_job(job, kind=KIND, config={"delay": delay})
        q.enqueue(job, ids)
    return ids


def _worker(target: str, job: str, lease: float, log: Path) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "tests.jobs.workers", target, job, "--lease", str(lease), "--concurrency", "3"]  # fmt: skip
    return subprocess.Popen(cmd, env=_env(MASCOPE_TEST_LOG=str(log)), stdout=subprocess.PIPE, text=True, cwd=ROOT)  # fmt: skip


def _wait_starts(log: Path, n: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    while len(_starts(log)) < n and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)


def kill_trial(
    target: str, tmp: Path, trial: int, items: int, rng: random.Random
) -> tuple[int, int, int]:
    job = f"kill-{trial}"
    log = (
        tmp / f"kill-{trial}-{time.monotonic_ns()}.log"
    )  # its own log: starts of other trials must not count
    ids = _queue(target, items, job, 0.2)
    first = _worker(target, job, 300, log)
    _wait_starts(log, rng.randint(1, items - 3), first)
    first.send_signal(signal.SIGKILL)
    first.wait()
    cut = {k for k, p in _starts(log) if p == first.pid}
    second = _worker(target, job, 300, log)
    second.communicate(timeout=300)
    with TraceStore(target) as store:
        lost, twice = _tally(store, job, ids)
    return lost, twice, len(cut)


def stall_trial(target: str, tmp: Path, trial: int, items: int) -> tuple[int, int, int]:
    job = f"stall-{trial}"
    log = tmp / f"stall-{trial}-{time.monotonic_ns()}.log"
    ids = _queue(target, items, job, 0.8)
    first = _worker(target, job, 1.0, log)
    _wait_starts(log, 2, first)
    first.send_signal(signal.SIGSTOP)
    second = _worker(target, job, 30, log)
    second.communicate(timeout=300)
    first.send_signal(signal.SIGCONT)
    out, _ = first.communicate(timeout=120)
    dropped = int(out.split()[1])
    with TraceStore(target) as store:
        lost, twice = _tally(store, job, ids)
    return lost, twice, dropped


def ray_trial(target: str, tmp: Path, trial: int, items: int) -> tuple[int, int, int]:
    from mascope.jobs import run_on_ray

    job = f"ray-{trial}"
    log = tmp / f"ray-{trial}-{time.monotonic_ns()}.log"
    ids = _queue(target, items, job, 0.2)
    os.environ.update(_env(MASCOPE_TEST_LOG=str(log)))
    killed: list[int] = []

    def killer() -> None:
        deadline = time.monotonic() + 300
        while len(_starts(log)) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        pid = _starts(log)[-1][1]
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    thread = threading.Thread(target=killer)
    thread.start()
    with TraceStore(target) as store:
        run_on_ray(store, job, workers=2, concurrency=3, lease_s=30)
        thread.join()
        lost, twice = _tally(store, job, ids)
    return lost, twice, 1


def kills(trials: int, stalls: int, ray_trials: int, items: int, postgres: bool) -> list[str]:
    rng = random.Random(13)
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        targets = [("SQLite", str(tmp / "kill.db"))]
        server = None
        if postgres:
            sys.path.insert(0, str(ROOT))
            from tests import postgres as pg

            bin_dir = pg.find_bin()
            if bin_dir is not None:
                server = pg.start(bin_dir)
                targets.append(("PostgreSQL 15", server.database().replace("postgresql://", "postgresql+psycopg://", 1)))  # fmt: skip
        try:
            for name, target in targets:
                results = [kill_trial(target, tmp, i, items, rng) for i in range(trials)]
                rows.append(f"| SIGKILL a worker process mid-item, another finishes ({name}) | {trials} | {sum(r[2] for r in results)} | {sum(r[0] for r in results)} | {sum(r[1] for r in results)} |")  # fmt: skip
                print(rows[-1], flush=True)
                results = [stall_trial(target, tmp, i, items) for i in range(stalls)]
                rows.append(f"| SIGSTOP a worker past its lease, another takes over, the first resumes ({name}); late results dropped: {sum(r[2] for r in results)} | {stalls} | {sum(r[2] for r in results)} | {sum(r[0] for r in results)} | {sum(r[1] for r in results)} |")  # fmt: skip
                print(rows[-1], flush=True)
            for i in range(ray_trials):
                lost, twice, _ = ray_trial(targets[0][1], tmp, i, items)
                rows.append(f"| SIGKILL a Ray worker mid-job (local Ray runtime, 2 workers, SQLite) | 1 | - | {lost} | {twice} |")  # fmt: skip
                print(rows[-1], flush=True)
        finally:
            if server is not None:
                server.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--ray-workers", default="1,2,4")
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--stalls", type=int, default=3)
    parser.add_argument("--ray-trials", type=int, default=1)
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    ray_workers = [int(w) for w in args.ray_workers.split(",") if w]
    speed = throughput(args.tasks, [int(c) for c in args.concurrency.split(",")], ray_workers)
    killed = kills(args.trials, args.stalls, args.ray_trials, args.items, not args.no_postgres)
    load = os.getloadavg()[0]
    body = f"""## Job queue: eval throughput and killed workers

Measured on {machine()} (load average {load:.1f} at the end: other work shared the 2 cores) with
`python benchmarks/bench_queue.py --write docs/benchmarks.md`.

`mascope eval run` of {args.tasks} tasks, a one-agent team on a scripted model (the runtime,
recorder and queue are measured, not a model), SQLite store. "tasks/s" counts from the first
claim to the last completion; "end to end" is the whole command, Python and (for Ray) the
local Ray runtime's start-up included.

| executor | tasks | tasks/s | end to end tasks/s | succeeded |
| --- | ---: | ---: | ---: | ---: |
{chr(10).join(speed)}

Workers killed mid-job ({args.items} items a job, each 0.2 s of work whose result is one
attribution committed with the item's completion). Lost: items not done at the end; done
twice: runs labelled more than once. Both must be 0.

| trial | trials | items the first worker had started (SIGKILL) / whose late results it had dropped (SIGSTOP) | items lost | items done twice |
| --- | ---: | ---: | ---: | ---: |
{chr(10).join(killed)}
"""
    print(body)
    if args.write:
        write_section(args.write, "queue", body)


if __name__ == "__main__":
    asyncio.set_event_loop_policy(None)
    main()
