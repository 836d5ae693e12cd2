"""The CLI against a real PostgreSQL store: run, resume and fork from another process
(or another host), re-roll, list/show/export, judge and attribute, and bad URLs."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml
from sqlalchemy import create_engine, inspect
from typer.testing import CliRunner

from mascope.cli import app
from mascope.traces import TraceStore

from .diagnosis.test_judge import answer
from .graphs.test_durability import SOLVER, eight_stage_team
from .postgres import PostgresServer

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()

SITECUSTOMIZE = textwrap.dedent(
    """
    # Loaded by the subprocesses of these tests: pretend to be another host, with
    # a short heartbeat and lease, so cross-host liveness is testable in seconds.
    import os, socket
    if os.environ.get("MASCOPE_TEST_HOST"):
        socket.gethostname = lambda: os.environ["MASCOPE_TEST_HOST"]
    if os.environ.get("MASCOPE_TEST_LEASE"):
        import mascope.traces._recorder as recorder
        recorder.HEARTBEAT_S = float(os.environ["MASCOPE_TEST_LEASE"]) / 5
        recorder.RUN_LEASE_S = float(os.environ["MASCOPE_TEST_LEASE"])
    """
)


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    return {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{ROOT}", **extra}


def _cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mascope.cli", *args],
        env=env, capture_output=True, text=True, cwd=cwd, timeout=180,
    )  # fmt: skip


def _no_files(folder: Path) -> list[str]:
    """What a command left in its working folder beyond the test's own inputs."""
    return sorted(p.name for p in folder.iterdir() if p.suffix in (".db", ".db-wal", ".db-shm"))


def test_a_run_killed_on_one_host_is_resumed_from_another(
    postgres_url: str, tmp_path: Path
) -> None:
    team = eight_stage_team(tmp_path / "team.yaml")
    log, paused = tmp_path / "calls.log", tmp_path / "paused"
    common = {
        "MASCOPE_TEST_LOG": str(log),
        "MASCOPE_TEST_PAUSE_AT": "5",
        "MASCOPE_TEST_PAUSED": str(paused),
        "MASCOPE_TEST_LEASE": "2",
    }
    first = subprocess.Popen(
        [sys.executable, "-m", "mascope.cli", "run", str(team), "--task", "count", "--db", postgres_url],
        env=_env(tmp_path, **common, MASCOPE_TEST_HOST="machine-a"),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp_path,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not paused.exists():
            assert first.poll() is None, first.stderr.read() if first.stderr else ""
            assert time.monotonic() < deadline, "the run never reached the pause"
            time.sleep(0.05)
        with TraceStore(postgres_url) as store:
            (run,) = store.list_runs()
        other = _env(tmp_path, **common, MASCOPE_TEST_HOST="machine-b")
        time.sleep(3)  # past the lease: only machine-a's heartbeat keeps its run alive
        busy = _cli(["runs", "resume", run.id, "--db", postgres_url], other, tmp_path)
        assert busy.returncode == 2 and "still running in another process" in busy.stderr
        first.send_signal(signal.SIGKILL)
        first.wait()
        time.sleep(3)  # machine-a's heartbeat goes stale
        done = _cli(["runs", "resume", run.id, "--db", postgres_url, "--json"], other, tmp_path)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "succeeded"
    with TraceStore(postgres_url) as store:
        steps = store.steps(run.id)
        assert [s.agent for s in steps] == [*"abcde", "runtime", *"fgh"]
        assert [s.index for s in steps] == list(range(9))
    calls = [line.split()[0] for line in log.read_text().splitlines()]
    assert calls == [*"abcde", "f", *"fgh"]  # nothing before the cut was redone
    assert _no_files(tmp_path) == []  # checkpoints went to PostgreSQL, not a local file


def test_fork_from_a_second_process_keeps_checkpoints_in_the_database_redacted(
    postgres_url: str, tmp_path: Path
) -> None:
    team = tmp_path / "t.yaml"
    team.write_text(yaml.safe_dump(SOLVER))
    secret = "sk-live-4f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c"
    env = _env(tmp_path, MY_SERVICE_API_KEY=secret)
    task = f"What is 2 + 3? (key {secret})"
    parent = _cli(["run", str(team), "--task", task, "--db", postgres_url, "--json"], env, tmp_path)
    assert parent.returncode == 1, parent.stderr
    parent_id = json.loads(parent.stdout)["run_id"]
    child = _cli(
        ["runs", "fork", parent_id, "--step", "0", "--content", "ANSWER: 5", "--db", postgres_url, "--json"],
        env, tmp_path,
    )  # fmt: skip
    assert child.returncode == 0, child.stderr
    data = json.loads(child.stdout)
    assert (data["status"], data["parent_run_id"]) == ("succeeded", parent_id)
    engine = create_engine(postgres_url)
    with engine.connect() as conn:
        tables = set(inspect(conn).get_table_names())
        assert {"checkpoints", "checkpoint_blobs", "checkpoint_writes"} <= tables
        dumped = "".join(
            str(row)
            for table in ("checkpoints", "checkpoint_blobs", "checkpoint_writes")
            for row in conn.exec_driver_sql(f"SELECT * FROM {table}")
        )
    engine.dispose()
    assert "What is 2 + 3?" in dumped or "2 + 3" in dumped  # the state is there ...
    assert secret not in dumped  # ... with the secret masked
    assert _no_files(tmp_path) == []


def test_reroll_attribution_on_postgres(postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from .diagnosis.test_reroll import FAULT, RNG, counting_team, failed_run

    # test_reroll's own fixture (seeded stream, fault table cleared after) is not
    # in force here: do both, so the result does not hang on which tests ran before.
    RNG.seed(1234)
    monkeypatch.setitem(FAULT, "c", 0.5)
    with TraceStore(postgres_url) as store:
        rid = asyncio.run(failed_run(counting_team(store)))
    shown = runner.invoke(
        app, ["attribute", rid, "--method", "reroll", "--db", postgres_url, "--json"]
    )
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.stdout)
    assert data["step"] == 2 and data["curve"]
    with TraceStore(postgres_url) as store:
        assert store.child_runs(rid)  # the re-rolls are child runs in the same database


def test_run_list_show_export_judge_and_attribute_on_postgres(
    postgres_server: PostgresServer, postgres_url: str, tmp_path: Path
) -> None:
    team = tmp_path / "t.yaml"
    team.write_text(yaml.safe_dump(SOLVER))
    sys.path.insert(0, str(ROOT))
    try:
        ran = runner.invoke(app, ["run", str(team), "--task", "What is 2 + 3?", "--db", postgres_url, "--json"])  # fmt: skip
    finally:
        sys.path.remove(str(ROOT))
    assert ran.exit_code == 1, ran.output
    rid = json.loads(ran.stdout)["run_id"]

    listed = runner.invoke(app, ["runs", "list", "--db", postgres_url, "--json"])
    assert listed.exit_code == 0, listed.output
    assert [r["id"] for r in json.loads(listed.stdout)["runs"]] == [rid]
    shown = runner.invoke(app, ["runs", "show", rid[:10], "--db", postgres_url])
    assert shown.exit_code == 0 and "ANSWER: 6" in shown.stdout

    judge_script = tmp_path / "judge.json"
    judge_script.write_text(json.dumps([answer({"FM-3.3": [1]}, summary="wrong sum accepted")]))
    judged = runner.invoke(  # the batch path: a job, its items, claims and a group commit
        app, ["judge", "--all", "--db", postgres_url, "-m", f"scripted:{judge_script}", "--json"]
    )
    assert judged.exit_code == 0, judged.output
    assert json.loads(judged.stdout)["judged"] == 1
    again = runner.invoke(  # idempotent: nothing left to judge, no model call needed
        app, ["judge", "--all", "--db", postgres_url, "-m", f"scripted:{judge_script}", "--json"]
    )
    assert again.exit_code == 0, again.output
    assert (json.loads(again.stdout)["judged"], json.loads(again.stdout)["skipped"]) == (0, 1)
    blame = tmp_path / "blame.json"
    blame.write_text(
        json.dumps([json.dumps({"agent": "solver", "step": 0, "reason": "mis-added"})])
    )
    attributed = runner.invoke(
        app,
        ["attribute", rid, "--method", "all-at-once", "-m", f"scripted:{blame}", "--db", postgres_url],
    )  # fmt: skip
    assert attributed.exit_code == 0, attributed.output
    assert f"run {rid}: solver at step 0" in attributed.stdout

    out = tmp_path / "runs.jsonl"
    exported = runner.invoke(app, ["runs", "export", "--all", "--db", postgres_url, "--out", str(out)])  # fmt: skip
    assert exported.exit_code == 0, exported.output
    (record,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert record["run"]["id"] == rid
    assert any(a["mode"] == "FM-3.3" and a["present"] for a in record["annotations"])
    assert [a["agent"] for a in record["attributions"]] == ["solver"]
    listed = runner.invoke(app, ["runs", "list", "--mode", "FM-3.3", "--db", postgres_url, "--json"])  # fmt: skip
    assert [r["id"] for r in json.loads(listed.stdout)["runs"]] == [rid]

    # Imported into another PostgreSQL database and exported again: the same file.
    other = postgres_server.database()
    imported = runner.invoke(app, ["runs", "import", "jsonl", str(out), "--db", other])
    assert imported.exit_code == 0, imported.output
    again = tmp_path / "again.jsonl"
    assert runner.invoke(app, ["runs", "export", rid, "--db", other, "--out", str(again)]).exit_code == 0  # fmt: skip
    assert again.read_bytes() == out.read_bytes()


@pytest.mark.parametrize("command", [["runs", "list"], ["run", "TEAM", "--task", "t"]])
def test_an_unreachable_server_is_one_line_exit_2_and_creates_nothing(
    tmp_path: Path, command: list[str]
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    team = tmp_path / "t.yaml"
    team.write_text(yaml.safe_dump(SOLVER))
    args = [str(team) if a == "TEAM" else a for a in command]
    url = f"postgresql://bob:hunter2-pass@127.0.0.1:{port}/runs"
    done = _cli([*args, "--db", url], _env(tmp_path), tmp_path)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and f"127.0.0.1:{port}" in lines[0] and "Traceback" not in done.stderr
    assert "hunter2-pass" not in done.stderr + done.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site", "t.yaml"]
