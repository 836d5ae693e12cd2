"""Retrying transient endpoint failures with tenacity, reporting every retry."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

from ._types import RetryEvent, RetryKind

T = TypeVar("T")
RetryCallback = Callable[[RetryEvent], None]


@dataclass(frozen=True)
class RetryPolicy:
    """How transient failures (429, 5xx, timeouts, dropped connections) are retried.

    The wait before retry n is `initial_wait * 2**(n-1)` plus up to `jitter`
    of that again at random, capped at `max_wait`; a server's `Retry-After`
    replaces the computed wait (also capped).
    """

    max_retries: int = 4
    initial_wait: float = 0.5
    max_wait: float = 30.0
    jitter: float = 0.25
    timeout: float = 120.0
    """Seconds one attempt may take."""

    def backoff(self, retry_number: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return max(0.0, min(retry_after, self.max_wait))
        base = self.initial_wait * 2.0 ** (retry_number - 1)
        wait: float = base * (1 + random.uniform(0, self.jitter))
        return min(wait, self.max_wait)


class Transient(Exception):
    """An attempt failed in a way worth retrying."""

    def __init__(
        self,
        kind: RetryKind,
        message: str,
        *,
        status_code: int | None = None,
        retry_after: float | None = None,
    ):
        super().__init__(message)
        self.kind: RetryKind = kind
        self.message = message
        self.status_code = status_code
        self.retry_after = retry_after


async def with_retries(
    attempt: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    events: list[RetryEvent],
    on_retry: RetryCallback | None = None,
) -> T:
    """Call `attempt` until it succeeds or raises something other than `Transient`.

    Each retry is appended to `events` and passed to `on_retry` before the wait.
    When retries run out, the last `Transient` is raised.
    """

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        retry_after = exc.retry_after if isinstance(exc, Transient) else None
        return policy.backoff(state.attempt_number, retry_after)

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        if not isinstance(exc, Transient):  # pragma: no cover - retry only catches Transient
            return
        event = RetryEvent(
            attempt=state.attempt_number,
            kind=exc.kind,
            status_code=exc.status_code,
            wait_seconds=round(state.upcoming_sleep, 4),
            retry_after=exc.retry_after,
            message=exc.message,
        )
        events.append(event)
        if on_retry is not None:
            on_retry(event)

    # Most calls succeed at once: that attempt runs outside tenacity, whose set-up
    # costs more CPU per call than a judge batch can spare at high concurrency.
    # A first failure is handed to tenacity as its first attempt's outcome.
    try:
        return await attempt()
    except Transient as exc:
        first: Transient | None = exc

    async def resumed() -> T:
        nonlocal first
        if first is not None:
            failed, first = first, None
            raise failed
        return await attempt()

    retrying = AsyncRetrying(
        stop=stop_after_attempt(policy.max_retries + 1),
        wait=wait,
        retry=retry_if_exception_type(Transient),
        before_sleep=before_sleep,
        sleep=asyncio.sleep,
        reraise=True,
    )
    return await retrying(resumed)


def parse_retry_after(headers: object) -> float | None:
    """Seconds a server asked us to wait (`retry-after-ms` or `Retry-After`)."""
    get = getattr(headers, "get", None)
    if get is None:
        return None
    ms = get("retry-after-ms")
    if ms is not None:
        try:
            return float(ms) / 1000
        except ValueError:
            pass
    value = get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    from datetime import UTC, datetime

    return max(0.0, (when - datetime.now(UTC)).total_seconds())
