"""Schema migrations: `MIGRATIONS[n]` upgrades a store from version n to n + 1.

Each runs inside the transaction that opens the store, so a failed upgrade
leaves the file as it was. Version 1 is the first released schema.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, inspect, text

Migration = Callable[[Connection], None]


def add_step_inputs(conn: Connection) -> None:
    """v1 -> v2: steps record the messages their model was sent (`steps.inputs`,
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


MIGRATIONS: dict[int, Migration] = {1: add_step_inputs}
