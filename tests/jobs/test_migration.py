"""Store schema v5 -> v6: job items gain a lease expiry, a payload and a result."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from mascope.jobs import JobQueue
from mascope.traces import SCHEMA_VERSION, TraceStore


def test_a_v5_store_upgrades_and_a_claim_taken_before_leases_is_free(tmp_path: Path) -> None:
    db = tmp_path / "v5.db"
    with TraceStore(db) as store:
        queue = JobQueue(store)
        queue.ensure_job("judge-abc", kind="judge", config={})
        queue.enqueue("judge-abc", ["r1", "r2"])
    con = sqlite3.connect(db)
    for column in ("lease_until", "payload", "result"):
        con.execute(f"ALTER TABLE job_items DROP COLUMN {column}")
    # A worker of the older mascope had claimed r1 (it cannot be working on it now:
    # an older mascope refuses a v6 store).
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    con.execute("UPDATE job_items SET claimed_by = 'elsewhere:1:1/x', claimed_at = ? WHERE run_id = 'r1'", (now,))  # fmt: skip
    con.execute("UPDATE mascope_meta SET value = '5' WHERE key = 'schema_version'")
    con.commit()
    con.close()
    with TraceStore(db) as store:
        assert store.schema_version == SCHEMA_VERSION == 6
        assert sorted(c.key for c in JobQueue(store).claim("judge-abc", 5)) == ["r1", "r2"]
