"""Agents: an LLM playing a role, or a Python function, taking one turn at a time."""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from mascope._vocabulary import StepKind
from mascope.errors import ConfigError
from mascope.models import ChatModel, Message, RetryEvent, ToolCall

from ._spec import AgentSpec, render_system_prompt
from ._tools import FINAL_ANSWER, Tool, ToolArgumentError, ToolUnavailable, tool


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


@dataclass(frozen=True)
class TranscriptEntry:
    index: int
    agent: str
    kind: str
    content: str


@dataclass
class TurnContext:
    """What an agent sees when it takes a turn."""

    task: str
    agent: str
    prompt: str
    """The user message the runtime built for this turn (task, context, feedback)."""
    transcript: Sequence[TranscriptEntry]
    outputs: Mapping[str, str]
    last_output: str | None
    feedback: str | None
    round: int
    """Agent turns and verifications the run has taken so far."""
    recorder: Recorder
    tools: Mapping[str, Tool] = field(default_factory=dict)
    allowed_tools: frozenset[str] = frozenset()
    team: str = ""
    teammates: tuple[str, ...] = ()
    stop_phrase: str | None = None
    sample: int = 0
    """Which sample this is when a strategy draws several (0-based)."""

    async def call_tool(self, name: str, **arguments: Any) -> str:
        """Call a tool as this agent (for function agents); refused if outside the role."""
        return await _run_tool_call(self, ToolCall(id=f"fn_{name}", name=name, arguments=arguments))


@dataclass
class TurnResult:
    output: str
    final: bool = False
    """The agent called the final-answer tool."""
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    message_step: int = -1


AgentFn = Callable[[TurnContext], str | Awaitable[str]]


class Agent:
    """A role in a team: an LLM agent, or a function agent when `fn` is given.

    Args:
        name: unique within the team.
        role, goal, instructions, constraints: rendered into the system prompt.
        tools: functions (or `Tool`s, or names of team tools) this role may call.
        model: model string or `ChatModel`; default the team's.
        fn: a callable `(TurnContext) -> str` (sync or async) that takes the
            turn instead of a model.
    """

    def __init__(
        self,
        name: str,
        *,
        role: str = "",
        goal: str = "",
        instructions: str = "",
        constraints: Sequence[str] = (),
        tools: Sequence[Tool | Callable[..., Any] | str] = (),
        output_schema: dict[str, Any] | None = None,
        model: str | ChatModel | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        fn: AgentFn | None = None,
        function: str | None = None,
        max_tool_calls: int = 5,
    ):
        self.tools: dict[str, Tool] = {}
        names: list[str] = []
        for t in tools:
            if isinstance(t, str):
                names.append(t)
            else:
                made = tool(t) if not isinstance(t, Tool) else t
                self.tools[made.name] = made
                names.append(made.name)
        self.model: str | ChatModel | None = model
        self.fn = fn
        if fn is not None and not callable(fn):
            raise ConfigError(f"agent {name}: fn must be callable")
        source = function
        if fn is not None and source is None:
            module, qual = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
            if module and module != "__main__" and "<" not in qual:
                source = f"{module}:{qual}"
        self.spec = AgentSpec(
            name=name,
            role=role,
            goal=goal,
            instructions=instructions,
            constraints=list(constraints),
            tools=names,
            output_schema=output_schema,
            model=model
            if isinstance(model, str)
            else (model.model_id if model is not None else None),
            temperature=temperature,
            max_tokens=max_tokens,
            function=source,
            max_tool_calls=max_tool_calls,
        )
        self.importable = fn is None or source is not None

    @classmethod
    def from_spec(
        cls, spec: AgentSpec, *, base_dir: str | Path | None = None, source: str | None = None
    ) -> Agent:
        """An agent from its spec; a `function:` is looked up in `base_dir` first."""
        fn = None
        if spec.function:
            from ._tools import import_object

            fn = import_object(
                spec.function,
                what=f"agent {spec.name}'s function",
                base_dir=base_dir,
                source=source,
            )
            if not callable(fn):
                raise ConfigError(f"agent {spec.name}: {spec.function} is not callable")
        agent = cls(
            spec.name,
            role=spec.role,
            goal=spec.goal,
            instructions=spec.instructions,
            constraints=spec.constraints,
            tools=list(spec.tools),
            output_schema=spec.output_schema,
            model=spec.model,
            temperature=spec.temperature,
            max_tokens=spec.max_tokens,
            fn=fn,
            function=spec.function,
            max_tool_calls=spec.max_tool_calls,
        )
        return agent

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def is_function(self) -> bool:
        return self.fn is not None

    def __repr__(self) -> str:
        kind = "function" if self.fn else "llm"
        return f"<Agent {self.name} ({kind})>"

    async def aturn(self, ctx: TurnContext, model: ChatModel | None) -> TurnResult:
        """Take one turn; records its steps through `ctx.recorder` and returns the output."""
        if self.fn is not None:
            return await self._function_turn(ctx)
        if model is None:
            raise ConfigError(f"agent {self.name} has no model")
        return await self._model_turn(ctx, model)

    async def _function_turn(self, ctx: TurnContext) -> TurnResult:
        assert self.fn is not None
        result = self.fn(ctx)
        if inspect.isawaitable(result):
            result = await result
        output = (
            result
            if isinstance(result, str)
            else json.dumps(result, ensure_ascii=False, default=str)
        )
        index = ctx.recorder.record(
            agent=self.name, kind="message", content=output, data=_sample_data(ctx)
        )
        return TurnResult(output=output, message_step=index)

    async def _model_turn(self, ctx: TurnContext, model: ChatModel) -> TurnResult:
        allowed = [ctx.tools[n] for n in self.spec.tools if n in ctx.tools]
        system = render_system_prompt(
            self.spec,
            team=ctx.team,
            teammates=[t for t in ctx.teammates if t != self.name],
            tool_names=[t.name for t in allowed],
            stop_phrase=ctx.stop_phrase,
        )
        messages: list[Message] = [Message.system(system), Message.user(ctx.prompt)]
        offered = [t.spec for t in allowed]
        if FINAL_ANSWER in ctx.tools and FINAL_ANSWER not in self.spec.tools:
            offered.append(ctx.tools[FINAL_ANSWER].spec)
        result = TurnResult(output="")

        def on_retry(event: RetryEvent) -> None:
            ctx.recorder.record(
                agent=self.name,
                kind="retry",
                content=f"retry {event.attempt} after {event.kind}"
                + (f" (HTTP {event.status_code})" if event.status_code else ""),
                data=event.model_dump(),
                model=model.model_id,
            )

        for _ in range(self.spec.max_tool_calls + 1):
            reply = await model.achat(
                messages,
                tools=offered or None,
                output=self.spec.output_schema if not offered else None,
                temperature=self.spec.temperature,
                max_tokens=self.spec.max_tokens,
                seed=ctx.sample if ctx.sample else None,
                on_retry=on_retry,
            )
            result.input_tokens += reply.usage.input_tokens
            result.output_tokens += reply.usage.output_tokens
            result.cost_usd += reply.cost_usd or 0.0
            common: dict[str, Any] = {
                "model": model.model_id,
                "input_tokens": reply.usage.input_tokens,
                "output_tokens": reply.usage.output_tokens,
                "latency_s": reply.latency_s,
                "cost_usd": reply.cost_usd,
            }
            if not reply.tool_calls:
                output = (
                    reply.text
                    if reply.parsed is None
                    else json.dumps(_jsonable(reply.parsed), ensure_ascii=False)
                )
                data = {**_sample_data(ctx), "finish_reason": reply.finish_reason}
                if reply.repairs:
                    data["repairs"] = reply.repairs
                result.message_step = ctx.recorder.record(
                    agent=self.name,
                    kind="message",
                    content=output,
                    data=data,
                    inputs=list(messages),
                    **common,
                )
                result.output = output
                return result
            ctx.recorder.record(
                agent=self.name,
                kind="model_call",
                content=reply.text,
                data={
                    "tool_calls": [c.model_dump() for c in reply.tool_calls],
                    "finish_reason": reply.finish_reason,
                },
                inputs=list(messages),
                **common,
            )
            messages.append(Message.assistant(reply.text or None, reply.tool_calls))
            for call in reply.tool_calls:
                if call.name == FINAL_ANSWER and FINAL_ANSWER in ctx.tools:
                    answer = str(call.arguments.get("answer", "")).strip()
                    result.message_step = ctx.recorder.record(
                        agent=self.name,
                        kind="message",
                        content=answer,
                        data={**_sample_data(ctx), "final_answer_tool": True},
                    )
                    result.output, result.final = answer, True
                    return result
                text = await _run_tool_call(ctx, call, agent=self.name, allowed=self.spec.tools)
                messages.append(Message.tool(text, tool_call_id=call.id, name=call.name))
        output = f"(no answer: {self.spec.max_tool_calls} tool calls without a reply)"
        result.message_step = ctx.recorder.record(
            agent=self.name, kind="message", content=output, data={"gave_up": True}
        )
        result.output = output
        return result


async def _run_tool_call(
    ctx: TurnContext,
    call: ToolCall,
    *,
    agent: str | None = None,
    allowed: Sequence[str] | None = None,
) -> str:
    who = agent or ctx.agent
    permitted = set(allowed) if allowed is not None else set(ctx.allowed_tools)
    if call.name not in ctx.tools:
        # A model calls a tool by the name it was offered (an MCP tool `calc.add` is
        # offered as `calc__add`, since model APIs refuse dots): record the team's name.
        offered = next((t for t in ctx.tools.values() if t.spec.name == call.name), None)
        if offered is not None:
            call = call.model_copy(update={"name": offered.name})
    ctx.recorder.record(
        agent=who, kind="tool_call", content=f"{call.name}({json.dumps(call.arguments, ensure_ascii=False)[:500]})",
        data={"tool": call.name, "call_id": call.id, "arguments": call.arguments},
    )  # fmt: skip
    if call.name not in permitted:
        reason = f"refused: {call.name} is not one of {who}'s tools ({', '.join(sorted(permitted)) or 'none'})"
        ctx.recorder.record(
            agent=who, kind="refusal", content=reason, data={"tool": call.name, "call_id": call.id}
        )
        return reason
    the_tool = ctx.tools.get(call.name)
    if the_tool is None:
        text = f"error: no tool named {call.name}"
        ctx.recorder.record(
            agent=who,
            kind="tool_result",
            content=text,
            data={"tool": call.name, "call_id": call.id},
            error=text,
        )
        return text
    try:
        text = await the_tool.acall(call.arguments)
        error = None
    except ToolArgumentError as exc:
        text, error = f"error: {exc}", str(exc)
    except ToolUnavailable as exc:  # the tool's server is gone: the run ends here
        ctx.recorder.record(
            agent=who, kind="tool_result", content=f"error: {exc}",
            data={"tool": call.name, "call_id": call.id}, error=str(exc),
        )  # fmt: skip
        raise
    except Exception as exc:  # a tool's own failure is reported back to the model
        text, error = f"error: {type(exc).__name__}: {exc}", f"{type(exc).__name__}: {exc}"
    ctx.recorder.record(
        agent=who,
        kind="tool_result",
        content=text[:20_000],
        data={"tool": call.name, "call_id": call.id},
        error=error,
    )
    return text


def _sample_data(ctx: TurnContext) -> dict[str, Any]:
    return {"turn": ctx.round, **({"sample": ctx.sample} if ctx.sample else {})}


def _jsonable(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    return dump(mode="json") if callable(dump) else value
