"""Schema migrations: `MIGRATIONS[n]` upgrades a store from version n to n + 1.

Each runs inside the transaction that opens the store, so a failed upgrade
leaves the file as it was. Version 1 is the first released schema.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection

Migration = Callable[[Connection], None]

MIGRATIONS: dict[int, Migration] = {}
