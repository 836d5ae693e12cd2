"""A strict-order test double: replies come from a script, in order."""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from mascope._files import read_yaml
from mascope.errors import ConfigError, ScriptError

from ._base import ChatModel
from ._retry import RetryCallback
from ._types import (
    ChatRequest,
    ChatResponse,
    Message,
    RetryEvent,
    TokenCallback,
    ToolCall,
    Usage,
)


class ScriptedReply(BaseModel):
    """One scripted answer, with an optional check on the request it answers."""

    content: str | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    expect: str | None = None
    """A substring the request's last message must contain."""
    finish_reason: str = "stop"


Reply = str | ScriptedReply | Message | ChatResponse | Exception | Callable[[ChatRequest], Any]


class ScriptedModel(ChatModel):
    """Answers each call with the next scripted reply, strictly in order.

    A call after the script is used up, or one that fails a reply's
    `expect`, raises `ScriptError` describing the call. `unused` lists the
    replies never consumed; `assert_all_used()` fails if there are any.
    A reply may be a string, a `ScriptedReply`, a `Message`, a full
    `ChatResponse`, an exception to raise, or a function (sync or async) of the request.
    """

    backend = "scripted"

    def __init__(self, replies: Iterable[Reply], *, name: str = "script"):
        super().__init__(name)
        self._replies: list[Reply] = list(replies)
        self._next = 0
        self.calls: list[ChatRequest] = []

    @property
    def model_id(self) -> str:
        return "scripted" if self.name == "script" else f"scripted:{self.name}"

    @property
    def unused(self) -> list[Reply]:
        return self._replies[self._next :]

    def assert_all_used(self) -> None:
        if self.unused:
            raise ScriptError(
                f"{len(self.unused)} scripted repl{'y was' if len(self.unused) == 1 else 'ies were'} "
                f"never used: {[_describe(r) for r in self.unused]}"
            )

    def add(self, *replies: Reply) -> None:
        self._replies.extend(replies)

    async def _complete(
        self, request: ChatRequest, events: list[RetryEvent], on_retry: RetryCallback | None
    ) -> ChatResponse:
        self.calls.append(request)
        number = len(self.calls)
        last = request.messages[-1].content or "" if request.messages else ""
        if self._next >= len(self._replies):
            raise ScriptError(
                f"scripted model got call {number} but its script has only "
                f"{len(self._replies)} repl{'y' if len(self._replies) == 1 else 'ies'}; "
                f"the unexpected call's last message: {_short(last)!r}"
            )
        reply = self._replies[self._next]
        self._next += 1
        if callable(reply) and not isinstance(reply, BaseModel | Exception):
            reply = reply(request)
            if inspect.isawaitable(reply):  # an async reply can wait on other calls
                reply = await reply
        if isinstance(reply, Exception):
            raise reply
        if (
            isinstance(reply, ScriptedReply)
            and reply.expect is not None
            and reply.expect not in last
        ):
            raise ScriptError(
                f"scripted call {number} expected a last message containing {reply.expect!r}, "
                f"got {_short(last)!r}"
            )
        return _to_response(reply, request, self.model_id)

    async def _complete_streaming(
        self,
        request: ChatRequest,
        events: list[RetryEvent],
        on_retry: RetryCallback | None,
        on_token: TokenCallback,
    ) -> ChatResponse:
        """Streams the scripted answer a word at a time, as a backend would."""
        response = await self._complete(request, events, on_retry)
        for piece in re.findall(r"\s*\S+|\s+$", response.text):
            on_token(piece)
        return response


def _to_response(reply: Any, request: ChatRequest, model_id: str) -> ChatResponse:
    if isinstance(reply, ChatResponse):
        return reply.model_copy(deep=True)
    if isinstance(reply, Message):
        message = reply
        finish = "tool_calls" if reply.tool_calls else "stop"
    elif isinstance(reply, ScriptedReply):
        message = Message.assistant(reply.content, reply.tool_calls)
        finish = "tool_calls" if reply.tool_calls else reply.finish_reason
    elif isinstance(reply, str):
        message = Message.assistant(reply)
        finish = "stop"
    elif isinstance(reply, dict | list):
        message = Message.assistant(json.dumps(reply))
        finish = "stop"
    else:
        raise ScriptError(f"a scripted reply cannot be a {type(reply).__name__}")
    prompt_chars = sum(len(m.content or "") for m in request.messages)
    usage = Usage(
        input_tokens=max(1, prompt_chars // 4),
        output_tokens=max(1, len(message.content or "") // 4),
    )
    return ChatResponse(
        model=model_id, message=message, finish_reason=finish, usage=usage, cost_usd=0.0
    )


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe(reply: Reply) -> str:
    if isinstance(reply, str):
        return _short(reply, 40)
    if isinstance(reply, ScriptedReply):
        return _short(reply.content or f"tool calls {[c.name for c in reply.tool_calls]}", 40)
    return type(reply).__name__


_SHAPE = (
    'a reply is a string or {content: "...", tool_calls: [{name: tool, arguments: {...}}], '
    'expect: "..."}'
)


def load_script(path: str | Path) -> list[Reply]:
    """Replies from a JSON/YAML file: a list of strings or
    `{content, tool_calls: [{name, arguments}], expect}` objects."""
    path = Path(path)
    raw = read_yaml(path, what="script file")
    if not isinstance(raw, list):
        raise ConfigError(f"script file {path} must hold a list of replies")
    replies: list[Reply] = []
    for i, item in enumerate(raw):
        if isinstance(item, str):
            replies.append(item)
            continue
        if isinstance(item, dict):
            calls: Sequence[Any] = item.get("tool_calls") or []
            try:
                replies.append(
                    ScriptedReply(
                        content=item.get("content"),
                        expect=item.get("expect"),
                        tool_calls=[
                            ToolCall(
                                id=c.get("id", f"call_{i}_{j}"),
                                name=c["name"],
                                arguments=c.get("arguments", {}),
                            )
                            for j, c in enumerate(calls)
                        ],
                    )
                )
                continue
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"])
                field = "tool_calls" if exc.title == "ToolCall" else ""
                field = f"{field}.{where}" if field and where else field or where
                raise ConfigError(
                    f"script file {path}, reply {i}: {field}: {first['msg']}; {_SHAPE}"
                ) from None
            except (KeyError, TypeError, AttributeError):  # tool_calls of the wrong shape
                raise ConfigError(
                    f"script file {path}, reply {i}: tool_calls: each call needs a name; {_SHAPE}"
                ) from None
        raise ConfigError(
            f"script file {path}, reply {i}: expected a string or an object; {_SHAPE}"
        )
    return replies
