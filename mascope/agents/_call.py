"""The one recorded path for every model call the runtime makes.

Agents, the group-chat manager and rubric verifiers all call their model through
`recorded_chat`, so each retry becomes a `retry` step of the agent (or verifier)
that made the call, and a plain-text answer streams to whoever watches the run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from mascope._vocabulary import StepKind
from mascope.models import (
    ChatModel,
    ChatResponse,
    Message,
    OutputSpec,
    RetryEvent,
    TokenCallback,
    ToolChoice,
)


class Recorder(Protocol):
    """Where a turn writes its steps (the runtime's run context)."""

    def record(
        self,
        *,
        agent: str,
        kind: StepKind,
        content: str = "",
        data: dict[str, Any] | None = None,
        model: str | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        latency_s: float | None = None,
        cost_usd: float | None = None,
        error: str | None = None,
        inputs: Sequence[Message | Mapping[str, Any]] | None = None,
    ) -> int:
        """Record one step; `inputs` are the messages a model was sent for it."""
        ...

    def token_sink(self, agent: str) -> TokenCallback | None:
        """Where the pieces of `agent`'s answer go as they are generated, or None
        when nobody watches the run live (then nothing is streamed)."""
        ...


def retry_text(event: RetryEvent) -> str:
    """How a retry step reads: `retry 1 after server_error (HTTP 503)`."""
    status = f" (HTTP {event.status_code})" if event.status_code else ""
    return f"retry {event.attempt} after {event.kind}{status}"


async def recorded_chat(
    model: ChatModel,
    messages: Sequence[Any],
    *,
    recorder: Recorder | None,
    agent: str,
    tools: Sequence[Any] | None = None,
    tool_choice: ToolChoice | None = None,
    output: OutputSpec | type[Any] | dict[str, Any] | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    seed: int | None = None,
) -> ChatResponse:
    """`model.achat(...)` on behalf of `agent`, recorded.

    Each retry is recorded as a `retry` step of `agent` as it happens; when the
    recorder has a live listener (`Recorder.token_sink`), a plain-text answer
    is streamed to it piece by piece. The caller records the answer itself (its
    tokens, latency and cost are on the response), or, for a `StructuredOutputError`,
    the unusable answer with the tokens the error carries.
    """

    def on_retry(event: RetryEvent) -> None:
        if recorder is not None:
            recorder.record(
                agent=agent,
                kind="retry",
                content=retry_text(event),
                data=event.model_dump(),
                model=model.model_id,
            )

    return await model.achat(
        list(messages),
        tools=tools,
        tool_choice=tool_choice,
        output=output,
        temperature=temperature,
        max_tokens=max_tokens,
        seed=seed,
        on_retry=on_retry,
        on_token=recorder.token_sink(agent) if recorder is not None else None,
    )
