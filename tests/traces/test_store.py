"""TraceStore: recording, reading, paging, opening, and surviving kills."""

from __future__ import annotations

import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from mascope.errors import ConfigError, NotFoundError, StoreError
from mascope.traces import (
    SCHEMA_VERSION,
    RunSort,
    TraceStore,
    _engine,
    _migrations,
    _queries,
    new_id,
)
from mascope.traces._constants import RUN_SORTS

from ..postgres import PostgresServer


def test_ids_sort_by_creation_time() -> None:
    ids = [new_id() for _ in range(2000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 26 for i in ids)


def test_record_a_run(store: TraceStore) -> None:
    rid = store.start_run(
        team="math", task="add 2 and 3", spec={"agents": ["solver"]}, metadata={"seed": 1}
    )
    assert store.get_run(rid).status == "running"
    for i in range(3):
        index = store.append_step(
            rid, agent="solver", kind="model_call", content=f"try {i}", model="local",
            input_tokens=10, output_tokens=5, latency_s=0.1, cost_usd=0.001, checkpoint_id=f"ck{i}",
        )  # fmt: skip
        assert index == i
    run = store.finish_run(
        rid, status="succeeded", final_answer="5", termination_reason="verifier passed"
    )
    assert (run.status, run.final_answer, run.termination_reason) == (
        "succeeded",
        "5",
        "verifier passed",
    )
    assert (run.step_count, run.input_tokens, run.output_tokens) == (3, 30, 15)
    assert run.cost_usd == pytest.approx(0.003)
    assert run.started_at.tzinfo is not None and run.finished_at is not None
    assert run.metadata_ == {"seed": 1} and run.spec == {"agents": ["solver"]}
    steps = store.steps(rid)
    assert [s.index for s in steps] == [0, 1, 2]
    assert [s.checkpoint_id for s in steps] == ["ck0", "ck1", "ck2"]


def test_finish_needs_a_final_status(store: TraceStore) -> None:
    rid = store.start_run(task="x")
    with pytest.raises(ValueError, match="finish_run status"):
        store.finish_run(rid, status="running")


def test_missing_runs_are_named(store: TraceStore) -> None:
    with pytest.raises(NotFoundError, match="no run NOPE"):
        store.append_step("NOPE", agent="a")
    with pytest.raises(NotFoundError, match="no run NOPE"):
        store.get_run("NOPE")
    with pytest.raises(NotFoundError, match="no run NOPE"):
        store.add_annotations("NOPE", [{"mode": "FM-1.1", "present": True, "annotator": "human:x"}])


def test_step_indexes_stay_dense_across_store_instances(db_url: str) -> None:
    db = db_url
    with TraceStore(db) as first:
        rid = first.start_run(task="t")
        first.append_step(rid, agent="a")
        first.append_step(rid, agent="a")
    with TraceStore(db) as second:  # e.g. a resumed process
        second.reopen_run(rid)
        assert second.append_step(rid, agent="b") == 2
    with TraceStore(db) as third:
        assert [s.index for s in third.steps(rid)] == [0, 1, 2]


def test_two_writers_of_one_run_keep_its_indexes_dense(db_url: str) -> None:
    # Each store caches the run's next index; the other's appends make it stale,
    # so inserts collide and are retried at the new end, never duplicated.
    with TraceStore(db_url) as first, TraceStore(db_url) as second:
        rid = first.start_run(task="shared")
        got = []
        for i in range(6):
            got.append(
                first.append_step(
                    rid,
                    agent="a",
                    content=f"first {i}",
                    inputs=[{"role": "user", "content": f"q{i}"}],
                )
            )
            got.append(second.append_step(rid, agent="b", content=f"second {i}"))
        steps = first.steps(rid)
    assert sorted(got) == list(range(12)) and [s.index for s in steps] == list(range(12))
    assert sorted(s.content for s in steps) == sorted(
        [f"first {i}" for i in range(6)] + [f"second {i}" for i in range(6)]
    )


def test_paging_and_filters(store: TraceStore) -> None:
    ids = []
    for i in range(25):
        rid = store.start_run(team="a" if i % 2 else "b", task=f"task number {i}")
        store.finish_run(rid, status="failed" if i % 3 == 0 else "succeeded")
        ids.append(rid)
    store.add_annotations(
        ids[4],
        [
            {
                "mode": "FM-1.3",
                "present": True,
                "annotator": "rule:step-repetition",
                "evidence_steps": [1, 2],
            }
        ],
    )
    store.add_annotations(ids[5], [{"mode": "FM-1.3", "present": False, "annotator": "human:x"}])
    seen, before = [], None
    while True:
        page = store.list_runs(limit=7, before=before)
        seen += [r.id for r in page]
        if len(page) < 7:
            break
        before = page[-1].id
    assert seen == ids[::-1]
    assert store.count_runs() == 25
    assert store.count_runs(status="failed") == 9
    assert store.count_runs(team="a") == 12
    assert [r.id for r in store.list_runs(mode="FM-1.3")] == [ids[4]]
    assert [r.id for r in store.list_runs(search="number 17")] == [ids[17]]
    assert store.count_runs(search="100%") == 0  # LIKE wildcards are literal
    assert store.modes_by_run([ids[4], ids[5]]) == {ids[4]: ["FM-1.3"], ids[5]: []}


def test_all_run_ids_are_every_match_oldest_first_across_pages(
    store: TraceStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_queries, "_ID_PAGE", 2)  # several pages from a few runs
    ids = [store.start_run(team="a" if i % 2 else "b", task=f"t{i}") for i in range(7)]
    for i, rid in enumerate(ids):
        store.finish_run(rid, status="failed" if i < 4 else "succeeded")
    assert store.all_run_ids() == ids
    assert store.all_run_ids(team="a") == ids[1::2]
    assert store.all_run_ids(status="failed", team="b") == [ids[0], ids[2]]
    assert store.all_run_ids(team="nobody") == []


def test_many_runs_and_their_steps_are_read_at_once(store: TraceStore) -> None:
    ids = [store.start_run(team="t", task=f"t{i}") for i in range(3)]
    for i, rid in enumerate(ids):
        for k in range(i):  # 0, 1 and 2 steps
            store.append_step(rid, agent=f"a{k}", content=f"{rid} step {k}")
    wanted = [ids[2], "no-such-run", ids[0], ids[1]]
    runs = store.get_runs(wanted)
    assert sorted(runs) == sorted(ids) and runs[ids[2]].task == "t2"
    steps = store.steps_of(wanted)
    assert steps["no-such-run"] == [] and steps[ids[0]] == []
    for rid in ids:  # each run's own steps, in order, as one run at a time reads them
        assert [(s.index, s.content) for s in steps[rid]] == [
            (s.index, s.content) for s in store.steps(rid)
        ]


def test_runs_with_their_steps_are_read_in_batches_and_filtered(store: TraceStore) -> None:
    ids = [store.start_run(team="t", task=f"t{i}") for i in range(5)]
    for i, rid in enumerate(ids):
        store.append_step(rid, agent="a", content=f"{rid} only")
        store.finish_run(rid, status="failed" if i % 2 else "succeeded")
    got = list(store.runs_with_steps([*ids, "no-such-run"], keep=lambda r: r.status == "succeeded", batch=2))  # fmt: skip
    assert sorted(r.id for r, _ in got) == [ids[0], ids[2], ids[4]]
    assert all([s.content for s in steps] == [f"{r.id} only"] for r, steps in got)


def test_sorted_pages_and_child_runs(store: TraceStore) -> None:
    ids = []
    for i, n in enumerate([3, 1, 2, 1]):
        rid = store.start_run(team="t", task=f"task {i}")
        for _ in range(n):
            store.append_step(rid, agent="a", content="x", input_tokens=10 * i)
        store.finish_run(rid, status="failed")
        ids.append(rid)
    by_steps = [r.id for r in store.list_runs(sort="steps")]
    assert by_steps == [ids[0], ids[2], ids[3], ids[1]]  # ties: newest first
    assert [r.id for r in store.list_runs(sort="steps", offset=2, limit=1)] == [ids[3]]
    assert [r.id for r in store.list_runs(sort="tokens", ascending=True)][:1] == [ids[0]]
    assert [r.id for r in store.list_runs(ascending=True, before=ids[1])] == ids[2:]
    fork = store.start_run(team="t", task="task 0", parent_run_id=ids[0], fork_step=1)
    assert [r.id for r in store.child_runs(ids[0])] == [fork]
    assert store.child_runs(ids[1]) == []


@pytest.mark.parametrize("sort", RUN_SORTS)  # every order there is, each with its own key
@pytest.mark.parametrize("ascending", [False, True])
def test_every_order_pages_by_an_opaque_cursor(
    store: TraceStore, sort: RunSort, ascending: bool
) -> None:
    for i in range(11):
        rid = store.start_run(team=f"team{i % 3}", task=f"t{i}")
        for _ in range(i % 4):
            store.append_step(
                rid, agent="a", input_tokens=i % 5, cost_usd=None if i % 2 else 0.5 * (i % 3)
            )
        store.finish_run(rid, status="failed" if i % 2 else "succeeded")
    whole = [r.id for r in store.list_runs(sort=sort, ascending=ascending, limit=100)]
    paged, cursor, pages = [], None, 0
    while True:
        page = store.page_runs(sort=sort, ascending=ascending, limit=4, cursor=cursor)
        paged += [r.id for r in page.runs]
        pages += 1
        # A run added between pages never shifts the pages already handed out.
        store.finish_run(store.start_run(team="late", task="x"), status="error")
        if page.next is None:
            break
        cursor = page.next
    assert len(set(paged)) == len(paged)  # no run twice
    assert [r for r in paged if r in set(whole)] == whole  # each run once, in the order asked
    assert pages >= 3


def test_a_cursor_of_another_order_or_garbage_is_refused(store: TraceStore) -> None:
    for i in range(3):
        store.start_run(task=f"t{i}")
    page = store.page_runs(sort="steps", limit=1)
    assert page.next is not None and len(page.runs) == 1
    with pytest.raises(ConfigError, match="another order"):
        store.page_runs(sort="time", limit=1, cursor=page.next)
    with pytest.raises(ConfigError, match="not a page cursor"):
        store.page_runs(sort="steps", limit=1, cursor="!!nonsense")
    last = store.page_runs(limit=3)
    assert last.next is None and len(last.runs) == 3


def test_resolve_run_id(store: TraceStore) -> None:
    rid = store.start_run(task="t")
    assert store.resolve_run_id(rid.lower()) == rid
    assert store.resolve_run_id(rid[:-3]) == rid
    with pytest.raises(NotFoundError, match="did you mean"):
        store.resolve_run_id(rid[:-1] + ("0" if rid[-1] != "0" else "1") + "X")


# -- opening ------------------------------------------------------------------


def test_reopening_keeps_the_schema(db_url: str) -> None:
    TraceStore(db_url).close()
    with TraceStore(db_url) as store:
        assert store.schema_version == SCHEMA_VERSION
        if store.path is not None:
            assert sqlite3.connect(store.path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def _sql(db_url: str, statement: str) -> None:
    """Run one statement on a store's database behind mascope's back."""
    url = db_url if "://" in db_url else f"sqlite:///{db_url}"
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(statement)
    engine.dispose()


def test_newer_store_is_refused(db_url: str) -> None:
    with TraceStore(db_url) as store:
        rid = store.start_run(task="kept")
    _sql(db_url, "UPDATE mascope_meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(
        StoreError, match=r"written by a newer mascope \(store schema v99.*upgrade mascope"
    ) as info:
        TraceStore(db_url)
    assert "\n" not in str(info.value)
    _sql(db_url, f"UPDATE mascope_meta SET value = '{SCHEMA_VERSION}' WHERE key = 'schema_version'")
    with TraceStore(db_url) as store:  # refusing changed nothing
        assert store.get_run(rid).task == "kept"


def test_older_store_is_migrated(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    db = db_url
    with TraceStore(db) as old:
        rid = old.start_run(task="kept")
    calls = []

    def add_column(conn: object) -> None:
        calls.append(conn)
        conn.exec_driver_sql("ALTER TABLE runs ADD COLUMN new_field TEXT")  # type: ignore[attr-defined]

    monkeypatch.setattr(_engine, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    monkeypatch.setitem(_migrations.MIGRATIONS, SCHEMA_VERSION, add_column)
    with TraceStore(db) as new:
        assert new.schema_version == SCHEMA_VERSION + 1
        assert new.get_run(rid).task == "kept"
        with new.engine.read.connect() as conn:
            columns = {c["name"] for c in inspect(conn).get_columns("runs")}
    assert len(calls) == 1
    assert "new_field" in columns


def test_store_without_a_migration_path_says_so(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = db_url
    TraceStore(db).close()
    monkeypatch.setattr(_engine, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with pytest.raises(StoreError, match=f"no migration from v{SCHEMA_VERSION}"):
        TraceStore(db)


def test_foreign_files_are_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE invoices (id INTEGER)")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match=r"not a mascope trace store .*invoices"):
        TraceStore(other)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database at all, just some text" * 100)
    with pytest.raises(StoreError, match="not a SQLite database"):
        TraceStore(junk)
    with pytest.raises(StoreError, match="no trace store at"):
        TraceStore(tmp_path / "missing.db", create=False)
    with pytest.raises(StoreError, match=r"folder .* does not exist"):
        TraceStore(tmp_path / "nope" / "x.db")


def test_opens_by_url(tmp_path: Path) -> None:
    with TraceStore(f"sqlite:///{tmp_path / 'u.db'}") as store:
        rid = store.start_run(task="t")
    assert TraceStore(tmp_path / "u.db").get_run(rid).task == "t"


# -- processes -------------------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import sys
    from mascope.traces import TraceStore
    store = TraceStore(sys.argv[1])
    rid = store.start_run(team=sys.argv[2], task="concurrent")
    for i in range(int(sys.argv[3])):
        store.append_step(rid, agent=sys.argv[2], content=f"step {i}", input_tokens=1)
        if i % 50 == 0:
            store.add_annotations(rid, [{"mode": "FM-1.3", "present": True, "annotator": "rule:x"}])
    store.finish_run(rid, status="succeeded")
    print(rid)
    """
)
READER = textwrap.dedent(
    """
    import sys, time
    from mascope.traces import TraceStore
    store = TraceStore(sys.argv[1])
    deadline = time.time() + float(sys.argv[2])
    n = 0
    while time.time() < deadline:
        for run in store.list_runs(limit=10):
            store.steps(run.id, limit=100)
        n += 1
    print(n)
    """
)


def test_two_writers_and_a_reader_never_hit_a_lock(db_url: str) -> None:
    db = db_url
    TraceStore(db).close()
    steps = 400
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(db), name, str(steps)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("alpha", "beta")
    ]
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(db), "4"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    results = [p.communicate(timeout=120) for p in [*writers, reader]]
    for proc, (_out, err) in zip([*writers, reader], results, strict=True):
        assert proc.returncode == 0, err
        assert "locked" not in err
    assert int(results[2][0]) > 0
    with TraceStore(db) as store:
        for out, _ in results[:2]:
            run = store.get_run(out.strip())
            assert run.status == "succeeded" and run.step_count == steps
            assert [s.index for s in store.steps(run.id)] == list(range(steps))


KILLED = textwrap.dedent(
    """
    import sys, time
    from mascope.traces import TraceStore
    store = TraceStore(sys.argv[1])
    rid = store.start_run(team="doomed", task="will be killed")
    for i in range(30):
        store.append_step(rid, agent="worker", content=f"step {i}")
    print(rid, flush=True)
    time.sleep(60)
    """
)


def test_a_killed_run_keeps_its_steps_and_is_marked_interrupted(db_url: str) -> None:
    db = db_url
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED, str(db)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    rid = proc.stdout.readline().strip()
    with TraceStore(db) as store:
        assert store.recover_interrupted() == []  # still alive: left alone
        assert store.get_run(rid).status == "running"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(0.05)
    with TraceStore(db) as store:
        assert store.count_steps(rid) == 30
        assert store.recover_interrupted() == [rid]
        run = store.get_run(rid)
        assert run.status == "interrupted" and run.termination_reason == "process died"
        assert store.recover_interrupted() == []


ELSEWHERE = textwrap.dedent(
    """
    import socket, sys, time
    socket.gethostname = lambda: "another-host"  # a recorder on another machine
    if len(sys.argv) > 2:  # ... whose clock is this many minutes slow
        import datetime
        import mascope.traces._engine as engine
        real = engine.utcnow
        engine.utcnow = lambda: real() - datetime.timedelta(minutes=float(sys.argv[2]))
    from mascope.traces import TraceStore
    store = TraceStore(sys.argv[1])
    store.recorder.heartbeat_s = 0.2
    rid = store.start_run(team="remote", task="recorded elsewhere")
    store.append_step(rid, agent="worker", content="step 0")
    print(rid, flush=True)
    time.sleep(60)
    """
)


def test_a_run_on_another_host_lives_while_it_heartbeats(db_url: str) -> None:
    # Its pid means nothing here: only the heartbeat on the run row tells.
    _heartbeats_decide(db_url, [])


def test_on_postgresql_a_host_with_a_slow_clock_still_counts_as_alive(postgres_url: str) -> None:
    # Heartbeats are in the server's time, so hosts need not agree on theirs.
    _heartbeats_decide(postgres_url, ["10"])


def _heartbeats_decide(db_url: str, extra: list[str]) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", ELSEWHERE, db_url, *extra], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        rid = proc.stdout.readline().strip()
        with TraceStore(db_url) as store:
            store.recorder.lease_s = 1.5
            time.sleep(2.5)  # longer than the lease: only fresh heartbeats keep it alive
            assert store.recover_interrupted() == []
            assert store.get_run(rid).status == "running"
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            deadline = time.monotonic() + 20
            while store.recover_interrupted() != [rid]:
                assert time.monotonic() < deadline, "a stale heartbeat must free the run"
                time.sleep(0.2)
            run = store.get_run(rid)
            assert run.status == "interrupted" and run.termination_reason == "process died"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _beats() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "mascope-run-heartbeat"}


def test_the_heartbeat_thread_ends_with_the_last_run_and_returns_with_the_next(
    db_url: str,
) -> None:
    with TraceStore(db_url) as store:
        store.recorder.heartbeat_s = 0.05
        before = _beats()
        first = store.start_run(task="first")
        (beat,) = _beats() - before
        store.finish_run(first, status="succeeded")
        beat.join(timeout=20)
        assert not beat.is_alive(), "a store recording nothing keeps no thread"
        second = store.start_run(task="second")
        started = store.get_run(second).heartbeat_at
        deadline = time.monotonic() + 20
        while store.get_run(second).heartbeat_at == started:
            assert time.monotonic() < deadline, "the next run must be heartbeating again"
            time.sleep(0.05)


def test_a_stale_heartbeat_frees_a_run_of_another_host(db_url: str) -> None:
    with TraceStore(db_url) as store:
        rid = store.start_run(task="t")
        store.close()  # stops this store's heartbeat
    old = "2000-01-01 00:00:00+00:00"
    _sql(db_url, f"UPDATE runs SET owner = 'far-away:1:1', heartbeat_at = '{old}'")
    with TraceStore(db_url) as store:
        assert store.recover_interrupted() == [rid]
        assert store.get_run(rid).status == "interrupted"


def test_a_database_of_other_tables_is_refused_and_left_alone(db_url: str) -> None:
    _sql(db_url, "CREATE TABLE invoices (id INTEGER)")
    with pytest.raises(StoreError, match=r"not a mascope trace store .*invoices"):
        TraceStore(db_url)
    url = db_url if "://" in db_url else f"sqlite:///{db_url}"
    engine = create_engine(url)
    with engine.connect() as conn:
        assert set(inspect(conn).get_table_names()) == {"invoices"}
    engine.dispose()


def test_an_unreachable_server_is_one_line_naming_host_and_port() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(StoreError) as info:
        TraceStore(f"postgresql://alice:hunter2-secret@127.0.0.1:{port}/runs")
    message = str(info.value)
    assert "\n" not in message and f"127.0.0.1:{port}" in message
    assert "refused" in message and "hunter2-secret" not in message


def test_a_server_without_the_database_is_one_line(postgres_server: PostgresServer) -> None:
    with pytest.raises(StoreError) as info:
        TraceStore(postgres_server.url("no_such_db"))
    message = str(info.value)
    assert "\n" not in message and f"127.0.0.1:{postgres_server.port}" in message
    assert "no such database" in message


def test_a_read_only_store_never_writes_on_either_backend(db_url: str) -> None:
    with TraceStore(db_url) as store:
        rid = store.start_run(task="kept")
        gone = store.start_run(task="its recorder is gone")
    # A run recover_interrupted would mark as interrupted, were it allowed to write.
    stale = "2000-01-01 00:00:00+00:00"
    _sql(db_url, f"UPDATE runs SET owner = 'far-away:1:1', heartbeat_at = '{stale}' WHERE id = '{gone}'")  # fmt: skip
    with TraceStore(db_url, read_only=True) as store:
        assert [r.id for r in store.list_runs()] == [gone, rid]
        store.recover_interrupted()
        with pytest.raises(StoreError, match="is read-only"):
            store.start_run(task="more")
        with pytest.raises(StoreError, match="is read-only"):
            store.add_annotations(rid, [{"mode": "FM-1.1", "present": True, "annotator": "h"}])
    with TraceStore(db_url) as store:
        assert store.count_runs() == 2 and store.annotations(rid) == []
        assert store.get_run(gone).status == "running"
