"""`browse`: the TUI on a store, its first screen read with sqlite3 before the store opens."""

from __future__ import annotations

from pathlib import Path

from ._source import FIRST_PAGE, STEP_PAGE, StoreSource, open_for_viewing


def _open_source(target: str | Path | None, run_id: str | None) -> tuple[StoreSource, str | None]:
    """A source for the app and the run to show first (resolved from a prefix).

    A SQLite file is checked and its first page read with `sqlite3`; the full
    store opens in the background once the screen is up. Server stores, stores
    that need a migration and run ids that are not one run's take the slow way,
    which gives the same errors as before.
    """
    if target is None:
        from mascope.settings import Settings  # only for the default: not before the first paint

        target = Settings.load().db
    raw = str(target)
    if "://" not in raw and raw != ":memory:":
        from mascope.traces import StoreGlance

        path = Path(raw).expanduser()
        with StoreGlance(path) as glance:  # a foreign file fails here, unchanged
            if glance.usable:
                if run_id is None:
                    first = glance.runs(limit=FIRST_PAGE)
                    return StoreSource(target=path, where=glance.where, first_runs=first), None
                rid = glance.resolve_run_id(run_id)
                first_run = None if rid is None else glance.run(rid, steps=STEP_PAGE)
                if rid is not None and first_run is not None:
                    return StoreSource(target=path, where=glance.where, first_run=first_run), rid
    store = open_for_viewing(target)
    try:
        rid = store.resolve_run_id(run_id) if run_id else None
    except BaseException:
        store.close()
        raise
    return StoreSource(store=store, owns_store=True), rid


def browse(
    target: str | Path | None = None, *, run_id: str | None = None, poll_interval: float = 1.0
) -> None:
    """Run the TUI on the store at `target` until the user quits (what `mascope tui` does).

    On a SQLite file the first screen is painted before the full store is
    opened, so it shows about as fast as a bare Textual app.

    Args:
        target: a SQLite path or SQLAlchemy URL; default `MASCOPE_DB` or `./mascope.db`.
        run_id: open this run first (an id or a unique prefix).
        poll_interval: seconds between looks for new runs and steps; 0 turns live off.
    """
    source, rid = _open_source(target, run_id)
    try:
        from ._app import TraceApp

        TraceApp(source, run_id=rid, poll_interval=poll_interval).run()
    finally:
        source.close()
