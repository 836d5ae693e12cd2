"""The one protocol every backend implements, async first with sync twins."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from mascope._sync import iterate_sync, run_sync
from mascope.errors import ConfigError, StructuredOutputError

from ._pricing import PriceTable
from ._retry import RetryCallback, RetryPolicy
from ._structured import OutputSpec, OutputType, output_spec, parse_answer, repair_message
from ._types import (
    ChatRequest,
    ChatResponse,
    Message,
    RetryEvent,
    TokenCallback,
    ToolChoice,
    ToolSpec,
)

MessagesLike = str | Sequence[Message | dict[str, Any]]
ToolLike = ToolSpec | dict[str, Any]


class ChatModel(ABC):
    """A chat model behind some backend.

    Use `achat` (or its sync twin `chat`) for one call: plain text, tool
    calls, or a structured answer validated against `output`. Subclasses
    implement `_complete` for one raw call and, where they can, `_stream`.
    """

    backend: str = ""

    def __init__(
        self,
        name: str,
        *,
        retry: RetryPolicy | None = None,
        prices: PriceTable | None = None,
    ):
        self.name = name
        self.retry = retry or RetryPolicy()
        self.prices = prices or PriceTable()

    @property
    def model_id(self) -> str:
        """The model string that selects this model again (`backend:name...`)."""
        return f"{self.backend}:{self.name}"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.model_id}>"

    # -- the protocol ---------------------------------------------------

    async def achat(
        self,
        messages: MessagesLike,
        *,
        tools: Sequence[ToolLike] | None = None,
        tool_choice: ToolChoice | None = None,
        output: OutputType | OutputSpec | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        seed: int | None = None,
        stop: list[str] | None = None,
        on_retry: RetryCallback | None = None,
        on_token: TokenCallback | None = None,
    ) -> ChatResponse:
        """One chat call.

        Args:
            messages: a user prompt, or a list of messages (`Message` or dicts).
            tools: tools the model may call; see `tool_choice` to force one.
            output: a pydantic model, a type, or a JSON schema dict. The answer
                is validated into `ChatResponse.parsed`; an invalid answer is
                re-asked once with the validation error, then
                `StructuredOutputError` is raised.
            on_retry: called with each `RetryEvent` as it happens.
            on_token: called with each piece of the answer as it is generated, for a
                plain-text answer (no tools, no `output`; those are not streamed). A
                backend that cannot stream calls it once with the whole answer. After
                an `on_retry` the answer starts again: pieces of the failed attempt are void.
                The response is the same as without it.
        """
        spec = (
            (output if isinstance(output, OutputSpec) else output_spec(output))
            if output is not None
            else None
        )
        tool_specs = [_as_tool_spec(t) for t in tools or ()]
        _check_tool_choice(tool_choice, tool_specs)
        request = ChatRequest(
            messages=normalize_messages(messages),
            tools=tool_specs,
            tool_choice=tool_choice,
            response_schema=spec.schema if spec else None,
            schema_name=spec.name if spec else "answer",
            temperature=temperature,
            max_tokens=max_tokens,
            seed=seed,
            stop=stop,
        )
        first = await self.acomplete(request, on_retry=on_retry, on_token=on_token)
        if spec is None or first.tool_calls:
            return first
        try:
            first.parsed = parse_answer(first.text, spec)
            return first
        except ValueError as exc:
            reason = str(exc)
        cut_off = first.finish_reason == "length"
        if cut_off:
            reason += f" (it was cut off at the limit of {request.max_tokens or 'the'} tokens)"
        repair = request.model_copy(
            update={
                "messages": [
                    *request.messages,
                    # Long answers shortened: the repair must fit where the request did.
                    Message.assistant(
                        first.text if len(first.text) <= 2000 else first.text[:2000] + " ...[cut]"
                    ),
                    repair_message(first.text, reason, spec, cut_off=cut_off),
                ]
            }
        )
        second = await self.acomplete(repair, on_retry=on_retry)
        merged = _merge(first, second)
        try:
            merged.parsed = parse_answer(second.text, spec)
        except ValueError as exc:
            if second.finish_reason == "length":
                exc = ValueError(f"{exc} (it was cut off at the token limit)")
            raise StructuredOutputError(
                f"{self.model_id} did not produce {_what(spec)} even after one repair ({exc}); "
                "use a stronger model or a simpler schema",
                last_answer=second.text,
                reason=str(exc),
                finish_reason=second.finish_reason,
                input_tokens=merged.usage.input_tokens,
                output_tokens=merged.usage.output_tokens,
            ) from None
        return merged

    def chat(
        self,
        messages: MessagesLike,
        *,
        tools: Sequence[ToolLike] | None = None,
        tool_choice: ToolChoice | None = None,
        output: OutputType | OutputSpec | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        seed: int | None = None,
        stop: list[str] | None = None,
        on_retry: RetryCallback | None = None,
        on_token: TokenCallback | None = None,
    ) -> ChatResponse:
        """Sync twin of `achat`."""

        async def call() -> ChatResponse:
            try:
                return await self.achat(
                    messages,
                    tools=tools,
                    tool_choice=tool_choice,
                    output=output,
                    temperature=temperature,
                    max_tokens=max_tokens,
                    seed=seed,
                    stop=stop,
                    on_retry=on_retry,
                    on_token=on_token,
                )
            finally:
                await self._release_loop_resources()

        return run_sync(call, "chat", "achat")

    async def acomplete(
        self,
        request: ChatRequest,
        *,
        on_retry: RetryCallback | None = None,
        on_token: TokenCallback | None = None,
    ) -> ChatResponse:
        """One raw call for a fully built request (no schema validation or repair);
        `on_token` as in `achat`."""
        events: list[RetryEvent] = []
        started = time.perf_counter()
        if on_token is not None and request.streamable:
            response = await self._complete_streaming(request, events, on_retry, on_token)
        else:
            response = await self._complete(request, events, on_retry)
        response.latency_s = time.perf_counter() - started
        response.retries = events
        if response.cost_usd is None:
            response.cost_usd = self.cost_of(response)
        return response

    def complete(
        self, request: ChatRequest, *, on_retry: RetryCallback | None = None
    ) -> ChatResponse:
        """Sync twin of `acomplete`."""

        async def call() -> ChatResponse:
            try:
                return await self.acomplete(request, on_retry=on_retry)
            finally:
                await self._release_loop_resources()

        return run_sync(call, "complete", "acomplete")

    async def astream(
        self,
        messages: MessagesLike,
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        seed: int | None = None,
        stop: list[str] | None = None,
    ) -> AsyncIterator[str]:
        """Yield a plain-text answer in pieces as the model produces them."""
        request = ChatRequest(
            messages=normalize_messages(messages),
            temperature=temperature,
            max_tokens=max_tokens,
            seed=seed,
            stop=stop,
        )
        async for piece in self._stream(request):
            yield piece

    def stream(
        self,
        messages: MessagesLike,
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        seed: int | None = None,
        stop: list[str] | None = None,
    ) -> Iterator[str]:
        """Sync twin of `astream`."""
        return iterate_sync(
            lambda: self.astream(
                messages, temperature=temperature, max_tokens=max_tokens, seed=seed, stop=stop
            ),
            "stream",
            "astream",
            cleanup=self._release_loop_resources,
        )

    def cost_of(self, response: ChatResponse) -> float | None:
        return self.prices.cost(self.name, response.usage)

    async def aclose(self) -> None:
        """Release connections and loaded weights."""
        await self._release_loop_resources()

    # -- for backends -----------------------------------------------------

    @abstractmethod
    async def _complete(
        self, request: ChatRequest, events: list[RetryEvent], on_retry: RetryCallback | None
    ) -> ChatResponse:
        """One call; append retries to `events`. Honour `request.response_schema`
        as well as the backend can (validation happens in `achat`)."""

    async def _complete_streaming(
        self,
        request: ChatRequest,
        events: list[RetryEvent],
        on_retry: RetryCallback | None,
        on_token: TokenCallback,
    ) -> ChatResponse:
        """One plain-text call that hands each piece to `on_token` as it arrives and
        returns the whole response, as `_complete` would. A failed attempt that is
        retried starts the answer again after its `on_retry`. This default, for backends
        that cannot stream, hands over the whole answer as one piece."""
        response = await self._complete(request, events, on_retry)
        if response.text:
            on_token(response.text)
        return response

    async def _stream(self, request: ChatRequest) -> AsyncIterator[str]:
        response = await self.acomplete(request)
        yield response.text

    async def _release_loop_resources(self) -> None:
        """Drop anything bound to the current event loop (HTTP connections)."""


def normalize_messages(messages: MessagesLike) -> list[Message]:
    if isinstance(messages, str):
        return [Message.user(messages)]
    out: list[Message] = []
    for i, m in enumerate(messages):
        if isinstance(m, Message):
            out.append(m)
        elif isinstance(m, dict):
            try:
                out.append(Message.model_validate(m))
            except ValueError as exc:
                raise ConfigError(f"message {i} is not a valid chat message: {exc}") from None
        else:
            raise ConfigError(f"message {i} must be a Message or a dict, not {type(m).__name__}")
    if not out:
        raise ConfigError("a chat call needs at least one message")
    return out


def _as_tool_spec(tool: ToolLike) -> ToolSpec:
    if isinstance(tool, ToolSpec):
        return tool
    if isinstance(tool, dict):
        fn = tool.get("function", tool) if tool.get("type") == "function" else tool
        try:
            return ToolSpec.model_validate(fn)
        except ValueError as exc:
            raise ConfigError(f"tool definition is not valid: {exc}") from None
    raise ConfigError(f"a tool must be a ToolSpec or a dict, not {type(tool).__name__}")


def _check_tool_choice(choice: ToolChoice | None, tools: list[ToolSpec]) -> None:
    if choice is None or choice in ("auto", "none"):
        return
    if not tools:
        raise ConfigError(f"tool_choice={choice!r} needs at least one tool")
    if choice == "required":
        return
    names = [t.name for t in tools]
    if choice not in names:
        from mascope.errors import did_you_mean

        raise ConfigError(
            f"tool_choice names {choice!r}, which is not among the tools {names}"
            + did_you_mean(choice, names)
        )


def _what(spec: OutputSpec) -> str:
    """How an error names the answer it asked for: by its keys, never a Python class name."""
    props = spec.schema.get("properties")
    if isinstance(props, dict) and props:
        return "a valid JSON answer {" + ", ".join(str(k) for k in props) + "}"
    return "a valid JSON answer"


def _merge(first: ChatResponse, second: ChatResponse) -> ChatResponse:
    cost: float | None = None
    if first.cost_usd is not None and second.cost_usd is not None:
        cost = first.cost_usd + second.cost_usd
    return second.model_copy(
        update={
            "usage": first.usage + second.usage,
            "latency_s": first.latency_s + second.latency_s,
            "cost_usd": cost,
            "retries": [*first.retries, *second.retries],
            "repairs": first.repairs + second.repairs + 1,
        }
    )
