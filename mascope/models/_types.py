"""Wire types of the model layer: what goes into a model call and what comes out."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["system", "user", "assistant", "tool"]
ToolChoice = Literal["auto", "none", "required"] | str
"""`auto`, `none`, `required`, or the name of one tool to force."""


class ToolCall(BaseModel):
    """A model's request to call one tool."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)

    def arguments_json(self) -> str:
        return json.dumps(self.arguments, ensure_ascii=False)


class Message(BaseModel):
    """One chat message, in the shape every backend understands."""

    role: Role
    content: str | None = None
    name: str | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    tool_call_id: str | None = None

    @classmethod
    def system(cls, content: str) -> Message:
        return cls(role="system", content=content)

    @classmethod
    def user(cls, content: str) -> Message:
        return cls(role="user", content=content)

    @classmethod
    def assistant(cls, content: str | None, tool_calls: list[ToolCall] | None = None) -> Message:
        return cls(role="assistant", content=content, tool_calls=tool_calls or [])

    @classmethod
    def tool(cls, content: str, *, tool_call_id: str, name: str | None = None) -> Message:
        return cls(role="tool", content=content, tool_call_id=tool_call_id, name=name)


class ToolSpec(BaseModel):
    """A tool the model may call: a name, what it does, a JSON schema of its arguments."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})


class Usage(BaseModel):
    """Tokens one call used."""

    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
        )


RetryKind = Literal["rate_limit", "server_error", "timeout", "connection", "bad_response"]


class RetryEvent(BaseModel):
    """One failed attempt that was retried; the runtime records each of these."""

    attempt: int
    """1-based number of the attempt that failed."""
    kind: RetryKind
    status_code: int | None = None
    wait_seconds: float
    """How long mascope waited before the next attempt."""
    retry_after: float | None = None
    """What the server asked for in `Retry-After`, if it said."""
    message: str = ""


TokenCallback = Callable[[str], None]
"""Called with each piece of a plain-text answer as the model produces it."""


class ChatRequest(BaseModel):
    """Everything one model call needs."""

    messages: list[Message]
    tools: list[ToolSpec] = Field(default_factory=list)
    tool_choice: ToolChoice | None = None
    response_schema: dict[str, Any] | None = None
    """JSON schema the answer must satisfy; set by `ChatModel.achat(output=...)`."""
    schema_name: str = "answer"
    temperature: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    stop: list[str] | None = None

    @property
    def streamable(self) -> bool:
        """A plain-text answer, which a backend can deliver piece by piece (tool calls
        and structured answers are only usable whole, so they are not streamed)."""
        return self.response_schema is None and not (self.tools and self.tool_choice != "none")


class ChatResponse(BaseModel):
    """What one model call produced.

    `parsed` holds the validated structured answer when one was asked for
    (a pydantic instance, or plain JSON data for a dict schema).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model: str
    message: Message
    finish_reason: str | None = None
    usage: Usage = Field(default_factory=Usage)
    latency_s: float = 0.0
    cost_usd: float | None = None
    retries: list[RetryEvent] = Field(default_factory=list)
    repairs: int = 0
    """Re-asks made because the answer did not fit the schema (0 or 1)."""
    parsed: Any = None

    @property
    def text(self) -> str:
        return self.message.content or ""

    @property
    def tool_calls(self) -> list[ToolCall]:
        return self.message.tool_calls
