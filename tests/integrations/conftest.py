"""A real `mascope serve` receiver for the integration tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mascope.integrations import OtlpServer, Receiver
from mascope.traces import TraceStore


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[OtlpServer, Path]]:
    """A receiver on a free loopback port recording into a fresh SQLite store (64 KiB body limit)."""
    db = tmp_path / "mascope.db"
    store = TraceStore(db)
    server = OtlpServer(Receiver(store, idle_timeout_s=3600), port=0, max_body=64 * 1024)
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        yield server, db
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        store.close()
