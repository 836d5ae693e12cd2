"""Store schema v4 -> v5: runs gain their owner's heartbeat; runs left running before it
are judged by their process alone."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap

from sqlalchemy import create_engine, inspect

from mascope.traces import SCHEMA_VERSION, TraceStore


def _sql(db_url: str, *statements: str) -> None:
    url = db_url if "://" in db_url else f"sqlite:///{db_url}"
    engine = create_engine(url)
    with engine.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)
    engine.dispose()


def test_a_v4_store_gains_heartbeats_and_keeps_its_running_runs_meaning(db_url: str) -> None:
    with TraceStore(db_url) as store:
        here = store.start_run(task="recorded here by a process that is gone")
        there = store.start_run(task="recorded on another host")
    _sql(
        db_url,
        "ALTER TABLE runs DROP COLUMN heartbeat_at",
        "UPDATE mascope_meta SET value = '4' WHERE key = 'schema_version'",
        f"UPDATE runs SET owner = 'far-away:1:1' WHERE id = '{there}'",
    )
    # A pid of this host that is certainly gone: a child that has exited.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)  # fmt: skip
    _sql(db_url, f"UPDATE runs SET owner = '{socket.gethostname()}:{dead.stdout.strip()}:' WHERE id = '{here}'")  # fmt: skip
    with TraceStore(db_url) as store:
        assert store.schema_version == SCHEMA_VERSION
        with store.engine.read.connect() as conn:
            assert "heartbeat_at" in {c["name"] for c in inspect(conn).get_columns("runs")}
        assert store.recover_interrupted() == [here]
        assert store.get_run(there).status == "running"  # no heartbeat to go by: left alone


CREATOR = textwrap.dedent(
    """
    import sys
    from mascope.traces import TraceStore
    with TraceStore(sys.argv[1]) as store:
        print(store.start_run(task="opened at once"))
    """
)


def test_several_processes_may_create_one_store_at_once(db_url: str) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CREATOR, db_url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in results]
    with TraceStore(db_url) as store:
        assert store.count_runs() == 4 and store.schema_version == SCHEMA_VERSION
