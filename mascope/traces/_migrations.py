"""Schema migrations: `MIGRATIONS[n]` upgrades a store from version n to n + 1.

Each runs inside the transaction that opens the store, so a failed upgrade
leaves the file as it was. Version 1 is the first released schema.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, inspect, text

Migration = Callable[[Connection], None]


def _job_item_claims(conn: Connection) -> None:
    """v1 -> v2: job items get a worker's claim and the step count they were done at."""
    for column, kind in (
        ("claimed_by", "VARCHAR"),
        ("claimed_at", "TIMESTAMP"),
        ("run_steps", "INTEGER"),
    ):
        conn.execute(text(f"ALTER TABLE job_items ADD COLUMN {column} {kind}"))
    # An item done after its run had finished saw the whole run; one done while
    # the run was still going stays NULL, so the next batch does it again.
    conn.execute(
        text(
            "UPDATE job_items SET run_steps = (SELECT runs.step_count FROM runs WHERE runs.id = job_items.run_id) "
            "WHERE status = 'done' AND EXISTS (SELECT 1 FROM runs WHERE runs.id = job_items.run_id "
            "AND runs.status != 'running' AND runs.finished_at IS NOT NULL AND runs.finished_at <= job_items.updated_at)"
        )
    )


def add_step_inputs(conn: Connection) -> None:
    """v2 -> v3: steps record the messages their model was sent (`steps.inputs`,
    references into the new `blobs` table of distinct texts)."""
    # Plain DDL, not the current models: a migration must keep meaning what it
    # meant when later versions change the tables again.
    if "inputs" not in {c["name"] for c in inspect(conn).get_columns("steps")}:
        conn.execute(text("ALTER TABLE steps ADD COLUMN inputs JSON"))
    conn.execute(
        text(
            "CREATE TABLE IF NOT EXISTS blobs (hash VARCHAR NOT NULL PRIMARY KEY, text TEXT NOT NULL)"
        )
    )


def add_annotation_status(conn: Connection) -> None:
    """v3 -> v4: a label can be uncertain (`annotations.status`, and why in `status_reason`):
    the judge said present, but its evidence did not check out or its samples disagreed."""
    have = {c["name"] for c in inspect(conn).get_columns("annotations")}
    for column, kind in (("status", "VARCHAR"), ("status_reason", "TEXT")):
        if column not in have:
            conn.execute(text(f"ALTER TABLE annotations ADD COLUMN {column} {kind}"))


def add_run_heartbeat(conn: Connection) -> None:
    """v4 -> v5: a running run carries its owner's heartbeat (`runs.heartbeat_at`), so
    whether its owner is alive can be told from any host sharing the store."""
    if "heartbeat_at" not in {c["name"] for c in inspect(conn).get_columns("runs")}:
        kind = "TIMESTAMP WITH TIME ZONE" if conn.dialect.name == "postgresql" else "DATETIME"
        conn.execute(text(f"ALTER TABLE runs ADD COLUMN heartbeat_at {kind}"))


def add_job_item_leases(conn: Connection) -> None:
    """v5 -> v6: job items carry their claim's expiry (`lease_until`, set by the worker
    that holds it), what the work needs (`payload`) and what it produced (`result`)."""
    have = {c["name"] for c in inspect(conn).get_columns("job_items")}
    for column, kind in (("lease_until", "TIMESTAMP"), ("payload", "JSON"), ("result", "JSON")):
        if column not in have:
            conn.execute(text(f"ALTER TABLE job_items ADD COLUMN {column} {kind}"))
    # A claim taken before leases had an expiry lapses at once (NULL): no worker
    # of an older mascope can still hold it, since it cannot open this store.


MIGRATIONS: dict[int, Migration] = {
    1: _job_item_claims,
    2: add_step_inputs,
    3: add_annotation_status,
    4: add_run_heartbeat,
    5: add_job_item_leases,
}
