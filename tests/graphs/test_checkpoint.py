"""The checkpointer: what LangGraph writes is redacted and reads back as the same types, and a new file opens however many runs open it at once."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from mascope.graphs._checkpoint import RedactingSerializer, open_saver
from mascope.traces import MASK, Redactor, TraceStore

KEY = "sk-proj-Zq8vX2mN4pL7rT1wY6uB3cD9eF0gH5jK"


@dataclass(frozen=True)
class Note:
    text: str
    n: int


def roundtrip(value: object) -> object:
    serde = RedactingSerializer(JsonPlusSerializer(), Redactor({}))
    data = serde.dumps_typed(value)
    assert KEY.encode() not in data[1]
    return serde.loads_typed(data)


def test_state_values_are_redacted_and_keep_their_types() -> None:
    state = {
        "task": f"use {KEY}",
        "outputs": {"caller": f'login({{"password": "hunter2-pw"}}) {KEY}'},
        "turns": 3,
        "done": False,
        "pair": ("a", f"b {KEY}"),
    }
    back = roundtrip(state)
    assert isinstance(back, dict)
    assert back["task"] == f"use {MASK}" and back["turns"] == 3 and back["done"] is False
    assert "hunter2-pw" not in back["outputs"]["caller"]


def test_errors_and_objects_are_redacted() -> None:
    back = roundtrip(ValueError(f"bad task {KEY}"))  # LangGraph keeps an error as its repr
    assert "ValueError" in str(back) and MASK in str(back)
    note = roundtrip(Note(f"k {KEY}", 2))
    assert note == Note(f"k {MASK}", 2)


def test_a_checkpoints_bookkeeping_is_left_exact() -> None:
    checkpoint = {
        "v": 4,
        "id": "1f0-abc",
        "ts": "2026-01-01T00:00:00+00:00",
        "channel_values": {"task": f"use {KEY}"},
        "channel_versions": {"task": "00000000000000000000000000000002.0.1"},
        "versions_seen": {"node": {"task": "00000000000000000000000000000002.0.1"}},
    }
    back = roundtrip(checkpoint)
    assert isinstance(back, dict)
    assert back["channel_values"] == {"task": f"use {MASK}"}
    assert {k: v for k, v in back.items() if k != "channel_values"} == {
        k: v for k, v in checkpoint.items() if k != "channel_values"
    }


def test_runs_opening_a_new_checkpoint_file_together_all_open(tmp_path: Path) -> None:
    # The first opening switches the file to WAL; SQLite answers "database is
    # locked" at once, busy timeout or not, to others opening it at that moment.
    async def open_it(path: Path) -> str:
        async with open_saver(path, Redactor({})) as saver:
            await saver.setup()
            async with saver.conn.execute("PRAGMA journal_mode") as cur:
                row = await cur.fetchone()
                return str(row[0]) if row else ""

    async def many() -> list[str]:
        modes: list[str] = []
        for i in range(40):
            path = tmp_path / f"checkpoints{i}.db"
            modes += await asyncio.gather(*[open_it(path) for _ in range(4)])
        return modes

    assert set(asyncio.run(many())) == {"wal"}


def test_processes_opening_a_new_store_together_all_open(tmp_path: Path) -> None:
    def open_it(path: Path) -> str:
        with TraceStore(path) as store:
            return store.start_run(team="t", task="x")

    with ThreadPoolExecutor(4) as pool:
        for i in range(20):
            path = tmp_path / f"runs{i}.db"
            ids = list(pool.map(open_it, [path] * 4))
            with TraceStore(path) as store:
                assert all(store.get_run(r) is not None for r in ids)
