"""A store written before job claims (schema v1) opens, upgraded, with its done items kept."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from mascope.diagnosis._batch import _prepare
from mascope.jobs import JobQueue
from mascope.traces import SCHEMA_VERSION, TraceStore


def test_a_v1_store_gains_claims_and_keeps_items_done_after_their_run_ended(
    tmp_path: Path,
) -> None:
    db = tmp_path / "v1.db"
    with TraceStore(db) as store:
        ended = store.start_run(team="t", task="ended before judging")
        store.append_step(ended, agent="a", content="x")
        store.finish_run(ended, status="failed")
        early = store.start_run(team="t", task="judged while still running")
        store.append_step(early, agent="a", content="x")
        queue = JobQueue(store)
        queue.ensure_job("judge-abc", kind="judge", config={})
        queue.enqueue("judge-abc", [ended, early])
        store.append_step(early, agent="a", content="the step the judge never saw")
        store.finish_run(early, status="failed")
    # Make it the v1 file an older mascope wrote: both items done, `early`'s
    # while its run was still going, `ended`'s once its run had finished.
    con = sqlite3.connect(db)
    done = "UPDATE job_items SET status = 'done', updated_at = (SELECT {} FROM runs WHERE id = ?) WHERE run_id = ?"
    con.execute(done.format("started_at"), (early, early))
    con.execute(done.format("finished_at"), (ended, ended))
    for column in ("claimed_by", "claimed_at", "run_steps"):
        con.execute(f"ALTER TABLE job_items DROP COLUMN {column}")
    con.execute("UPDATE mascope_meta SET value = '1' WHERE key = 'schema_version'")
    con.commit()
    con.close()

    with TraceStore(db) as store:
        assert store.schema_version == SCHEMA_VERSION
        views = store.job_item_view("judge-abc", [ended, early])
        assert views[ended].run_steps == 1 and views[early].run_steps is None
        # Only the run judged before it ended is taken up again by the next batch.
        _, _, todo = _prepare(
            store, job_id="judge-abc", kind="judge", config={}, run_ids=[ended, early]
        )
        assert todo == [early]
