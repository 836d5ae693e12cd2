"""Export: JSONL, and the file rules every export follows (OpenTelemetry spans: tests/integrations)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mascope.errors import ConfigError, NotFoundError
from mascope.traces import TraceStore, export_runs


def test_export_checks_ids_before_writing(store: TraceStore, tmp_path: Path) -> None:
    rid = store.start_run(task="t")
    out = tmp_path / "x.jsonl"
    with pytest.raises(NotFoundError):
        export_runs(store, [rid, "MISSING"], "jsonl", out)
    assert not out.exists() and list(tmp_path.glob(".x.jsonl*")) == []
    with pytest.raises(ConfigError, match="unknown export format"):
        export_runs(store, [rid], "csv", out)
    # OpenTelemetry spans need the SDK, so they are written by mascope.integrations
    with pytest.raises(ConfigError, match=r"mascope\.integrations\.export_otel"):
        export_runs(store, [rid], "otel", out)
    assert not out.exists()


def test_export_never_replaces_the_store_a_database_or_a_non_file(tmp_path: Path) -> None:
    import os
    import sqlite3

    db = tmp_path / "s.db"
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.commit()
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    (tmp_path / "link.db").symlink_to(db)
    with TraceStore(db) as store:
        rid = store.start_run(team="t", task="x")
        store.append_step(rid, agent="a", content="hi")
        checkpoints = tmp_path / "s.checkpoints.db"
        sqlite3.connect(checkpoints).execute("CREATE TABLE c (x)").connection.commit()
        for out in (db, tmp_path / "s.db-wal", tmp_path / "link.db", checkpoints, other, fifo):
            before = out.stat().st_mode, (out.read_bytes() if out.is_file() else b"")
            with pytest.raises(ConfigError) as info:
                export_runs(store, [rid], "jsonl", out)
            assert str(out) in str(info.value) and "\n" not in str(info.value)
            assert (out.stat().st_mode, out.read_bytes() if out.is_file() else b"") == before
        assert [r.id for r in store.list_runs()] == [rid]
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
