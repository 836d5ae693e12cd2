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


def test_a_secret_known_only_at_export_is_masked_in_what_models_were_sent_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mascope.traces import import_paths

    secret = "acme-late-4242-zeta-omega"
    db = tmp_path / "m.db"
    with TraceStore(db) as store:  # recorded before the secret was in the environment
        rid = store.start_run(team="t", task="t")
        store.append_step(
            rid, agent="a", content="done",
            inputs=[{"role": "system", "content": f"use {secret} to log in"}, {"role": "user", "content": "go"}],
        )  # fmt: skip
        store.finish_run(rid, status="succeeded")
    monkeypatch.setenv("ACME_LATE_TOKEN", secret)
    out = tmp_path / "runs.jsonl"
    with TraceStore(db) as store:
        assert export_runs(store, [rid], "jsonl", out) == 1
    assert secret not in out.read_text()
    monkeypatch.delenv("ACME_LATE_TOKEN")  # what reads back is the file's own doing
    with TraceStore(tmp_path / "back.db") as back:  # and the export still reads back whole
        import_paths(back, "jsonl", [out])
        (run,) = back.list_runs()
        sent = back.step_inputs(run.id, 0)
        assert [m.role for m in sent] == ["system", "user"]
        assert sent[1].content == "go" and secret not in (sent[0].content or "")
        assert sent[0].content.startswith("use ")
