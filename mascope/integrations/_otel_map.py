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
    INPUT_MESSAGES,
    MESSAGE_KEYS,
    MESSAGE_PREFIXES,
    OUTPUT_MESSAGES,
    SYSTEM_INSTRUCTIONS,
    as_text,
    decode_json,
    message_text,
    messages,
)
from ._spans import SpanRecord

SpanRole = Literal["llm", "tool", "agent", "chain", "other"]

# -- the names both directions use ----------------------------------------------------------
# The OpenTelemetry GenAI semantic conventions (checked against `opentelemetry.semconv`
# by the tests), then mascope's own for what the conventions have no name for.

OPERATION = "gen_ai.operation.name"
AGENT_NAME = "gen_ai.agent.name"
WORKFLOW_NAME = "gen_ai.workflow.name"
CONVERSATION_ID = "gen_ai.conversation.id"
PROVIDER = "gen_ai.provider.name"
REQUEST_MODEL = "gen_ai.request.model"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
FINISH_REASONS = "gen_ai.response.finish_reasons"
TOOL_NAME = "gen_ai.tool.name"
TOOL_TYPE = "gen_ai.tool.type"
TOOL_CALL_ID = "gen_ai.tool.call.id"
TOOL_CALL_ARGUMENTS = "gen_ai.tool.call.arguments"
TOOL_CALL_RESULT = "gen_ai.tool.call.result"
EVALUATION_EVENT = "gen_ai.evaluation.result"
EVALUATION_NAME = "gen_ai.evaluation.name"
EVALUATION_SCORE_VALUE = "gen_ai.evaluation.score.value"
EVALUATION_SCORE_LABEL = "gen_ai.evaluation.score.label"
EVALUATION_EXPLANATION = "gen_ai.evaluation.explanation"
ERROR_TYPE = "error.type"
ERROR_OTHER = "_OTHER"
"""`error.type` when the error has no class name of its own (the conventions' fallback)."""

OP_CHAT = "chat"
OP_INVOKE_AGENT = "invoke_agent"
OP_EXECUTE_TOOL = "execute_tool"
OP_INVOKE_WORKFLOW = "invoke_workflow"

PASS_LABELS = ("pass", "passed", "correct", "true")
FAIL_LABELS = ("fail", "failed", "incorrect", "false")
"""Evaluation labels read as a verdict that passed or failed (mascope writes the first)."""

STEP_KIND = "mascope.step.kind"
"""The kind of the mascope step a span is (`message`, `model_call`, `refusal`, ...)."""
STEP_INDEX = "mascope.step.index"
STEP_MODEL = "mascope.step.model"
"""The mascope model string (`openai:gpt-4o-mini@URL`); the conventions' model is its name only."""
RUN_STATUS = "mascope.run.status"
"""On a mascope run's root span: the run's outcome (its failure is the run's, not a step)."""
RUN_TEAM = "mascope.run.team"
RUN_TERMINATION = "mascope.run.termination_reason"
ANNOTATOR = "mascope.annotator"
"""On an evaluation event: a diagnosis label about the run (not a verifier's verdict step)."""
VERIFIER_KIND = "mascope.verifier.kind"

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
    op = str(a.get(OPERATION) or "").lower()
    oi = str(a.get("openinference.span.kind") or "").upper()
    tl = str(a.get("traceloop.span.kind") or "").lower()
    if op in _LLM_OPS or oi == "LLM" or a.get("llm.request.type") in ("chat", "completion"):
        return "llm"
    if op == OP_EXECUTE_TOOL or oi == "TOOL" or tl == "tool":
        return "tool"
    if op == OP_INVOKE_AGENT or oi == "AGENT" or tl == "agent":
        return "agent"
    if op == OP_INVOKE_WORKFLOW or oi == "CHAIN" or tl in ("workflow", "task"):
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
    if not op and any(k in a for k in (REQUEST_MODEL, "gen_ai.system")):
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
    "llm.usage.total_tokens", STEP_KIND, "mascope.step.content", STEP_INDEX, STEP_MODEL,
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
    name = _first(a, AGENT_NAME, "agent.name")
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
    if span.status_code != 2 and ERROR_TYPE not in span.attributes:
        return None
    for e in span.events:
        if e.name == "exception":
            kind = e.attributes.get("exception.type")
            text = e.attributes.get("exception.message")
            return ": ".join(str(x) for x in (kind, text) if x) or "exception"
    return span.status_message or str(span.attributes.get(ERROR_TYPE) or "error")


def evaluation_steps(span: SpanRecord) -> list[StepDraft]:
    """A span's `gen_ai.evaluation.result` events as verifier verdicts on what the span did.

    mascope's own diagnosis labels (marked with the annotator) are about the run, not
    steps of it, and are left out.
    """
    out = []
    for e in span.events:
        a = e.attributes
        if e.name != EVALUATION_EVENT or ANNOTATOR in a:
            continue
        label = a.get(EVALUATION_SCORE_LABEL)
        score = a.get(EVALUATION_SCORE_VALUE)
        data: dict[str, Any] = {"span": span.name, "span_id": span.span_id}
        if isinstance(label, str) and label.lower() in PASS_LABELS + FAIL_LABELS:
            data["passed"] = label.lower() in PASS_LABELS
        if label is not None:
            data["label"] = label
        if isinstance(score, int | float) and not isinstance(score, bool):
            data["score"] = score
        if a.get(VERIFIER_KIND) is not None:
            data["verifier"] = str(a[VERIFIER_KIND])
        explanation = a.get(EVALUATION_EXPLANATION)
        model = _first(a, STEP_MODEL, REQUEST_MODEL)
        out.append(
            StepDraft(
                agent=str(a.get(EVALUATION_NAME) or "evaluator"),
                kind="verdict",
                content=as_text(explanation if explanation is not None else label),
                data=data,
                model=str(model) if model is not None else None,
                input_tokens=_int(a.get(INPUT_TOKENS)),
                output_tokens=_int(a.get(OUTPUT_TOKENS)),
                error=str(a[ERROR_TYPE]) if a.get(ERROR_TYPE) else None,
                at_ns=max(e.time_ns, span.end_ns),  # a judgement follows what it judged
            )
        )
    return out


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
    """The steps one span becomes (none for a structural span that did not fail), with
    the verdicts of the evaluation events it carries."""
    return _own_steps(span, agent, leaf=leaf) + evaluation_steps(span)


def _own_steps(span: SpanRecord, agent: str, *, leaf: bool) -> list[StepDraft]:
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
    model = _first(a, STEP_MODEL, REQUEST_MODEL, "gen_ai.response.model", "llm.model_name")
    if role == "llm":
        inputs, outputs = messages(span)
        # A step mascope exported carries its text exactly (its tool calls are in the data);
        # other spans' tool calls are written into the content for the judge to read.
        content = message_text(outputs, calls=STEP_KIND not in a) or as_text(a.get("output.value"))
        data = dict(base_data)
        calls = [c for m in outputs for c in m.get("tool_calls") or []]
        if calls:
            data["tool_calls"] = calls
        if provider:
            data["provider"] = str(provider)
        finish = a.get(FINISH_REASONS) or [
            m["finish_reason"] for m in outputs if m.get("finish_reason")
        ]
        if finish:
            data["finish_reason"] = finish[0] if isinstance(finish, list) else finish
        if not inputs and a.get("input.value") is not None:
            inputs = [{"role": "user", "content": as_text(a["input.value"])}]
        return [
            StepDraft(
                agent=agent,
                kind=str(a.get(STEP_KIND) or "message"),
                content=content,
                data=data,
                model=str(model) if model is not None else None,
                input_tokens=_int(_first(a, INPUT_TOKENS, "gen_ai.usage.prompt_tokens", "llm.token_count.prompt")),
                output_tokens=_int(_first(a, OUTPUT_TOKENS, "gen_ai.usage.completion_tokens", "llm.token_count.completion")),
                latency_s=latency,
                error=error,
                inputs=[{k: v for k, v in m.items() if k != "finish_reason"} for m in inputs] or None,
                at_ns=span.end_ns,
            )
        ]  # fmt: skip
    if role == "tool":
        tool = str(
            _first(a, TOOL_NAME, "tool.name", "traceloop.entity.name")
            or span.name.removeprefix("execute_tool ").strip()
            or "tool"
        )
        args = _first(a, TOOL_CALL_ARGUMENTS, "input.value", "traceloop.entity.input")
        result = _first(a, TOOL_CALL_RESULT, "output.value", "traceloop.entity.output")
        call_id = _first(a, TOOL_CALL_ID, "tool_call.id", "tool.id")
        data = {**base_data, "tool": tool}
        if call_id is not None:
            data["call_id"] = str(call_id)
        marked = a.get(STEP_KIND)
        steps = []
        if marked == "refusal":  # the call (when the span has it), then the refusal
            if args is not None:
                steps.append(StepDraft(agent, "tool_call", f"{tool}({as_text(decode_json(args))})", {**data, "arguments": decode_json(args)}, at_ns=span.start_ns))  # fmt: skip
            return [*steps, StepDraft(agent, "refusal", as_text(result or span.name), data, latency_s=latency, error=error, at_ns=span.end_ns)]  # fmt: skip
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
    if RUN_STATUS in a:  # a mascope run's own span: its outcome is the run's, never a step
        return []
    if not leaf:
        if error is None:
            return []
        return [StepDraft(agent, "error", error, base_data, latency_s=latency, error=error, at_ns=span.end_ns)]  # fmt: skip
    kind = str(a.get(STEP_KIND) or ("message" if role == "agent" else "event"))
    content = as_text(output) if output is not None else span.name
    return [
        StepDraft(
            agent=agent,
            kind=kind,
            content=content,
            data=base_data,
            model=str(model) if model is not None else None,
            input_tokens=_int(_first(a, INPUT_TOKENS, "llm.token_count.prompt")),
            output_tokens=_int(_first(a, OUTPUT_TOKENS, "llm.token_count.completion")),
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
        if span_role(span) != "agent":  # an agent span's own name comes first, below
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
    if (
        not answer and OUTPUT_MESSAGES not in a
    ):  # a root that lists its output, even none, is believed
        answer = next((s.content for s in reversed(steps) if s.kind == "message" and s.content), "")
    errors = [s for s in index.spans.values() if s.status_code == 2]
    status = str(a.get(RUN_STATUS) or ("error" if root.status_code == 2 else "unknown"))
    if not complete:
        status = "interrupted"
    service = str(root.resource.get("service.name") or "")
    team = str(
        a.get(RUN_TEAM)
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
        termination_reason=str(a.get(RUN_TERMINATION) or "")
        or (
            None  # a mascope run that had not ended says so by having none
            if RUN_STATUS in a and complete
            else "root span ended"
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
    "AGENT_NAME",
    "ANNOTATOR",
    "CONVERSATION_ID",
    "ERROR_OTHER",
    "ERROR_TYPE",
    "EVALUATION_EVENT",
    "EVALUATION_EXPLANATION",
    "EVALUATION_NAME",
    "EVALUATION_SCORE_LABEL",
    "EVALUATION_SCORE_VALUE",
    "FAIL_LABELS",
    "FINISH_REASONS",
    "INPUT_MESSAGES",
    "INPUT_TOKENS",
    "OPERATION",
    "OP_CHAT",
    "OP_EXECUTE_TOOL",
    "OP_INVOKE_AGENT",
    "OP_INVOKE_WORKFLOW",
    "OUTPUT_MESSAGES",
    "OUTPUT_TOKENS",
    "PASS_LABELS",
    "PROVIDER",
    "REQUEST_MODEL",
    "RUN_STATUS",
    "RUN_TEAM",
    "RUN_TERMINATION",
    "STEP_INDEX",
    "STEP_KIND",
    "STEP_MODEL",
    "SYSTEM_INSTRUCTIONS",
    "TOOL_CALL_ARGUMENTS",
    "TOOL_CALL_ID",
    "TOOL_CALL_RESULT",
    "TOOL_NAME",
    "TOOL_TYPE",
    "VERIFIER_KIND",
    "WORKFLOW_NAME",
    "MappedRun",
    "StepDraft",
    "TraceIndex",
    "evaluation_steps",
    "map_trace",
    "messages",
    "own_agent_name",
    "span_role",
    "span_steps",
    "trace_steps",
    "unmapped",
]
