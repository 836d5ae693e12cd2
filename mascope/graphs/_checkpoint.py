"""The run's LangGraph checkpointer, with every string it writes redacted.

The state carries the task and the agents' latest outputs, so without this
the checkpoint database would hold in clear the secrets the trace store masks.
Redacting in the serializer catches every value LangGraph writes (checkpoints,
pending writes, forked state) whatever method of the saver writes it.
"""

from __future__ import annotations

from typing import Any

import aiosqlite
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from mascope.traces import Redactor


class RedactingSerializer:
    """Wraps a LangGraph serializer: values are redacted on the way out, read back as stored."""

    def __init__(self, inner: Any, redactor: Redactor):
        self.inner = inner
        self.redactor = redactor

    def _redact(self, obj: Any) -> Any:
        if isinstance(obj, dict) and "channel_values" in obj and "channel_versions" in obj:
            # A checkpoint: only its channel values are the run's data; the rest
            # (ids, versions, timestamps) is LangGraph's bookkeeping, left exact.
            return {**obj, "channel_values": self.redactor.strings(obj["channel_values"])}
        return self.redactor.strings(obj)

    def dumps_typed(self, obj: Any) -> tuple[str, bytes]:
        return self.inner.dumps_typed(self._redact(obj))  # type: ignore[no-any-return]

    def loads_typed(self, data: tuple[str, bytes]) -> Any:
        return self.inner.loads_typed(data)

    def __getattr__(self, name: str) -> Any:
        # Anything else the saver may ask of its serializer goes to the wrapped one.
        return getattr(self.inner, name)


def checkpoint_saver(conn: aiosqlite.Connection, redactor: Redactor) -> AsyncSqliteSaver:
    """LangGraph's async SQLite saver on `conn`, redacting what it stores with `redactor`."""
    saver = AsyncSqliteSaver(conn)
    saver.serde = RedactingSerializer(saver.serde, redactor)  # type: ignore[assignment]
    return saver
