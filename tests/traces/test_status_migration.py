"""Store schema v3 -> v4: labels gain a status (present, absent, uncertain) and why."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from mascope.traces import SCHEMA_VERSION, TraceStore


def test_a_v3_store_upgrades_and_its_old_labels_keep_their_meaning(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    with TraceStore(db) as store:
        rid = store.start_run(team="t", task="x")
        store.add_annotations(rid, [{"mode": "FM-1.1", "present": True, "annotator": "human:ann"}])
    con = sqlite3.connect(db)
    con.execute("ALTER TABLE annotations DROP COLUMN status")
    con.execute("ALTER TABLE annotations DROP COLUMN status_reason")
    con.execute("UPDATE mascope_meta SET value = '3' WHERE key = 'schema_version'")
    con.commit()
    con.close()
    with TraceStore(db) as store:
        assert store.schema_version == SCHEMA_VERSION
        (old,) = store.annotations(rid)
        assert old.status is None and old.label_status == "present"
        store.add_annotations(
            rid,
            [{"mode": "FM-2.2", "present": False, "status": "uncertain",
              "status_reason": "cited step 9 does not exist", "annotator": "llm:m"}],
        )  # fmt: skip
        new = next(a for a in store.annotations(rid) if a.mode == "FM-2.2")
        assert (
            new.label_status == "uncertain" and new.status_reason == "cited step 9 does not exist"
        )
        assert store.modes_by_run([rid])[rid] == ["FM-1.1"]
