"""What a run tells a live watcher: its steps as they are recorded, the pieces of an
answer while it is generated, and restarts of an answer whose call was retried."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from mascope._vocabulary import StepKind
from mascope.traces import Redactor

RunEventKind = Literal["step", "token", "restart", "result"]
"""The `event` of each event class: `step`, `token`, `restart`, and `result` (last)."""


@dataclass(frozen=True)
class StepEvent:
    """A step as it is recorded, for live display."""

    event: ClassVar[RunEventKind] = "step"
    run_id: str
    index: int
    agent: str
    kind: StepKind
    content: str
    model: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    latency_s: float | None = None
    error: str | None = None
    event_name: str | None = None
    """For an `event` step, which event (its `data.event`: `interrupt` for a pause)."""


@dataclass(frozen=True)
class TokenEvent:
    """A piece of an agent's plain-text answer while it is being generated.

    The pieces of one answer, joined, are the content of the `message` (or
    `model_call`) step recorded after them, with secrets masked the same way.
    """

    event: ClassVar[RunEventKind] = "token"
    run_id: str
    agent: str
    text: str
    sample: int | None = None
    """Which candidate, when a strategy draws several at once (their pieces interleave)."""
    attempt: int = 1
    """1, or more after a failed call was retried (see `RestartEvent`)."""


@dataclass(frozen=True)
class RestartEvent:
    """The call generating an agent's answer failed mid-way and is being retried:
    the pieces shown since its start (`discarded`) are void, and the answer starts again."""

    event: ClassVar[RunEventKind] = "restart"
    run_id: str
    agent: str
    discarded: str
    attempt: int
    """The attempt that starts now (2 for the first retry)."""
    reason: str = ""
    sample: int | None = None


SHOW_EVERY = 16
"""Characters an answer grows by (or a new line) before more of it is shown."""

StepCallback = Callable[[StepEvent], None]
TokenEventCallback = Callable[[TokenEvent | RestartEvent], None]


@dataclass
class AnswerStream:
    """One answer being streamed: what was generated, and what of it was shown.

    Only text before the last whitespace is shown, and only while masking secrets
    in it agrees with masking the whole text so far, so a secret arriving in pieces
    is never shown before it can be recognised.
    """

    run_id: str
    agent: str
    sample: int | None
    redact: Redactor
    emit: TokenEventCallback
    raw: str = ""
    shown: str = ""
    attempt: int = 1
    _stuck: bool = field(default=False, repr=False)
    _tried: int = field(default=0, repr=False)

    def add(self, piece: str) -> None:
        self.raw += piece
        if not any(ch.isspace() for ch in piece):
            return
        cut = max(self.raw.rfind(" "), self.raw.rfind("\n"), self.raw.rfind("\t")) + 1
        # Masking reads all the text so far: a few words at a time keeps that cheap.
        if cut - self._tried < SHOW_EVERY and "\n" not in piece:
            return
        self._tried = cut
        self._show(self.redact.text(self.raw[:cut]), self.redact.text(self.raw))

    def finish(self) -> None:
        """The answer is complete: show the rest (masked)."""
        whole = self.redact.text(self.raw)
        self._show(whole, whole)

    def restart(self, reason: str) -> None:
        """The call failed and is retried: what was shown is void."""
        if self.shown:
            self.emit(
                RestartEvent(
                    self.run_id, self.agent, self.shown, self.attempt + 1, reason, self.sample
                )
            )
        self.raw, self.shown, self._stuck, self._tried = "", "", False, 0
        self.attempt += 1

    def _show(self, prefix: str, whole: str) -> None:
        if self._stuck or not whole.startswith(prefix):
            return
        if not prefix.startswith(self.shown):
            # A mask now starts inside text already shown (the first line of a PEM
            # key): show nothing more of this answer; its step shows it masked.
            self._stuck = True
            return
        new = prefix[len(self.shown) :]
        if new:
            self.shown = prefix
            self.emit(TokenEvent(self.run_id, self.agent, new, self.sample, self.attempt))


LiveEvent = StepEvent | TokenEvent | RestartEvent


async def live_events(
    queue: asyncio.Queue[LiveEvent], job: asyncio.Future[Any]
) -> AsyncGenerator[LiveEvent, None]:
    """The events `job` puts on `queue`, in order, until it ends (its result or error is
    then the caller's). A caller that stops listening cancels the job."""
    getter: asyncio.Future[LiveEvent] | None = None
    try:
        while True:
            getter = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait({getter, job}, return_when=asyncio.FIRST_COMPLETED)
            if getter in done:
                yield getter.result()
                continue
            while not queue.empty():
                yield queue.get_nowait()
            return
    finally:
        if getter is not None and not getter.done():
            getter.cancel()
        if not job.done():
            job.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await job
