"""A job on a real local Ray runtime, with a Ray worker killed mid-job; `eval run --workers`."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mascope.cli import app
from mascope.jobs import JobQueue, run_on_ray
from mascope.traces import TraceStore

from ..evals.test_eval_run import scripted_team, write_tasks
from .test_queue import attributions
from .test_workers import _log, _queue_job

pytestmark = pytest.mark.slow  # starts a Ray runtime (several seconds on 2 cores)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _ray_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    # Ray's workers inherit the environment: this checkout (and its tests) on the path.
    path = os.environ.get("PYTHONPATH", "")
    monkeypatch.setenv("PYTHONPATH", f"{ROOT}{os.pathsep}{path}" if path else str(ROOT))
    log = tmp_path / "work.log"
    monkeypatch.setenv("MASCOPE_TEST_LOG", str(log))
    return log


def test_a_ray_worker_killed_mid_job_loses_nothing_and_labels_nothing_twice(
    store: TraceStore, _ray_env: Path
) -> None:
    ids = _queue_job(store, "j-ray", 16, delay=0.3)
    killed: list[int] = []

    def kill_one_worker() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            started = [p for what, _, p in _log(_ray_env) if what == "start"]
            if len(started) >= 3:  # the job is under way; kill the worker of a started item
                killed.append(started[-1])
                os.kill(started[-1], signal.SIGKILL)
                return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_one_worker)
    killer.start()
    reports = run_on_ray(store, "j-ray", workers=2, concurrency=2, lease_s=30)
    killer.join()
    assert killed, "no worker was killed"
    states = JobQueue(store).states("j-ray")
    assert {s.status for s in states.values()} == {"done"}  # nothing lost
    assert attributions(store, ids) == dict.fromkeys(ids, 1)  # nothing done twice
    # What the killed worker had started and not finished was done by another worker.
    cut = {k for w, k, p in _log(_ray_env) if p == killed[0] and w == "start"} - {
        k for w, k, p in _log(_ray_env) if p == killed[0] and w == "end"
    }
    assert cut and all(states[k].result != {"pid": killed[0]} for k in cut)
    assert sum(r.done for r in reports) <= 16


def test_eval_run_on_ray_workers(tmp_path: Path) -> None:
    team = scripted_team(tmp_path, 10)
    tasks = write_tasks(tmp_path / "tasks.jsonl", ["4", "5"] * 5)
    db = tmp_path / "eval.db"
    args = ["eval", "run", str(team), "--tasks", str(tasks), "--db", str(db), "--workers", "2", "--json"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["runs"], report["succeeded"], report["ran_now"]) == (10, 5, 10)
    with TraceStore(db) as store:
        assert len(store.list_runs(limit=100)) == 10


def test_judge_all_on_ray_workers_labels_each_run_once(tmp_path: Path, target: str) -> None:
    # On SQLite and on PostgreSQL: each Ray worker opens the store from its address.
    from ..diagnosis.test_batch import GOOD

    db = target
    with TraceStore(db) as store:
        ids = []
        for i in range(8):
            rid = store.start_run(team="t", task=f"task {i}")
            store.append_step(rid, agent="a", content="an answer")
            store.finish_run(rid, status="failed")
            ids.append(rid)
        live = store.start_run(team="t", task="still going")  # left for a later batch
    script = tmp_path / "judge.json"
    script.write_text(json.dumps([GOOD] * 8))  # each worker builds its own scripted judge
    args = ["judge", "--all", "--db", db, "-m", f"scripted:{script}", "--workers", "2", "--json"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["judged"], report["running"], report["not_judged"]) == (8, 1, 0)
    assert report["modes"] == {"FM-1.3": 8}
    with TraceStore(db) as store:
        for rid in ids:
            assert sum(a.annotator.startswith("llm:") for a in store.annotations(rid)) == 14
        assert store.annotations(live) == []


def test_attribute_all_on_ray_workers_is_the_same_job_as_in_process(tmp_path: Path) -> None:
    from ..diagnosis.test_attribution import failed_run

    db = tmp_path / "attr.db"
    with TraceStore(db) as store:
        ids = [failed_run(store) for _ in range(4)]
    script = tmp_path / "s.json"
    script.write_text(json.dumps([json.dumps({"agent": "solver", "step": 1, "reason": "r"})] * 4))
    args = ["attribute", "--all", "--method", "all-at-once", "-m", f"scripted:{script}", "--db", str(db), "--json"]  # fmt: skip
    on_ray = CliRunner().invoke(app, [*args, "--workers", "2"])
    assert on_ray.exit_code == 0, on_ray.output
    data = json.loads(on_ray.stdout)
    assert (data["attributed"], data["blamed_agents"]) == (4, {"solver": 4})
    here = json.loads(CliRunner().invoke(app, args).stdout)
    assert (here["job"], here["attributed"], here["skipped"]) == (data["job"], 0, 4)
    with TraceStore(db) as store:
        assert all(len(store.attributions(r)) == 1 for r in ids)


def test_ctrl_c_stops_the_ray_workers_and_says_what_they_did(tmp_path: Path) -> None:
    import subprocess
    import sys

    from ..diagnosis.test_batch import GOOD, fill
    from ..models.servers import Fault, FaultServer

    db = tmp_path / "stop.db"
    with TraceStore(db) as store:
        ids = fill(store, 12)

    def judged() -> int:
        with TraceStore(db) as store:
            return sum(
                any(a.annotator.startswith("llm:") for a in store.annotations(r)) for r in ids
            )

    with FaultServer() as server:
        server.default = Fault(answer=GOOD, stall=0.5)
        args = ["judge", "--all", "--db", str(db), "-m", f"openai:judge@{server.url}", "--json"]
        proc = subprocess.Popen(
            [sys.executable, "-m", "mascope.cli", *args, "--workers", "2", "--concurrency", "1"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while judged() < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        out, errs = proc.communicate(timeout=120)
        assert proc.returncode == 130, errs
        report = json.loads(out)
        assert report["interrupted"] is True
        assert 2 <= report["judged"] < 12 and "Traceback" not in errs
        # What the workers finished stays; the same command in this process does the rest.
        server.default = Fault(answer=GOOD)
        again = CliRunner().invoke(app, args)
        assert again.exit_code == 0, again.output
        assert json.loads(again.stdout)["skipped"] >= report["judged"]
    with TraceStore(db) as store:
        for rid in ids:
            assert sum(a.annotator.startswith("llm:") for a in store.annotations(rid)) == 14


def test_ctrl_c_stops_an_eval_on_ray_and_counts_the_tasks_its_workers_ran(tmp_path: Path) -> None:
    import subprocess
    import sys

    from ..evals.test_eval_run import SLOW_TEAM, SLOWMATH

    # A second a task, one at a time on each of two workers: Ctrl-C lands mid-eval.
    (tmp_path / "slowmath.py").write_text(SLOWMATH.replace("0.4", "1.0"))
    team = tmp_path / "team.yaml"
    team.write_text(SLOW_TEAM)
    tasks = write_tasks(tmp_path / "tasks.jsonl", ["4"] * 12)
    db = tmp_path / "eval.db"
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ['PYTHONPATH']}"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mascope.cli", "eval", "run", str(team), "--tasks", str(tasks),
         "--db", str(db), "--workers", "2", "--concurrency", "1", "--json"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip

    def finished() -> int:
        if not db.exists():
            return 0
        with TraceStore(db) as store:
            return sum(r.status == "succeeded" for r in store.list_runs(limit=100))

    deadline = time.monotonic() + 120
    while finished() < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, errs = proc.communicate(timeout=120)
    assert proc.returncode == 130, errs
    report = json.loads(out)
    assert report["interrupted"] is True and "Traceback" not in errs
    # The tasks run now are the ones the stopped workers finished, as the store says.
    assert 2 <= report["ran_now"] == report["runs"] < 12
