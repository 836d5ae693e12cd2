"""Judge batch jobs against a slow, 429-injecting OpenAI-compatible server on loopback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mascope.cli import app
from mascope.diagnosis import JudgeConfig, ajudge_many
from mascope.jobs import JobQueue
from mascope.models import OpenAIModel, RetryPolicy
from mascope.traces import TraceStore

from ..models.servers import Fault, FaultServer
from .test_judge import answer

runner = CliRunner()
GOOD = answer({"FM-1.3": [0]})


def slow(seconds: float) -> Fault:
    return Fault(answer=GOOD, stall=seconds)


def fill(store: TraceStore, n: int) -> list[str]:
    ids = []
    for i in range(n):
        rid = store.start_run(team="t", task=f"task {i}")
        store.append_step(rid, agent="a", content=f"step of run {i}")
        store.finish_run(rid, status="failed")
        ids.append(rid)
    return ids


def model_for(server: FaultServer) -> OpenAIModel:
    return OpenAIModel("judge", base_url=server.url, retry=RetryPolicy(initial_wait=0.05, jitter=0))


async def test_concurrency_really_overlaps_and_429s_are_retried(store: TraceStore) -> None:
    ids = fill(store, 8)
    with FaultServer([Fault(429, headers={"Retry-After": "0.1"})]) as server:
        server.default = slow(0.3)
        report = await ajudge_many(
            store,
            ids,
            config=JudgeConfig(model="openai:judge"),
            concurrency=8,
            model=model_for(server),
        )
    assert report.judged == 8 and report.not_judged == 0
    # requests really were in flight together (the server counts them; no clock here:
    # a timed assertion fails on a busy machine)
    assert server.max_in_flight >= 6
    assert len(server.requests) == 9  # one 429, retried


async def test_rpm_limit_holds(store: TraceStore) -> None:
    ids = fill(store, 4)
    with FaultServer() as server:
        server.default = Fault(answer=GOOD)
        await ajudge_many(
            store,
            ids,
            config=JudgeConfig(model="openai:judge"),
            concurrency=4,
            rpm=120,
            model=model_for(server),
        )
    gaps = server.gaps
    # 120 per minute is one request every 0.5 s; the first request's connection
    # set-up may shorten the first gap a little, so check the span as a whole.
    assert len(gaps) == 3 and sum(gaps) >= 1.3 and min(gaps) >= 0.3


async def test_cost_cap_stops_cleanly(store: TraceStore, tmp_path: Path) -> None:
    from mascope.models import PriceTable

    ids = fill(store, 6)
    with FaultServer() as server:
        server.default = Fault(answer=GOOD)
        model = OpenAIModel(
            "judge", base_url=server.url, prices=PriceTable({"judge": (1000.0, 1000.0)})
        )
        report = await ajudge_many(
            store,
            ids,
            config=JudgeConfig(model="openai:judge"),
            concurrency=1,
            max_cost=0.02,
            model=model,
        )
    assert report.stopped and "cost cap reached" in report.stopped
    assert 1 <= report.judged < 6
    job = store.get_job(report.job_id)
    assert job is not None and job.status == "stopped" and job.done == report.judged


async def test_schema_failures_are_marked_and_the_batch_goes_on(store: TraceStore) -> None:
    ids = fill(store, 3)
    with FaultServer([Fault(answer="{}"), Fault(answer="{}")]) as server:
        server.default = Fault(answer=GOOD)
        report = await ajudge_many(
            store,
            ids,
            config=JudgeConfig(model="openai:judge"),
            concurrency=1,
            model=model_for(server),
        )
    assert (report.judged, report.not_judged) == (2, 1)
    (failed,) = report.failures
    assert "even after one repair" in report.failures[failed]
    assert JobQueue(store).states(report.job_id, [failed])[failed].status == "not_judged"


async def test_runs_read_in_batches_or_one_by_one_are_each_judged_on_their_own_steps(
    store: TraceStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mascope.diagnosis import _batch

    # A claimed batch reads its runs at once up to PREFETCH_STEPS steps in all;
    # with 5 the first two runs of a batch are read together, the rest one by one.
    monkeypatch.setattr(_batch, "PREFETCH_STEPS", 5)
    ids = []
    for i in range(6):
        rid = store.start_run(team="t", task=f"task {i}")
        for k in range(2):
            store.append_step(rid, agent="a", content=f"run {i} says {k}")
        store.finish_run(rid, status="failed")
        ids.append(rid)
    with FaultServer() as server:
        server.default = Fault(answer=GOOD)
        report = await ajudge_many(
            store,
            ids,
            config=JudgeConfig(model="openai:judge"),
            concurrency=3,
            model=model_for(server),
        )
    assert report.judged == 6
    prompts = [json.dumps(body["messages"]) for body in server.requests]
    for i, rid in enumerate(ids):
        (mine,) = [p for p in prompts if f"run {i} says 0" in p]
        assert f"run {i} says 1" in mine and f"task {i}" in mine
        assert "FM-1.3" in {a.mode for a in store.annotations(rid) if a.present}


def test_endpoint_down_stops_with_a_message_and_a_rerun_continues(tmp_path: Path) -> None:
    db = tmp_path / "down.db"
    with TraceStore(db) as store:
        fill(store, 3)
    env_retries = {"MASCOPE_MAX_RETRIES": "1"}
    with FaultServer([Fault(answer=GOOD)] + [Fault(500)] * 4) as server:
        result = runner.invoke(
            app,
            [
                "judge",
                "--all",
                "--db",
                str(db),
                "-m",
                f"openai:judge@{server.url}",
                "--concurrency",
                "1",
            ],
            env=env_retries,
        )
    assert (
        result.exit_code == 2
        and "endpoint failed" in result.stderr
        and "rerun the same command" in result.stderr
    )
    with FaultServer() as server:
        server.default = Fault(answer=GOOD)
        again = runner.invoke(
            app, ["judge", "--all", "--db", str(db), "-m", f"openai:judge@{server.url}", "--json"]
        )
    data = json.loads(again.stdout)
    assert (data["judged"], data["skipped"]) == (2, 1)


def test_kill_and_resume_gives_no_duplicates(tmp_path: Path) -> None:
    db = tmp_path / "kill.db"
    with TraceStore(db) as store:
        ids = fill(store, 12)
    with FaultServer() as server:
        server.default = slow(0.25)
        cmd = [
            sys.executable,
            "-m",
            "mascope.cli",
            "judge",
            "--all",
            "--db",
            str(db),
            "-m",
            f"openai:judge@{server.url}",
            "--concurrency",
            "2",
            "--json",
        ]
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ.copy()
        )
        deadline = time.monotonic() + 30
        while len(server.requests) < 5:
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        first_requests = len(server.requests)
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["skipped"] >= 1 and data["judged"] + data["skipped"] == 12
    # every run judged exactly once overall: requests = 12 plus the ones cut off by the kill
    assert len(server.requests) - first_requests == data["judged"]
    with TraceStore(db) as store:
        for rid in ids:
            labels = [a for a in store.annotations(rid) if a.annotator.startswith("llm:")]
            assert len(labels) == 14, rid
        job = store.get_job(data["job"])
        assert job is not None and job.done == 12


@pytest.mark.parametrize("args", [["judge"], ["judge", "NOPE", "--db", "{db}"]])
def test_judge_bad_input(tmp_path: Path, args: list[str]) -> None:
    db = tmp_path / "b.db"
    TraceStore(db).close()
    result = runner.invoke(app, [a.format(db=db) for a in args])
    assert result.exit_code == 2
