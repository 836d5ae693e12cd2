"""The job queue: `eval run` throughput, and workers killed mid-item as numbers.

    .venv/bin/python benchmarks/bench_queue.py --write docs/benchmarks.md
    .venv/bin/python benchmarks/bench_queue.py --judge [--repeats 3] --write docs/benchmarks.md

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

Judge on Ray (`--judge`, its own section): `mascope judge --all` of ITEMS failed
runs in a PostgreSQL store against a loopback OpenAI-compatible server (its own
process) that answers every request with a valid judgement after LATENCY s,
with 1, 2 and 4 Ray workers of CONCURRENCY runs each, beside the in-process
executor at the same total concurrency; a fresh database per case. items/s
counts from the first claim to the last completion, read from the job's rows
(a poller sees the first claim; the last completion is its `updated_at`), so
the command's start-up (Python, the store, Ray) is reported apart.
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
from _report import machine, median, write_section
from bench_judge import slow_server

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mascope.jobs import JobQueue  # noqa: E402
from mascope.traces import TraceStore  # noqa: E402
from tests.evals.test_eval_run import scripted_team  # noqa: E402
from tests.jobs.test_workers import _queue_job  # noqa: E402


def _env(**extra: str) -> dict[str, str]:
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{path}" if path else str(ROOT), **extra}


def eval_case(tmp: Path, tasks: int, *extra: str) -> tuple[float, dict[str, object]]:
    """Seconds for one `mascope eval run` (fresh store) and its JSON report."""
    team = scripted_team(tmp, tasks)  # the eval tests' one-agent team
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
    with TraceStore(target) as store:  # the queue tests' job of tests.jobs.workers:label items
        return _queue_job(store, job, items, delay)


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


# -- judge on Ray, PostgreSQL -------------------------------------------------------


def _failed_runs(url: str, items: int) -> None:
    with TraceStore(url) as store:
        for i in range(items):
            rid = store.start_run(team="t", task=f"task {i}")
            store.append_step(rid, agent="a", content=f"an answer {i}")
            store.finish_run(rid, status="failed")


class _Watch:
    """Polls the job rows while a command runs: each worker's first claim."""

    def __init__(self, url: str):
        import psycopg

        self.conn = psycopg.connect(url, autocommit=True)
        self.firsts: dict[str, float] = {}
        """Each worker's earliest claim seen (epoch seconds)."""
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        # A claim holds for the endpoint's latency (>= 1 s here), so a 50 ms poll sees the first.
        while not self.stop.wait(0.05):
            rows = self.conn.execute("SELECT claimed_by, extract(epoch from min(claimed_at)) FROM job_items WHERE claimed_at IS NOT NULL GROUP BY claimed_by").fetchall()  # fmt: skip
            for worker, at in rows:
                self.firsts[worker] = min(self.firsts.get(worker, float(at)), float(at))

    @property
    def first_claim(self) -> float | None:
        return min(self.firsts.values(), default=None)

    @property
    def all_claiming(self) -> float | None:
        """When the last worker to start claimed its first item."""
        return max(self.firsts.values(), default=None)

    def last_done(self) -> tuple[int, float]:
        row = self.conn.execute("SELECT count(*), extract(epoch from max(updated_at)) FROM job_items WHERE status = 'done'").fetchone()  # fmt: skip
        assert row is not None
        return int(row[0]), float(row[1] or 0.0)

    def __enter__(self) -> _Watch:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        self.conn.close()


def judge_case(server: object, endpoint: str, items: int, *extra: str) -> dict[str, float]:
    """One `mascope judge --all` on a fresh PostgreSQL database: start-up, items/s, items done."""
    url = server.database()  # type: ignore[attr-defined]
    _failed_runs(url, items)
    cmd = [sys.executable, "-m", "mascope.cli", "judge", "--all", "--db", url,
           "-m", f"openai:judge@{endpoint}", "--json", *extra]  # fmt: skip
    with _Watch(url) as watch:
        started = time.time()
        done = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=1800, cwd=ROOT)  # fmt: skip
        ended = time.time()
        if done.returncode != 0:
            raise SystemExit(f"judge {' '.join(extra)} failed: {done.stderr[-3000:]}")
        count, last = watch.last_done()
    report = json.loads(done.stdout)
    first = watch.first_claim or started
    return {"done": count, "judged": float(report["judged"]), "startup_s": first - started,
            "stagger_s": (watch.all_claiming or first) - first, "workers": len(watch.firsts),
            "busy_s": last - first, "items_s": count / (last - first), "wall_s": ended - started}  # fmt: skip


def ray_judge(
    items: int, latency: float, concurrency: int, ray_workers: list[int], repeats: int
) -> tuple[list[str], float]:
    """Rows of the judge-on-Ray table (medians over `repeats`), and the load average seen."""
    from tests import postgres as pg

    bin_dir = pg.find_bin()
    if bin_dir is None:
        raise SystemExit("no PostgreSQL binaries (initdb, pg_ctl): install Debian's postgresql")
    rows = []
    loads = []
    cases = [(f"{w} Ray worker(s) x concurrency {concurrency}", w * concurrency, ("--workers", str(w), "--concurrency", str(concurrency))) for w in ray_workers]  # fmt: skip
    cases += [(f"in-process, concurrency {w * concurrency}", w * concurrency, ("--concurrency", str(w * concurrency))) for w in ray_workers]  # fmt: skip
    results: dict[str, list[dict[str, float]]] = {name: [] for name, _, _ in cases}
    server = pg.start(bin_dir)
    try:
        with tempfile.TemporaryDirectory() as tmp, slow_server(Path(tmp), latency) as endpoint:
            for r in range(repeats):
                for name, _, extra in cases:
                    got = judge_case(server, endpoint, items, *extra)
                    if got["done"] != items or got["judged"] != items:
                        raise SystemExit(f"{name}: {got['done']} of {items} done")
                    results[name].append(got)
                    loads.append(os.getloadavg()[0])
                    print(f"repeat {r + 1}: {name}: {got}", flush=True)
    finally:
        server.stop()
    for name, slots, _ in cases:
        got = results[name]
        ideal = slots / latency
        speed = median([g["items_s"] for g in got])
        each = ", ".join(f"{g['items_s']:.2f}" for g in got)
        rows.append(f"| {name} | {slots} | {median([g['startup_s'] for g in got]):.1f} | {median([g['stagger_s'] for g in got]):.1f} | {speed:.2f} | {ideal:.2f} | {speed / ideal:.2f} | {each} |")  # fmt: skip
        print(rows[-1], flush=True)
    return rows, median(loads)


def judge_main(args: argparse.Namespace, ray_workers: list[int]) -> None:
    items, latency, c = args.judge_items, args.judge_latency, args.judge_concurrency
    rows, load = ray_judge(items, latency, c, ray_workers, args.repeats)
    body = f"""## Judge batch on Ray workers, PostgreSQL store

Measured on {machine()} (median load average {load:.1f} during the runs: other sessions
shared the 2 cores, so these are lower bounds) with
`python benchmarks/bench_queue.py --judge --repeats {args.repeats} --write docs/benchmarks.md`.

`mascope judge --all` of {items} failed one-step runs in a PostgreSQL 15 store (a fresh
database per case) against a loopback OpenAI-compatible server in its own process that
answers every request with a valid judgement after {latency} s (one request per run), so the
workers wait on the endpoint, not on the 2 cores. Ideal: total concurrency / latency.
items/s counts from the first item claimed to the last completed (from the job's rows);
start-up is the command's start to the first claim (Python, the store, the job and, on
Ray, the local Ray runtime and its workers). Ray workers come up one after another, so
the first claims its items before the others start: the fourth column is how long after
the first claim the last worker made its first one (within the measured span). Median
of {args.repeats}; each repeat's items/s in the last column.

| executor | total concurrency | start-up s | last worker's first claim, s after the first | items/s | ideal items/s | fraction of ideal | items/s each repeat |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |
{chr(10).join(rows)}
"""
    print(body)
    if args.write:
        write_section(args.write, "queue-ray-judge", body)


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
    parser.add_argument("--judge", action="store_true", help="only the judge on Ray, PostgreSQL")
    parser.add_argument("--judge-items", type=int, default=128)
    parser.add_argument("--judge-latency", type=float, default=1.5)
    parser.add_argument("--judge-concurrency", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    ray_workers = [int(w) for w in args.ray_workers.split(",") if w]
    if args.judge:
        judge_main(args, ray_workers)
        return
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
