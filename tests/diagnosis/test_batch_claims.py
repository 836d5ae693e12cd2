"""Batch jobs over a live store: running runs wait, grown runs are redone, workers claim before working."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from typer.testing import CliRunner

from mascope.cli import app
from mascope.diagnosis import JudgeConfig, ajudge_many
from mascope.diagnosis._batch import job_id_for
from mascope.jobs import BatchReport
from mascope.traces import TraceStore

from ..models.servers import Fault, FaultServer
from .test_batch import GOOD, fill, model_for, slow

runner = CliRunner()
CONFIG = JudgeConfig(model="openai:judge")


def llm_labels(store: TraceStore, run_id: str) -> int:
    return sum(a.annotator.startswith("llm:") for a in store.annotations(run_id))


async def test_running_runs_wait_and_a_run_that_grew_is_judged_again(store: TraceStore) -> None:
    done = fill(store, 2)
    live = store.start_run(team="t", task="still going")
    store.append_step(live, agent="a", content="first step")
    with FaultServer() as server:
        server.default = Fault(answer=GOOD)
        first = await ajudge_many(store, [*done, live], config=CONFIG, model=model_for(server))
        assert (first.judged, first.running, first.skipped) == (2, 1, 0)
        assert llm_labels(store, live) == 0 and len(server.requests) == 2

        # The live run ends with more steps; the others did not change.
        store.append_step(live, agent="a", content="the step that failed")
        store.finish_run(live, status="failed")
        second = await ajudge_many(store, [*done, live], config=CONFIG, model=model_for(server))
        assert (second.judged, second.running, second.skipped) == (1, 0, 2)

        # A run judged when it was interrupted is resumed and grows: judged again, once.
        store.finish_run(done[0], status="interrupted")
        store.append_step(done[0], agent="a", content="after resuming")
        store.finish_run(done[0], status="failed")
        third = await ajudge_many(store, [*done, live], config=CONFIG, model=model_for(server))
        assert (third.judged, third.skipped) == (1, 2)
        fourth = await ajudge_many(store, [*done, live], config=CONFIG, model=model_for(server))
        assert (fourth.judged, fourth.skipped) == (0, 3)
    assert len(server.requests) == 4
    assert all(llm_labels(store, r) == 14 for r in [*done, live])


def test_judge_all_says_how_many_running_runs_it_left(tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    with TraceStore(db) as store:
        fill(store, 1)
        store.start_run(team="t", task="still going")
    with FaultServer() as server:
        server.default = Fault(answer=GOOD)
        # The run's recorder is this (live) test process, so it really is running.
        result = runner.invoke(
            app, ["judge", "--all", "--db", str(db), "-m", f"openai:judge@{server.url}"]
        )
    assert result.exit_code == 0, result.output
    assert "1 judged" in result.stdout and "1 run(s) still running, left for later" in result.stdout


def _judge_in_thread(db: Path, url: str, ids: list[str], out: list[BatchReport]) -> None:
    with TraceStore(db) as store:  # each worker its own connections
        model = model_for_url(url)
        out.append(asyncio.run(ajudge_many(store, ids, config=CONFIG, concurrency=3, model=model)))


def model_for_url(url: str):  # type: ignore[no-untyped-def]
    from mascope.models import OpenAIModel, RetryPolicy

    return OpenAIModel("judge", base_url=url, retry=RetryPolicy(initial_wait=0.05, jitter=0))


def test_two_workers_in_threads_judge_each_run_once(tmp_path: Path) -> None:
    db = tmp_path / "two.db"
    with TraceStore(db) as store:
        ids = fill(store, 12)
    reports: list[BatchReport] = []
    with FaultServer() as server:
        server.default = slow(0.05)
        threads = [
            threading.Thread(target=_judge_in_thread, args=(db, server.url, ids, reports))
            for _ in range(2)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert len(reports) == 2
    assert len(server.requests) == 12  # one request per run, over both workers
    assert sum(r.judged for r in reports) == 12
    with TraceStore(db) as store:
        assert all(llm_labels(store, r) == 14 for r in ids)


def test_two_judge_all_commands_started_together_judge_each_run_once(tmp_path: Path) -> None:
    db = tmp_path / "race.db"
    with TraceStore(db) as store:
        ids = fill(store, 16)
    with FaultServer() as server:
        server.default = slow(0.1)
        cmd = [sys.executable, "-m", "mascope.cli", "judge", "--all", "--db", str(db),
               "-m", f"openai:judge@{server.url}", "--concurrency", "3", "--json"]  # fmt: skip
        procs = [
            subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [e for _, e in outs]
    reports = [json.loads(o) for o, _ in outs]
    assert len(server.requests) == 16
    assert sum(r["judged"] for r in reports) == 16
    with TraceStore(db) as store:
        assert all(llm_labels(store, r) == 14 for r in ids)
        job = store.get_job(reports[0]["job"])
        assert job is not None and job.done == 16


def test_a_killed_batch_leaves_claims_that_the_next_batch_takes_over(tmp_path: Path) -> None:
    db = tmp_path / "kill.db"
    with TraceStore(db) as store:
        ids = fill(store, 8)
    with FaultServer() as server:
        server.default = slow(0.3)
        cmd = [sys.executable, "-m", "mascope.cli", "judge", "--all", "--db", str(db),
               "-m", f"openai:judge@{server.url}", "--concurrency", "4", "--json"]  # fmt: skip
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while len(server.requests) < 4:
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        with TraceStore(db) as store:
            views = store.job_item_view(job_id_for(CONFIG), ids)
        assert sum(v.claimed_by is not None for v in views.values()) >= 4  # left behind by the kill
        again = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stderr
    data = json.loads(again.stdout)
    assert data["judged"] + data["skipped"] == 8 and data["elsewhere"] == 0
    with TraceStore(db) as store:
        assert all(llm_labels(store, r) == 14 for r in ids)
        views = store.job_item_view(job_id_for(CONFIG), ids)
        assert all(v.claimed_by is None and v.status == "done" for v in views.values())


def test_a_batch_where_nothing_could_be_judged_exits_1(tmp_path: Path) -> None:
    db = tmp_path / "bad.db"
    with TraceStore(db) as store:
        fill(store, 3)
    with FaultServer() as server:
        server.default = Fault(answer="{}")  # never a valid verdict
        result = runner.invoke(
            app, ["judge", "--all", "--db", str(db), "-m", f"openai:judge@{server.url}"]
        )
    assert result.exit_code == 1, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "none of the 3 run(s)" in errors[0]
    assert "Traceback" not in result.output


def test_a_batch_with_everything_already_done_exits_0(tmp_path: Path) -> None:
    db = tmp_path / "done.db"
    with TraceStore(db) as store:
        fill(store, 2)
    with FaultServer() as server:
        server.default = Fault(answer=GOOD)
        args = ["judge", "--all", "--db", str(db), "-m", f"openai:judge@{server.url}", "--json"]
        assert runner.invoke(app, args).exit_code == 0
        server.default = Fault(answer="{}")
        again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["skipped"] == 2


def test_attribute_all_where_nothing_could_be_attributed_exits_1(tmp_path: Path) -> None:
    db = tmp_path / "attr.db"
    with TraceStore(db) as store:
        fill(store, 2)
    with FaultServer() as server:
        server.default = Fault(answer="not json at all")
        result = runner.invoke(
            app,
            ["attribute", "--all", "--db", str(db), "-m", f"openai:judge@{server.url}",
             "--method", "all-at-once"],
        )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "none of the 2 run(s) to attribute could be attributed" in result.stderr


def test_interrupting_a_judge_batch_keeps_what_was_done(tmp_path: Path) -> None:
    db = tmp_path / "int.db"
    with TraceStore(db) as store:
        ids = fill(store, 10)
    with FaultServer() as server:
        server.default = slow(0.4)
        cmd = [sys.executable, "-m", "mascope.cli", "judge", "--all", "--db", str(db),
               "-m", f"openai:judge@{server.url}", "--concurrency", "1"]  # fmt: skip
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy()
        )
        deadline = time.monotonic() + 30
        while len(server.requests) < 3:
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert "partial: interrupted after" in out and "of 10 runs" in out
    with TraceStore(db) as store:
        judged = [r for r in ids if llm_labels(store, r) == 14]
        views = store.job_item_view(job_id_for(CONFIG), ids)
    assert 2 <= len(judged) < 10
    assert all(v.claimed_by is None for v in views.values())  # claims given back


async def test_a_paused_run_waits_like_a_running_one(store: TraceStore) -> None:
    (done,) = fill(store, 1)
    paused = store.start_run(team="t", task="waiting for a person")
    store.append_step(paused, agent="runtime", kind="event", content="Approve?")
    store.finish_run(paused, status="paused", termination_reason="paused")
    with FaultServer() as server:
        server.default = Fault(answer=GOOD)
        report = await ajudge_many(store, [done, paused], config=CONFIG, model=model_for(server))
    assert (report.judged, report.running) == (1, 1)
    assert llm_labels(store, paused) == 0
