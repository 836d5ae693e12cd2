"""Sync twins refuse to run inside an event loop instead of deadlocking."""

from __future__ import annotations

import pytest

from mascope.errors import SyncInAsyncError
from mascope.models import ScriptedModel


async def test_chat_inside_a_running_loop_says_to_await() -> None:
    model = ScriptedModel(["hi"])
    with pytest.raises(
        SyncInAsyncError, match=r"chat\(\) was called inside a running event loop.*await achat"
    ):
        model.chat("x")
    assert model.calls == []  # nothing was consumed
    assert (await model.achat("x")).text == "hi"


async def test_stream_inside_a_running_loop_says_to_await() -> None:
    model = ScriptedModel(["hi"])
    with pytest.raises(SyncInAsyncError, match="astream"):
        next(iter(model.stream("x")))


def test_sync_calls_work_repeatedly_outside_a_loop() -> None:
    model = ScriptedModel(["a", "b", "c"])
    assert [model.chat("q").text for _ in range(3)] == ["a", "b", "c"]
    assert list(ScriptedModel(["whole"]).stream("q")) == ["whole"]
