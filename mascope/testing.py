"""Test your own teams the way mascope tests its own: scripted models and a throwaway store.

from mascope.testing import ScriptedModel, temporary_store

def test_my_team():
    with temporary_store() as store:
        team = Team("t", [Agent("a", model=ScriptedModel(["hello"]))], store=store)
        assert team.run("greet").answer == "hello"
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mascope.models import ScriptedModel, ScriptedReply
from mascope.traces import TraceStore

__all__ = ["ScriptedModel", "ScriptedReply", "temporary_store"]


@contextmanager
def temporary_store() -> Iterator[TraceStore]:
    """A trace store in a temporary folder, deleted afterwards."""
    with tempfile.TemporaryDirectory(prefix="mascope-test-") as tmp:
        store = TraceStore(Path(tmp) / "mascope.db")
        try:
            yield store
        finally:
            store.close()
