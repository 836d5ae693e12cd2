"""Stored runs as OpenTelemetry GenAI spans, built with the OpenTelemetry SDK.

One run is one trace, nested as the GenAI semantic conventions describe an
agent system:

    invoke_workflow {team}                 the run: task in, final answer out
      invoke_agent {agent}                 one per agent turn
        chat {model}                       each model call, with its messages
        execute_tool {tool}                each tool call with its result

A verifier's verdict is a `gen_ai.evaluation.result` event on the span of the
step it judged; a failed step or run has `error.type` and an ERROR status.
Trace and span ids are derived from the run and step, and timestamps are the
stored ones (nudged by a nanosecond where two steps share a moment, so the
order survives), so exporting a run twice gives the same trace. Every text
passes the store's redactor again on its way out.

The attribute names and the message formats are those the receiver reads
(`_otel_map`, `_otel_messages`): what is exported here reads back as the same
steps.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from mascope._version import __version__
from mascope._vocabulary import StepKind
from mascope.errors import ConfigError
from mascope.traces import Redactor, RunBundle, StepBase, TraceStore, bundle, write_export
from mascope.traces._inputs import decode_inputs  # the bundle already holds the texts

from ._otel_map import (
    AGENT_NAME,
    ANNOTATOR,
    CONVERSATION_ID,
    ERROR_OTHER,
    ERROR_TYPE,
    EVALUATION_EVENT,
    EVALUATION_EXPLANATION,
    EVALUATION_NAME,
    EVALUATION_SCORE_LABEL,
    EVALUATION_SCORE_VALUE,
    FAIL_LABELS,
    FINISH_REASONS,
    INPUT_MESSAGES,
    INPUT_TOKENS,
    OP_CHAT,
    OP_EXECUTE_TOOL,
    OP_INVOKE_AGENT,
    OP_INVOKE_WORKFLOW,
    OPERATION,
    OUTPUT_MESSAGES,
    OUTPUT_TOKENS,
    PASS_LABELS,
    PROVIDER,
    REQUEST_MODEL,
    RUN_STATUS,
    RUN_TEAM,
    RUN_TERMINATION,
    STEP_INDEX,
    STEP_KIND,
    STEP_MODEL,
    SYSTEM_INSTRUCTIONS,
    TOOL_CALL_ARGUMENTS,
    TOOL_CALL_ID,
    TOOL_CALL_RESULT,
    TOOL_NAME,
    TOOL_TYPE,
    VERIFIER_KIND,
    WORKFLOW_NAME,
)
from ._otel_messages import genai_input, genai_output

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan

_TOOL_KINDS: tuple[StepKind, ...] = ("tool_call", "tool_result", "refusal")


# -- the plan: what spans a run becomes -----------------------------------------------------


@dataclass
class _Node:
    """One span to be: plain data, turned into an SDK span by `_emit`."""

    key: str
    """Seed of the span id (unique in the run)."""
    name: str
    kind: str
    """`internal` or `client` (a model call)."""
    start: int
    end: int
    attributes: dict[str, Any]
    error: tuple[str, str] | None = None
    """`(error.type, status description)` of a failure."""
    events: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)
    children: list[_Node] = field(default_factory=list)


def _ns(moment: datetime) -> int:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return int(aware.timestamp() * 1_000_000) * 1000


def _step_times(steps: Sequence[StepBase], floor: int) -> list[int]:
    """Each step's moment in ns, strictly increasing: two steps stored in the same
    microsecond (or imported with one timestamp) keep their order on the way back."""
    out: list[int] = []
    last = floor - 1
    for s in steps:
        last = max(_ns(s.created_at), last + 1)
        out.append(last)
    return out


def _model_parts(model: str) -> tuple[str, str]:
    """`openai:gpt-4o-mini@http://...` -> (`openai`, `gpt-4o-mini`): the conventions'
    provider and model name (`local:/x/m.gguf` -> `m.gguf`)."""
    backend, sep, rest = model.partition(":")
    if not sep:
        return backend, backend
    name = rest.split("@", 1)[0] or backend
    return backend, Path(name).name if "/" in name else name


def error_type(error: str) -> str:
    """A low-cardinality `error.type` for a recorded error text: its class name when the
    text starts with one (`ValueError: ...`), else the conventions' `_OTHER`."""
    m = re.match(r"([A-Za-z_][\w.]*)\s*:", error)
    if m and (m[1][0].isupper() or "." in m[1]):
        return m[1]
    return ERROR_OTHER


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


class _Planner:
    """Plans the span tree of one run from its (redacted) bundle."""

    def __init__(self, b: RunBundle, redact: Redactor):
        self.b, self.redact = b, redact
        self.run = b.run
        self.start = _ns(b.run.started_at)
        self.times = _step_times(b.steps, self.start)
        self.node_of: dict[int, _Node] = {}
        """The span each step index ended up in (a verdict: the span it judged)."""

    def _common(self, step: StepBase) -> dict[str, Any]:
        return {
            AGENT_NAME: step.agent,
            CONVERSATION_ID: self.run.id,
            STEP_INDEX: step.index,
            STEP_KIND: step.kind,
        }

    def _model(self, step: StepBase) -> dict[str, Any]:
        if not step.model:
            return {}
        provider, name = _model_parts(step.model)
        return {PROVIDER: provider, REQUEST_MODEL: name, STEP_MODEL: step.model}

    def _usage(self, step: StepBase) -> dict[str, Any]:
        return {INPUT_TOKENS: step.input_tokens, OUTPUT_TOKENS: step.output_tokens}

    def _began(self, step: StepBase, at: int) -> int:
        took = int((step.latency_s or 0) * 1e9)
        return max(self.start, at - took)

    @staticmethod
    def _failure(step: StepBase) -> tuple[str, str] | None:
        return (error_type(step.error), step.error) if step.error else None

    def chat(self, step: StepBase, at: int) -> _Node:
        """A model call: the messages it was sent and what it answered."""
        data = step.data or {}
        attrs = {OPERATION: OP_CHAT, **self._common(step), **self._model(step)}
        attrs.update(self._usage(step))
        sent = [m.model_dump() for m in decode_inputs(step.inputs, self.b.blobs)]
        if sent:
            system, chat = genai_input(self.redact.value(sent))
            attrs[SYSTEM_INSTRUCTIONS] = _json(system) if system else None
            attrs[INPUT_MESSAGES] = _json(chat)
        calls = [c for c in data.get("tool_calls") or [] if isinstance(c, Mapping)]
        finish = data.get("finish_reason")
        attrs[OUTPUT_MESSAGES] = _json(
            genai_output(step.content, calls, finish_reason=str(finish) if finish else None)
        )
        attrs[FINISH_REASONS] = [str(finish)] if finish else None
        name = f"{OP_CHAT} {attrs.get(REQUEST_MODEL) or ''}".strip()
        return _Node(
            f"{step.index}", name, "client", self._began(step, at), at, attrs, self._failure(step)
        )

    def agent_step(self, step: StepBase, at: int) -> _Node:
        """A step that is neither a model call nor a tool: the agent's own output."""
        attrs = {OPERATION: OP_INVOKE_AGENT, **self._common(step), **self._model(step)}
        attrs.update(self._usage(step))
        attrs[OUTPUT_MESSAGES] = _json(genai_output(step.content))
        return _Node(
            f"{step.index}",
            f"{OP_INVOKE_AGENT} {step.agent}",
            "internal",
            self._began(step, at),
            at,
            attrs,
            self._failure(step),
        )

    def tool(
        self, call: StepBase | None, result: StepBase | None, t_call: int, t_result: int
    ) -> _Node:
        """One tool call with its result (either may be missing from the record)."""
        first = call or result
        assert first is not None
        data = {**((result.data or {}) if result else {}), **((call.data or {}) if call else {})}
        tool = str(data.get("tool") or data.get("name") or "tool")
        attrs = {OPERATION: OP_EXECUTE_TOOL, **self._common(first)}
        attrs[STEP_KIND] = "refusal" if result and result.kind == "refusal" else None
        attrs.update({TOOL_NAME: tool, TOOL_TYPE: "function"})
        attrs[TOOL_CALL_ID] = data.get("call_id") or data.get("id")
        if call is not None:
            attrs[TOOL_CALL_ARGUMENTS] = _json(data.get("arguments", {}))
        if result is not None:
            attrs[TOOL_CALL_RESULT] = result.content
        start = t_call if call is not None else self._began(first, t_result)
        end = t_result if result is not None else t_call
        failure = self._failure(result) if result is not None else self._failure(first)
        return _Node(
            f"{first.index}", f"{OP_EXECUTE_TOOL} {tool}", "internal", start, end, attrs, failure
        )

    def turn(self, steps: Sequence[tuple[StepBase, int]]) -> _Node:
        """One agent turn: an `invoke_agent` span over its model calls, tools and output
        (a turn of one plain step is that step's span)."""
        children: list[_Node] = []
        where: dict[int, int] = {}
        """Step index -> the position of its span among the children."""
        open_calls: dict[str, tuple[StepBase, int, int]] = {}
        for step, at in steps:
            data = step.data or {}
            key = str(data.get("call_id") or data.get("tool") or "")
            if step.kind == "tool_call":
                open_calls[key] = (step, at, len(children))
                children.append(self.tool(step, None, at, at))
            elif step.kind in _TOOL_KINDS and key in open_calls:  # the result of a call
                call, t_call, pos = open_calls.pop(key)
                children[pos] = self.tool(call, step, t_call, at)
                where[step.index] = pos
                continue
            elif step.kind in _TOOL_KINDS:
                children.append(self.tool(None, step, at, at))
            elif step.model and step.kind in ("message", "model_call"):
                children.append(self.chat(step, at))
            else:
                children.append(self.agent_step(step, at))
            where[step.index] = len(children) - 1
        for index, pos in where.items():
            self.node_of[index] = children[pos]
        first = steps[0][0]
        if len(children) == 1 and children[0].attributes.get(OPERATION) == OP_INVOKE_AGENT:
            return children[0]
        return _Node(
            f"turn:{first.index}",
            f"{OP_INVOKE_AGENT} {first.agent}",
            "internal",
            min(c.start for c in children),
            max(c.end for c in children),
            {OPERATION: OP_INVOKE_AGENT, AGENT_NAME: first.agent, CONVERSATION_ID: self.run.id},
            children=children,
        )

    def plan(self) -> _Node:
        """The run's root span with everything under it."""
        run, steps = self.run, self.b.steps
        turns: list[list[tuple[StepBase, int]]] = []
        for step, at in zip(steps, self.times, strict=True):
            if step.kind == "verdict":  # an evaluation of another step, not a span
                continue
            current = turns[-1] if turns else None
            if current and current[-1][0].agent == step.agent and current[-1][0].kind != "message":
                current.append((step, at))
            else:
                turns.append([(step, at)])
        children = [self.turn(t) for t in turns]
        end = max(
            [_ns(run.finished_at) if run.finished_at else self.start, self.start]
            + [c.end for c in children]
            + self.times
        )
        root = _Node(
            "root",
            f"{OP_INVOKE_WORKFLOW} {run.team or 'team'}",
            "internal",
            min([self.start] + [c.start for c in children]),
            end,
            {
                OPERATION: OP_INVOKE_WORKFLOW,
                AGENT_NAME: run.team or None,
                WORKFLOW_NAME: run.team or None,
                CONVERSATION_ID: run.id,
                INPUT_MESSAGES: _json(genai_input([{"role": "user", "content": run.task}])[1]),
                OUTPUT_MESSAGES: _json(genai_output(run.final_answer)),
                INPUT_TOKENS: run.input_tokens,
                OUTPUT_TOKENS: run.output_tokens,
                RUN_STATUS: run.status,
                RUN_TEAM: run.team,
                RUN_TERMINATION: run.termination_reason,
                "mascope.run.parent_run_id": run.parent_run_id,
                "mascope.run.fork_step": run.fork_step,
                "mascope.run.cost_usd": run.cost_usd,
            },
            self._run_failure(),
            children=children,
        )
        self._verdicts(root)
        self._labels(root)
        return root

    def _run_failure(self) -> tuple[str, str] | None:
        run = self.run
        if run.status not in ("failed", "error"):
            return None
        error = (run.metadata_ or {}).get("error")
        if run.status == "error" and isinstance(error, str) and error:
            return error_type(error), error
        reason = run.termination_reason or run.status
        return reason, f"run {run.status}: {reason}"

    def _verdicts(self, root: _Node) -> None:
        """Each verdict as an evaluation event on the span of the answer it judged."""
        judged: int | None = None
        for step, at in zip(self.b.steps, self.times, strict=True):
            if step.kind == "message":
                judged = step.index
                continue
            if step.kind != "verdict":
                continue
            data = step.data or {}
            target = self.node_of.get(judged) if judged is not None else None
            target = target or root  # nothing before it to judge: the run itself
            self.node_of[step.index] = target
            passed = data.get("passed")
            score = data.get("score")
            attrs = {
                EVALUATION_NAME: step.agent,
                EVALUATION_SCORE_VALUE: float(score)
                if isinstance(score, int | float) and not isinstance(score, bool)
                else None,
                EVALUATION_SCORE_LABEL: (PASS_LABELS if passed else FAIL_LABELS)[0]
                if isinstance(passed, bool)
                else None,
                EVALUATION_EXPLANATION: step.content,
                ERROR_TYPE: error_type(step.error) if step.error else None,
                VERIFIER_KIND: data.get("verifier"),
                STEP_INDEX: step.index,
                **self._model(step),
                **self._usage(step),
            }
            target.events.append((EVALUATION_EVENT, at, attrs))

    def _labels(self, root: _Node) -> None:
        """Diagnosis labels and attributions, on the step they name (else the run)."""
        b = self.b
        for a in b.annotations:
            target = self.node_of.get(a.step_index, root) if a.step_index is not None else root
            attrs = {
                EVALUATION_NAME: a.mode,
                EVALUATION_SCORE_LABEL: a.status,
                EVALUATION_SCORE_VALUE: a.confidence,
                EVALUATION_EXPLANATION: a.rationale or None,
                ANNOTATOR: a.annotator,
                "mascope.taxonomy": a.taxonomy,
                "mascope.uncertain_because": a.status_reason or None,
                "mascope.evidence_steps": [int(i) for i in a.evidence_steps] or None,
                STEP_INDEX: a.step_index,
            }
            target.events.append((EVALUATION_EVENT, max(_ns(a.created_at), root.start), attrs))
        for att in b.attributions:
            target = self.node_of.get(att.step_index, root) if att.step_index is not None else root
            attrs = {
                "mascope.attribution.method": att.method,
                AGENT_NAME: att.agent,
                STEP_INDEX: att.step_index,
                "mascope.attribution.reason": att.reason or None,
                "mascope.attribution.verified": att.verified,
                "mascope.attribution.replay_run_id": att.replay_run_id,
            }
            target.events.append(
                ("mascope.attribution", max(_ns(att.created_at), root.start), attrs)
            )


# -- the SDK ---------------------------------------------------------------------------------


def _seeded(seed: str, bits: int) -> int:
    value = int.from_bytes(hashlib.sha256(seed.encode()).digest()[: bits // 8], "big")
    return value or 1  # an all-zero id is invalid


class _Tracing:
    """A private TracerProvider whose ids are the planned ones and whose spans are kept."""

    def __init__(self) -> None:
        try:
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import SpanLimits, TracerProvider
            from opentelemetry.sdk.trace.export import SimpleSpanProcessor
            from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
                InMemorySpanExporter,
            )
            from opentelemetry.sdk.trace.id_generator import IdGenerator
            from opentelemetry.sdk.trace.sampling import ALWAYS_ON
        except ImportError:
            raise ConfigError(
                "exporting OpenTelemetry spans needs the OpenTelemetry SDK; "
                "install it with: pip install 'mascope[otel]'"
            ) from None

        class Planned(IdGenerator):
            """Hands the SDK the ids planned for the span it is starting."""

            trace_id = 1
            span_id = 1

            def generate_trace_id(self) -> int:
                return self.trace_id

            def generate_span_id(self) -> int:
                return self.span_id

        unlimited = SpanLimits.UNSET  # a long prompt or many verdicts must not be cut
        made = Resource.create({"service.name": "mascope", "service.version": __version__})
        # Without the per-process instance id the SDK adds, the same runs export the same.
        resource = Resource(
            {k: v for k, v in made.attributes.items() if k != "service.instance.id"}
        )
        self.ids = Planned()
        self.kept = InMemorySpanExporter()
        self.provider = TracerProvider(
            sampler=ALWAYS_ON,
            resource=resource,
            id_generator=self.ids,
            span_limits=SpanLimits(
                max_attributes=unlimited,
                max_events=unlimited,
                max_links=unlimited,
                max_span_attributes=unlimited,
                max_event_attributes=unlimited,
                max_link_attributes=unlimited,
                max_attribute_length=unlimited,
                max_span_attribute_length=unlimited,
            ),
        )
        self.provider.add_span_processor(SimpleSpanProcessor(self.kept))
        self.tracer = self.provider.get_tracer("mascope", __version__)

    def emit(self, run_id: str, root: _Node, redact: Redactor) -> list[ReadableSpan]:
        """The SDK's spans of one planned run (children before their parent, root last)."""
        from opentelemetry import context as otel_context
        from opentelemetry import trace

        self.kept.clear()
        self.ids.trace_id = _seeded(run_id, 128)

        def clean(attrs: Mapping[str, Any]) -> dict[str, Any]:
            # The bundle's texts are redacted already, but not as the JSON the message and
            # argument attributes are: the text rules catch `"db_password": 12345678` there,
            # which the field-name rule leaves (it masks strings only).
            out: dict[str, Any] = {}
            for key, value in attrs.items():
                if value is None:
                    continue
                if isinstance(value, str):
                    value = redact.text(value)
                elif isinstance(value, list):
                    value = [redact.text(v) if isinstance(v, str) else v for v in value]
                out[key] = value
            return out

        def start(node: _Node, parent: Any) -> None:
            self.ids.span_id = _seeded(f"{run_id}:{node.key}", 64)
            kind = trace.SpanKind.CLIENT if node.kind == "client" else trace.SpanKind.INTERNAL
            span = self.tracer.start_span(
                node.name,
                context=parent,
                kind=kind,
                attributes=clean(node.attributes),
                start_time=node.start,
            )
            inner = trace.set_span_in_context(span, otel_context.Context())
            for child in node.children:
                start(child, inner)
            for name, at, attrs in node.events:
                span.add_event(name, clean(attrs), timestamp=at)
            if node.error is not None:
                kind_of, why = node.error
                span.set_attribute(ERROR_TYPE, redact.text(kind_of))
                span.set_status(trace.Status(trace.StatusCode.ERROR, redact.text(why)))
            span.end(end_time=max(node.end, node.start))

        start(root, otel_context.Context())
        spans = list(self.kept.get_finished_spans())
        if not spans:  # the SDK hands out no-op tracers when told to
            raise ConfigError(
                "the OpenTelemetry SDK is disabled (OTEL_SDK_DISABLED=true), so no span "
                "can be built; unset it to export"
            )
        return spans

    def close(self) -> None:
        self.provider.shutdown()


def spans_by_run(store: TraceStore, run_ids: Sequence[str]) -> Iterator[list[ReadableSpan]]:
    """The SDK spans of each run, one run at a time (ids already resolved; root last)."""
    tracing = _Tracing()
    try:
        for rid in run_ids:
            root = _Planner(bundle(store, rid), store.redact).plan()
            yield tracing.emit(rid, root, store.redact)
    finally:
        tracing.close()


def run_spans(store: TraceStore, run_id: str) -> list[ReadableSpan]:
    """One stored run as the OpenTelemetry SDK's finished spans (the root last)."""
    rid = store.resolve_run_id(run_id)
    (spans,) = spans_by_run(store, [rid])  # run to the end: the provider is shut down
    return spans


# -- OTLP JSON (the collector's file exporter format) -----------------------------------------


def otlp_json(spans: Sequence[ReadableSpan]) -> dict[str, Any]:
    """An OTLP JSON `ExportTraceServiceRequest` of spans: the SDK's own OTLP encoding,
    with hex ids and integer enums as the collector's file exporter writes them."""
    from google.protobuf import json_format
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    data: dict[str, Any] = json_format.MessageToDict(
        encode_spans(spans), use_integers_for_enums=True
    )
    for rs in data.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for span in ss.get("spans", []):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if span.get(key):
                        span[key] = base64.b64decode(span[key]).hex()
    return data


def export_otel(store: TraceStore, run_ids: Sequence[str], out: str | Path) -> int:
    """Write runs to `out` as OTLP JSON, one `ExportTraceServiceRequest` line per run
    (what `mascope runs import otlp` and the collector's file exporter read); atomic,
    and refused like every export when the target would lose data. Returns the count."""
    ids = [store.resolve_run_id(r) for r in run_ids]  # fail before writing anything

    def write(fh: IO[str]) -> None:
        for spans in spans_by_run(store, ids):
            fh.write(json.dumps(otlp_json(spans), ensure_ascii=False))
            fh.write("\n")

    write_export(store, out, write)
    return len(ids)


__all__ = [
    "error_type",
    "export_otel",
    "otlp_json",
    "run_spans",
    "spans_by_run",
]
