"""The runs screen's failure-mode column follows labels added while it is open."""

from __future__ import annotations

from pathlib import Path

from mascope.traces import TraceStore, new_id
from mascope.tui import TraceApp, open_for_viewing
from mascope.tui._runs_screen import RunTable

from .conftest import settle, wait_until

SIZE = (130, 30)


def label(mode: str) -> dict[str, object]:
    return {"id": new_id(), "mode": mode, "present": True, "annotator": "llm:judge"}


async def test_labels_added_by_a_batch_show_without_reloading(db: Path) -> None:
    with open_for_viewing(db) as store, TraceStore(db) as writer:
        app = TraceApp(store, poll_interval=0.05)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            table = app.screen.query_one(RunTable)
            await wait_until(pilot, lambda: table.row_count > 0)
            finished = [str(row.key.value) for row in table.ordered_rows][:3]
            assert all("FM-2.3" not in table.get_cell(r, "modes").plain for r in finished)
            # A judge batch in another process labels finished runs (none is running).
            for rid in finished:
                writer.add_annotations(rid, [label("FM-2.3")])
            await wait_until(
                pilot,
                lambda: all("FM-2.3" in table.get_cell(r, "modes").plain for r in finished),
            )
            # Labels replaced by a later judge show too.
            writer.replace_annotations(
                finished[0], annotator_prefix="llm:", annotations=[label("FM-1.1")]
            )
            shown = lambda: table.get_cell(finished[0], "modes").plain  # noqa: E731
            await wait_until(pilot, lambda: "FM-1.1" in shown() and "FM-2.3" not in shown())
