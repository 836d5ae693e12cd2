"""Sync twins of async methods, without deadlocks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TypeVar

from mascope.errors import SyncInAsyncError

T = TypeVar("T")


def ensure_no_running_loop(sync_name: str, async_name: str) -> None:
    """Refuse to block inside a running event loop, where it would deadlock."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise SyncInAsyncError(
        f"{sync_name}() was called inside a running event loop; "
        f"use `await {async_name}(...)` there instead"
    )


def run_sync(make: Callable[[], Awaitable[T]], sync_name: str, async_name: str) -> T:
    """Run the coroutine `make()` to completion on a fresh event loop."""
    ensure_no_running_loop(sync_name, async_name)

    async def runner() -> T:
        return await make()

    return asyncio.run(runner())


def iterate_sync(
    make: Callable[[], AsyncIterator[T]],
    sync_name: str,
    async_name: str,
    cleanup: Callable[[], Awaitable[None]] | None = None,
) -> Iterator[T]:
    """Drive an async iterator from sync code on a private event loop."""
    ensure_no_running_loop(sync_name, async_name)
    loop = asyncio.new_event_loop()
    agen = make()
    try:
        while True:
            try:
                item = loop.run_until_complete(agen.__anext__())
            except StopAsyncIteration:
                return
            yield item
    finally:
        aclose = getattr(agen, "aclose", None)
        if aclose is not None:
            loop.run_until_complete(aclose())
        if cleanup is not None:
            loop.run_until_complete(cleanup())
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
