"""From OpenTelemetry spans to mascope runs and steps.

Two conventions are read: the OpenTelemetry GenAI semantic conventions
(`gen_ai.operation.name` = `invoke_agent`, `chat`, `text_completion`,
`execute_tool`, ...; messages in `gen_ai.input.messages` /
`gen_ai.output.messages` / `gen_ai.system_instructions`, or in the older
`gen_ai.prompt`/`gen_ai.completion` attributes and events) and OpenInference
(`openinference.span.kind` AGENT/LLM/TOOL/CHAIN, flattened
`llm.input_messages.*` / `llm.output_messages.*`, `input.value` /
`output.value`, `tool.name`, `llm.token_count.*`).

The rule: a span with child spans is structure (it names the agent of what
is under it, and the root gives the run its task and answer); a span without
children is a step. Model and tool spans are always steps: a model call is
the agent's message, a tool span its call and its result. A span of a
convention mascope does not know becomes a generic `event` step, never
dropped. Attributes no rule reads stay in the step's data and the run's
metadata. Everything here is untrusted: text is bounded and the store
redacts it when written.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from ._otel_messages import (
    EVENT_ROLES,
    MESSAGE_KEYS,
    MESSAGE_PREFIXES,
    as_text,
    decode_json,
    message_text,
    messages,
)
from ._spans import SpanRecord

SpanRole = Literal["llm", "tool", "agent", "chain", "other"]

_LLM_OPS = {"chat", "text_completion", "generate_content"}
_OTHER_OPS = {"embeddings", "retrieval", "create_agent"}
_MAX_ATTR_TEXT = 2000
"""Characters of an unmapped attribute value kept in metadata."""
_MAX_UNMAPPED_KEYS = 200


@dataclass
class StepDraft:
    """A step before it has an index: what `TraceStore.append_step` takes, plus when."""

    agent: str
    kind: str
    content: str = ""
    data: dict[str, Any] | None = None
    model: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    latency_s: float | None = None
    error: str | None = None
    inputs: list[dict[str, Any]] | None = None
    at_ns: int = 0

    def as_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `TraceStore.append_step` (without the run id)."""
        return {
            "agent": self.agent,
            "kind": self.kind,
            "content": self.content,
            "data": self.data,
            "model": self.model,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "latency_s": self.latency_s,
            "error": self.error,
            "inputs": self.inputs,
        }


@dataclass
class MappedRun:
    """A trace read as a run: its fields and its steps in time order."""

    trace_id: str
    team: str
    task: str
    status: str
    final_answer: str | None
    termination_reason: str | None
    started_at: datetime
    finished_at: datetime
    steps: list[StepDraft]
    metadata: dict[str, Any] = field(default_factory=dict)


# -- what a span is -----------------------------------------------------------


def span_role(span: SpanRecord) -> SpanRole:
    """Which of mascope's roles a span plays, by whichever convention it follows."""
    a = span.attributes
    op = str(a.get("gen_ai.operation.name") or "").lower()
    oi = str(a.get("openinference.span.kind") or "").upper()
    tl = str(a.get("traceloop.span.kind") or "").lower()
    if op in _LLM_OPS or oi == "LLM" or a.get("llm.request.type") in ("chat", "completion"):
        return "llm"
    if op == "execute_tool" or oi == "TOOL" or tl == "tool":
        return "tool"
    if op == "invoke_agent" or oi == "AGENT" or tl == "agent":
        return "agent"
    if op == "invoke_workflow" or oi == "CHAIN" or tl in ("workflow", "task"):
        return "chain"
    if op in _OTHER_OPS or oi:
        return "other"
    if (
        _has_messages(a, "input")
        or _has_messages(a, "output")
        or "gen_ai.prompt" in a
        or any(e.name.startswith("gen_ai.content.") or e.name in EVENT_ROLES for e in span.events)
    ):
        return "llm"  # older gen_ai spans: no (known) operation name, but prompts, completions
    if not op and any(k in a for k in ("gen_ai.request.model", "gen_ai.system")):
        return "llm"  # ... or a model alone; not when another operation is named (a handoff)
    return "other"


def _has_messages(a: dict[str, Any], side: str) -> bool:
    return f"gen_ai.{side}.messages" in a or any(k.startswith(f"llm.{side}_messages.") for k in a)


def conventions(span: SpanRecord) -> set[str]:
    """The conventions a span's attributes follow (`gen_ai`, `openinference`, `traceloop`)."""
    found = set()
    for key in span.attributes:
        if key.startswith("gen_ai."):
            found.add("gen_ai")
        elif key.startswith(("llm.", "openinference.", "input.", "output.", "tool.")):
            found.add("openinference")
        elif key.startswith("traceloop."):
            found.add("traceloop")
    return found


# -- one span -> steps ------------------------------------------------------------------

_CONSUMED = {
    "gen_ai.operation.name", "gen_ai.agent.name", "gen_ai.agent.id", "gen_ai.provider.name",
    "gen_ai.system", "gen_ai.request.model", "gen_ai.response.model", "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens", "gen_ai.usage.prompt_tokens", "gen_ai.usage.completion_tokens",
    "gen_ai.tool.name", "gen_ai.tool.call.id", "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.result", "gen_ai.response.finish_reasons", "error.type",
    "gen_ai.handoff.from_agent", "gen_ai.handoff.to_agent",
    "openinference.span.kind", "input.value", "output.value", "input.mime_type",
    "output.mime_type", "llm.model_name", "llm.provider", "llm.system", "llm.token_count.prompt",
    "llm.token_count.completion", "llm.token_count.total", "tool.name", "tool_call.id", "tool.id",
    "agent.name", "graph.node.id", "traceloop.span.kind", "traceloop.entity.name", "llm.request.type",
    "llm.usage.total_tokens", "mascope.step.kind", "mascope.step.content", "mascope.step.index",
    *MESSAGE_KEYS,
}  # fmt: skip


def unmapped(attributes: dict[str, Any]) -> dict[str, Any]:
    """The attributes no mapping rule reads, values bounded."""
    out = {}
    for key, value in attributes.items():
        if key in _CONSUMED or key.startswith(MESSAGE_PREFIXES):
            continue
        out[key] = _bounded(value)
    return out


def _bounded(value: Any) -> Any:
    if isinstance(value, str) and len(value) > _MAX_ATTR_TEXT:
        return value[:_MAX_ATTR_TEXT] + "…"
    if isinstance(value, list | dict):
        text = json.dumps(value, ensure_ascii=False, default=str)
        return value if len(text) <= _MAX_ATTR_TEXT else text[:_MAX_ATTR_TEXT] + "…"
    return value


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and 0 <= value < 2**63:
        return value
    if isinstance(value, float) and value.is_integer() and 0 <= value < 2**63:
        return int(value)
    if isinstance(value, str) and value.isdigit() and len(value) < 19:
        return int(value)
    return None


def _first(a: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        value = a.get(key)
        if value not in (None, ""):
            return value
    return None


def own_agent_name(span: SpanRecord) -> str | None:
    """The agent a span names itself (an agent span's name counts)."""
    a = span.attributes
    name = _first(a, "gen_ai.agent.name", "agent.name")
    if name is None and span_role(span) == "agent":
        # OpenInference's graph node names the agent where the span name is a method
        # (AutoGen's `solver.on_messages_stream`).
        name = (
            _first(a, "traceloop.entity.name", "graph.node.id")
            or span.name.removeprefix("invoke_agent ").strip()
        )
    if name is None:
        name = _langgraph_node(span)
    return str(name) if name not in (None, "") else None


def _langgraph_node(span: SpanRecord) -> str | None:
    """LangGraph's node, as the langchain instrumentation records it in `metadata`."""
    meta = decode_json(span.attributes.get("metadata"))
    if isinstance(meta, dict) and meta.get("langgraph_node"):
        return str(meta["langgraph_node"])
    return None


def _error(span: SpanRecord) -> str | None:
    if span.status_code != 2 and "error.type" not in span.attributes:
        return None
    for e in span.events:
        if e.name == "exception":
            kind = e.attributes.get("exception.type")
            text = e.attributes.get("exception.message")
            return ": ".join(str(x) for x in (kind, text) if x) or "exception"
    return span.status_message or str(span.attributes.get("error.type") or "error")


def _handoff(span: SpanRecord) -> dict[str, str] | None:
    """A handoff from one agent to another: `gen_ai.handoff.from_agent` / `to_agent` (the
    GenAI instrumentation of the OpenAI Agents SDK), or a tool span `handoff to B` with the
    agent handing off in `input.value` and the one taking over in `output.value`
    (its OpenInference instrumentation)."""
    a = span.attributes
    prefix = "handoff to "
    if a.get("gen_ai.handoff.to_agent") not in (None, ""):
        to, source = a["gen_ai.handoff.to_agent"], a.get("gen_ai.handoff.from_agent")
    elif span_role(span) == "tool" and span.name.lower().startswith(prefix):
        to = _first(a, "output.value") or span.name[len(prefix) :].strip()
        source = _first(a, "input.value")
    else:
        return None
    if source in (None, ""):
        return {"to": as_text(to)}
    return {"from": as_text(source), "to": as_text(to)}


def _handoff_steps(span: SpanRecord, agent: str, handoff: dict[str, str]) -> list[StepDraft]:
    """A handoff as the tool call it is to the model (`transfer_to_...`) and its result."""
    data: dict[str, Any] = {"span": span.name, "span_id": span.span_id, "tool": span.name}
    data["handoff"] = handoff
    extra = unmapped(span.attributes)
    if extra:
        data["attributes"] = extra
    latency, error = (span.end_ns - span.start_ns) / 1e9, _error(span)
    return [
        StepDraft(agent, "tool_call", f"handoff to {handoff['to']}", data, at_ns=span.start_ns),
        StepDraft(agent, "tool_result", handoff["to"], dict(data), latency_s=latency, error=error, at_ns=span.end_ns),
    ]  # fmt: skip


def span_steps(span: SpanRecord, agent: str, *, leaf: bool) -> list[StepDraft]:
    """The steps one span becomes (none for a structural span that did not fail)."""
    handoff = _handoff(span)
    if handoff is not None:  # the agents are not a tool's arguments and result
        return _handoff_steps(span, agent, handoff)
    a = span.attributes
    role = span_role(span)
    latency = (span.end_ns - span.start_ns) / 1e9
    error = _error(span)
    extra = unmapped(a)
    base_data: dict[str, Any] = {"span": span.name, "span_id": span.span_id}
    if extra:
        base_data["attributes"] = extra
    provider = _first(a, "gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system")
    model = _first(a, "gen_ai.request.model", "gen_ai.response.model", "llm.model_name")
    if role == "llm":
        inputs, outputs = messages(span)
        content = message_text(outputs) or as_text(a.get("output.value"))
        data = dict(base_data)
        calls = [c for m in outputs for c in m.get("tool_calls") or []]
        if calls:
            data["tool_calls"] = calls
        if provider:
            data["provider"] = str(provider)
        finish = a.get("gen_ai.response.finish_reasons") or [
            m["finish_reason"] for m in outputs if m.get("finish_reason")
        ]
        if finish:
            data["finish_reason"] = finish[0] if isinstance(finish, list) else finish
        if not inputs and a.get("input.value") is not None:
            inputs = [{"role": "user", "content": as_text(a["input.value"])}]
        return [
            StepDraft(
                agent=agent,
                kind=str(a.get("mascope.step.kind") or "message"),
                content=content,
                data=data,
                model=str(model) if model is not None else None,
                input_tokens=_int(_first(a, "gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.token_count.prompt")),
                output_tokens=_int(_first(a, "gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens", "llm.token_count.completion")),
                latency_s=latency,
                error=error,
                inputs=[{k: v for k, v in m.items() if k != "finish_reason"} for m in inputs] or None,
                at_ns=span.end_ns,
            )
        ]  # fmt: skip
    if role == "tool":
        tool = str(
            _first(a, "gen_ai.tool.name", "tool.name", "traceloop.entity.name")
            or span.name.removeprefix("execute_tool ").strip()
            or "tool"
        )
        args = _first(a, "gen_ai.tool.call.arguments", "input.value", "traceloop.entity.input")
        result = _first(a, "gen_ai.tool.call.result", "output.value", "traceloop.entity.output")
        call_id = _first(a, "gen_ai.tool.call.id", "tool_call.id", "tool.id")
        data = {**base_data, "tool": tool}
        if call_id is not None:
            data["call_id"] = str(call_id)
        marked = a.get("mascope.step.kind")
        steps = []
        if marked == "refusal":
            return [StepDraft(agent, "refusal", as_text(result or span.name), data, latency_s=latency, error=error, at_ns=span.end_ns)]  # fmt: skip
        if marked != "tool_result" and (
            args is not None or marked == "tool_call" or result is None
        ):
            parsed = decode_json(args)
            call = {**data, "arguments": parsed} if args is not None else data
            steps.append(StepDraft(agent, "tool_call", f"{tool}({as_text(parsed) if args is not None else ''})", call, at_ns=span.start_ns))  # fmt: skip
        if marked != "tool_call" and (result is not None or error is not None):
            steps.append(StepDraft(agent, "tool_result", as_text(result) if result is not None else (error or ""), dict(data), latency_s=latency, error=error, at_ns=span.end_ns))  # fmt: skip
        return steps
    output = _first(a, "mascope.step.content", "output.value", "traceloop.entity.output")
    if output is None and _has_messages(a, "output"):
        output = message_text(messages(span)[1])
    if not leaf:
        if error is None:
            return []
        return [StepDraft(agent, "error", error, base_data, latency_s=latency, error=error, at_ns=span.end_ns)]  # fmt: skip
    kind = str(a.get("mascope.step.kind") or ("message" if role == "agent" else "event"))
    content = as_text(output) if output is not None else span.name
    return [
        StepDraft(
            agent=agent,
            kind=kind,
            content=content,
            data=base_data,
            model=str(model) if model is not None else None,
            input_tokens=_int(_first(a, "gen_ai.usage.input_tokens", "llm.token_count.prompt")),
            output_tokens=_int(_first(a, "gen_ai.usage.output_tokens", "llm.token_count.completion")),
            latency_s=latency,
            error=error,
            at_ns=span.end_ns,
        )
    ]  # fmt: skip


# -- a whole trace -> a run -------------------------------------------------------------------


class TraceIndex:
    """The spans of one trace seen so far, with what is needed to name agents."""

    def __init__(self, spans: Iterable[SpanRecord] = ()):
        self.spans: dict[str, SpanRecord] = {}
        self.children: dict[str, int] = {}
        for s in spans:
            self.add(s)

    def add(self, span: SpanRecord) -> None:
        """Add a span (a span sent twice replaces the first)."""
        if span.span_id not in self.spans and span.parent_id:
            self.children[span.parent_id] = self.children.get(span.parent_id, 0) + 1
        self.spans[span.span_id] = span

    def is_leaf(self, span: SpanRecord) -> bool:
        return not self.children.get(span.span_id)

    def agent_of(self, span: SpanRecord) -> str:
        """The agent a span acts for: an agent span's own name; else, for any other span,
        its LangGraph node or the agent span it runs under (the GenAI conventions name an
        agent on its `invoke_agent` span; a chat span's own `gen_ai.agent.name` can be an
        instrumentation's default); else its own name or the nearest named ancestor's."""
        if span_role(span) == "agent":
            name = own_agent_name(span)
            if name:
                return name
        else:
            name = _langgraph_node(span) or self._enclosing_agent(span)
            if name:
                return name
        seen: set[str] = set()
        node: SpanRecord | None = span
        while node is not None and node.span_id not in seen:
            seen.add(node.span_id)
            name = own_agent_name(node)
            if name:
                return name
            node = self.spans.get(node.parent_id) if node.parent_id else None
        a = span.attributes
        provider = _first(a, "gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system")
        return str(provider) if provider and span_role(span) == "llm" else span.name or "unknown"

    def _enclosing_agent(self, span: SpanRecord) -> str | None:
        """The name of the nearest agent span above a span, if any."""
        seen = {span.span_id}
        node = self.spans.get(span.parent_id) if span.parent_id else None
        while node is not None and node.span_id not in seen:
            seen.add(node.span_id)
            if span_role(node) == "agent":
                name = own_agent_name(node)
                if name:
                    return name
            node = self.spans.get(node.parent_id) if node.parent_id else None
        return None

    def roots(self) -> list[SpanRecord]:
        return sorted(
            (s for s in self.spans.values() if not s.parent_id or s.parent_id not in self.spans),
            key=lambda s: (s.start_ns, s.span_id),
        )


def trace_steps(index: TraceIndex) -> list[StepDraft]:
    """Every step of a trace, in time order (a tool's call at its start, the rest at their end)."""
    drafts: list[tuple[int, int, int, StepDraft]] = []
    n = 0
    for span in sorted(index.spans.values(), key=lambda s: (s.end_ns, s.start_ns)):
        for step in span_steps(span, index.agent_of(span), leaf=index.is_leaf(span)):
            drafts.append((step.at_ns, span.start_ns, n, step))
            n += 1
    return [d[3] for d in sorted(drafts, key=lambda d: d[:3])]


def _readable(value: Any, *, last: bool) -> str:
    """A root span's input or output as text: a graph state's first (or last) message's
    content, or the value's own `input`/`output`, rather than the whole JSON state."""
    data = decode_json(value)
    if isinstance(data, dict):
        for key in ("messages", "input", "question", "query", "task", "output", "answer"):
            if key in data:
                data = data[key]
                break
    if isinstance(data, list) and data:
        texts = [t for t in (_content_of(m) for m in data) if t]
        if texts:
            return texts[-1] if last else texts[0]
    if isinstance(data, str):
        return data
    return as_text(value)


def _content_of(message: Any) -> str:
    """The text of one message in the shapes frameworks serialise them in."""
    if isinstance(message, str):
        return message
    if not isinstance(message, dict):
        return ""
    data = message.get("data")
    inner: dict[str, Any] = data if isinstance(data, dict) else message  # LangChain's shape
    content = inner.get("content")
    if isinstance(content, list):  # content parts
        return "\n".join(
            as_text(p.get("text")) if isinstance(p, dict) else as_text(p) for p in content
        )
    return as_text(content)


def _nanos_time(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC)


def map_trace(spans: Sequence[SpanRecord], *, complete: bool = True) -> MappedRun:
    """One trace's spans as a run with its steps (spans of other traces are ignored by the caller)."""
    index = TraceIndex(spans)
    steps = trace_steps(index)
    roots = index.roots()
    root = roots[0]
    a = root.attributes
    task = ""
    if "mascope.run.task" in a:
        task = as_text(a["mascope.run.task"])
    else:
        inputs, _ = messages(root)
        users = [m for m in inputs if m.get("role") == "user"]
        task = _readable(_first(a, "input.value", "traceloop.entity.input"), last=False) or (
            str(users[-1]["content"]) if users else ""
        )
        if not task:  # the first thing a user said to any model in the trace
            for step in steps:
                said = [
                    m for m in step.inputs or [] if m.get("role") == "user" and m.get("content")
                ]
                if said:
                    task = str(said[0]["content"])
                    break
    answer = (
        as_text(a.get("mascope.run.final_answer"))
        or _readable(_first(a, "output.value", "traceloop.entity.output"), last=True)
        or message_text(messages(root)[1])
    )
    if not answer:
        answer = next((s.content for s in reversed(steps) if s.kind == "message" and s.content), "")
    errors = [s for s in index.spans.values() if s.status_code == 2]
    status = str(a.get("mascope.run.status") or ("error" if root.status_code == 2 else "unknown"))
    if not complete:
        status = "interrupted"
    service = str(root.resource.get("service.name") or "")
    team = str(
        a.get("mascope.run.team")
        or (service if service and not service.startswith("unknown_service") else "")
        or own_agent_name(root)
        or root.name
    )
    seen_unmapped: dict[str, Any] = {}
    for span in index.spans.values():
        for key, value in unmapped(span.attributes).items():
            if key not in seen_unmapped and len(seen_unmapped) < _MAX_UNMAPPED_KEYS:
                seen_unmapped[key] = value
    found: set[str] = set()
    for span in index.spans.values():
        found |= conventions(span)
    scopes = sorted({s.scope for s in index.spans.values() if s.scope})
    meta: dict[str, Any] = {
        "otel": {
            "trace_id": root.trace_id,
            "framework": _framework(scopes, root.resource),
            "scopes": scopes,
            "conventions": sorted(found),
            "service": service or None,
            "resource": {k: _bounded(v) for k, v in root.resource.items()},
            "unmapped_attributes": seen_unmapped,
            "spans": len(index.spans),
            "failed_spans": len(errors),
            "complete": complete,
        }
    }
    start = min(s.start_ns for s in index.spans.values())
    end = max(s.end_ns for s in index.spans.values())
    return MappedRun(
        trace_id=root.trace_id,
        team=team,
        task=task,
        status=status,
        final_answer=answer or None,
        termination_reason=str(a.get("mascope.run.termination_reason") or "")
        or (
            "root span ended"
            if complete
            else "idle timeout: the trace stopped before its root span ended"
        ),
        started_at=_nanos_time(start),
        finished_at=_nanos_time(end),
        steps=steps,
        metadata=meta,
    )


_FRAMEWORKS = (
    # The GenAI utility several official instrumentations emit through
    # (openai-v2, google-genai, ...): the scope does not say which.
    ("opentelemetry.util.genai", "opentelemetry-genai"),
    ("langchain", "langgraph"),
    ("openai_agents", "openai-agents"),
    ("openai-agents", "openai-agents"),
    ("crewai", "crewai"),
    ("autogen", "autogen"),
    ("llama_index", "llamaindex"),
    ("mascope", "mascope"),
    ("openai", "openai"),
)


def _framework(scopes: Sequence[str], resource: dict[str, Any]) -> str:
    """The framework that emitted a trace, from its instrumentation scopes (best effort)."""
    joined = " ".join(scopes).lower()
    for needle, name in _FRAMEWORKS:
        if needle in joined:
            return name
    return str(resource.get("telemetry.sdk.name") or "unknown")


__all__ = [
    "MappedRun",
    "StepDraft",
    "TraceIndex",
    "map_trace",
    "messages",
    "own_agent_name",
    "span_role",
    "span_steps",
    "trace_steps",
    "unmapped",
]
