"""The mapping from OpenTelemetry spans (GenAI conventions, OpenInference) to steps."""

from __future__ import annotations

import json

from opentelemetry.trace import Status, StatusCode

from mascope.integrations import map_trace, parse_protobuf

from .spans import agent_span, chat_span, otlp_protobuf, recording


def _mapped(spans):  # type: ignore[no-untyped-def]
    return map_trace(parse_protobuf(otlp_protobuf(spans)))


def test_genai_agent_chat_and_tool_become_steps_with_agent_model_tokens() -> None:
    with recording() as (tracer, finished):
        with agent_span(tracer, "researcher"):
            with tracer.start_as_current_span("chat gpt-4o-mini") as chat:
                chat.set_attribute("gen_ai.operation.name", "chat")
                chat.set_attribute("gen_ai.provider.name", "openai")
                chat.set_attribute("gen_ai.request.model", "gpt-4o-mini")
                chat.set_attribute("gen_ai.usage.input_tokens", 12)
                chat.set_attribute("gen_ai.usage.output_tokens", 5)
                chat.set_attribute(
                    "gen_ai.system_instructions",
                    json.dumps([{"type": "text", "content": "Be brief."}]),
                )
                chat.set_attribute(
                    "gen_ai.input.messages",
                    json.dumps(
                        [
                            {
                                "role": "user",
                                "parts": [{"type": "text", "content": "Weather in Paris?"}],
                            }
                        ]
                    ),
                )
                chat.set_attribute(
                    "gen_ai.output.messages",
                    json.dumps(
                        [
                            {
                                "role": "assistant",
                                "parts": [
                                    {
                                        "type": "tool_call",
                                        "id": "c1",
                                        "name": "weather",
                                        "arguments": {"city": "Paris"},
                                    }
                                ],
                                "finish_reason": "tool_call",
                            }
                        ]
                    ),
                )
                chat.set_attribute("custom.thing", "kept")
            with tracer.start_as_current_span("execute_tool weather") as tool:
                tool.set_attribute("gen_ai.operation.name", "execute_tool")
                tool.set_attribute("gen_ai.tool.name", "weather")
                tool.set_attribute("gen_ai.tool.call.id", "c1")
                tool.set_attribute("gen_ai.tool.call.arguments", '{"city": "Paris"}')
                tool.set_attribute("gen_ai.tool.call.result", "sunny, 21C")
        run = _mapped(finished())
    kinds = [(s.agent, s.kind) for s in run.steps]
    assert kinds == [
        ("researcher", "message"),
        ("researcher", "tool_call"),
        ("researcher", "tool_result"),
    ]
    chat_step = run.steps[0]
    assert chat_step.model == "gpt-4o-mini"
    assert (chat_step.input_tokens, chat_step.output_tokens) == (12, 5)
    assert "weather" in chat_step.content and chat_step.data["tool_calls"][0]["name"] == "weather"
    assert chat_step.inputs == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Paris?"},
    ]
    assert chat_step.latency_s is not None and chat_step.latency_s >= 0
    assert chat_step.data["attributes"] == {"custom.thing": "kept"}
    assert run.steps[1].data["arguments"] == {"city": "Paris"}
    assert run.steps[2].content == "sunny, 21C"
    assert run.team == "demo-app"
    assert run.task == "Weather in Paris?"
    assert run.metadata["otel"]["unmapped_attributes"] == {"custom.thing": "kept"}
    assert run.metadata["otel"]["conventions"] == ["gen_ai"]


def test_older_gen_ai_system_and_prompt_completion_events() -> None:
    with recording() as (tracer, finished):
        with tracer.start_as_current_span("openai.chat") as chat:
            chat.set_attribute("gen_ai.system", "openai")
            chat.set_attribute("gen_ai.request.model", "gpt-3.5-turbo")
            chat.set_attribute("gen_ai.usage.prompt_tokens", 7)
            chat.set_attribute("gen_ai.usage.completion_tokens", 3)
            chat.add_event(
                "gen_ai.content.prompt",
                {"gen_ai.prompt": json.dumps([{"role": "user", "content": "2+2?"}])},
            )
            chat.add_event(
                "gen_ai.content.completion",
                {"gen_ai.completion": json.dumps([{"role": "assistant", "content": "4"}])},
            )
        run = _mapped(finished())
    (step,) = run.steps
    assert (step.kind, step.content, step.model) == ("message", "4", "gpt-3.5-turbo")
    assert (step.input_tokens, step.output_tokens) == (7, 3)
    assert step.inputs == [{"role": "user", "content": "2+2?"}]
    assert step.agent == "openai"  # no agent named anywhere: the provider speaks


def test_openinference_agent_llm_tool_chain() -> None:
    with recording() as (tracer, finished):
        with tracer.start_as_current_span("LangGraph") as graph:
            graph.set_attribute("openinference.span.kind", "CHAIN")
            graph.set_attribute("input.value", "What is 6 * 7?")
            graph.set_attribute("output.value", "42")
            with tracer.start_as_current_span("solver") as agent:
                agent.set_attribute("openinference.span.kind", "AGENT")
                with tracer.start_as_current_span("ChatOpenAI") as llm:
                    llm.set_attribute("openinference.span.kind", "LLM")
                    llm.set_attribute("llm.model_name", "gpt-4o")
                    llm.set_attribute("llm.input_messages.0.message.role", "system")
                    llm.set_attribute("llm.input_messages.0.message.content", "You solve.")
                    llm.set_attribute("llm.input_messages.1.message.role", "user")
                    llm.set_attribute(
                        "llm.input_messages.1.message.contents.0.message_content.text",
                        "What is 6 * 7?",
                    )
                    llm.set_attribute("llm.output_messages.0.message.role", "assistant")
                    llm.set_attribute(
                        "llm.output_messages.0.message.tool_calls.0.tool_call.function.name",
                        "multiply",
                    )
                    llm.set_attribute(
                        "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments",
                        '{"a": 6, "b": 7}',
                    )
                    llm.set_attribute("llm.token_count.prompt", 20)
                    llm.set_attribute("llm.token_count.completion", 8)
                with tracer.start_as_current_span("multiply") as tool:
                    tool.set_attribute("openinference.span.kind", "TOOL")
                    tool.set_attribute("tool.name", "multiply")
                    tool.set_attribute("input.value", '{"a": 6, "b": 7}')
                    tool.set_attribute("output.value", "42")
            with tracer.start_as_current_span("checker") as check:
                check.set_attribute("openinference.span.kind", "CHAIN")
                check.set_attribute("output.value", "looks right")
        run = _mapped(finished())
    assert [(s.agent, s.kind) for s in run.steps] == [
        ("solver", "message"),
        ("solver", "tool_call"),
        ("solver", "tool_result"),
        ("checker", "event"),
    ]
    assert run.steps[0].inputs == [
        {"role": "system", "content": "You solve."},
        {"role": "user", "content": "What is 6 * 7?"},
    ]
    assert (run.steps[0].model, run.steps[0].input_tokens, run.steps[0].output_tokens) == (
        "gpt-4o",
        20,
        8,
    )
    assert run.steps[0].data["tool_calls"][0]["name"] == "multiply"
    assert run.steps[3].content == "looks right"
    assert (run.task, run.final_answer, run.team) == ("What is 6 * 7?", "42", "demo-app")
    assert run.metadata["otel"]["conventions"] == ["openinference"]


def test_unknown_spans_are_kept_as_events_and_errors_are_recorded() -> None:
    with recording() as (tracer, finished):
        with tracer.start_as_current_span("handle_request") as root:
            with tracer.start_as_current_span("POST /lookup") as http:
                http.set_attribute("http.method", "POST")
            with agent_span(tracer, "writer"):
                with chat_span(tracer) as chat:
                    chat.set_attribute("error.type", "RateLimitError")
                    chat.set_status(Status(StatusCode.ERROR, "429 too many requests"))
            root.set_status(Status(StatusCode.ERROR, "gave up"))
        run = _mapped(finished())
    kinds = [(s.agent, s.kind) for s in run.steps]
    assert ("POST /lookup", "event") in kinds
    assert ("writer", "message") in kinds
    failed = next(s for s in run.steps if s.agent == "writer")
    assert failed.error == "429 too many requests"
    assert run.steps[-1].kind == "error" and run.steps[-1].content == "gave up"
    assert run.status == "error"
    http_step = next(s for s in run.steps if s.kind == "event")
    assert http_step.data["attributes"] == {"http.method": "POST"}


def test_messages_given_as_an_array_of_json_strings() -> None:
    with recording() as (tracer, finished):
        with tracer.start_as_current_span("chat") as chat:
            chat.set_attribute("gen_ai.operation.name", "chat")
            chat.set_attribute(
                "gen_ai.input.messages",
                [json.dumps({"role": "user", "parts": [{"type": "text", "content": "hi"}]})],
            )
            chat.set_attribute(
                "gen_ai.output.messages",
                [
                    json.dumps(
                        {"role": "assistant", "parts": [{"type": "text", "content": "hello"}]}
                    )
                ],
            )
        run = _mapped(finished())
    (step,) = run.steps
    assert step.content == "hello" and step.inputs == [{"role": "user", "content": "hi"}]


def test_evaluation_events_become_verdicts_on_what_they_judged() -> None:
    """Any evaluator's `gen_ai.evaluation.result` event is a verdict step at its time;
    mascope's own diagnosis labels (with an annotator) are not steps."""
    with recording() as (tracer, finished):
        with agent_span(tracer, "helper"):
            with chat_span(tracer, "chat m", model="m", said="2+3?", answer="5") as chat:
                chat.add_event(
                    "gen_ai.evaluation.result",
                    {
                        "gen_ai.evaluation.name": "Correctness",
                        "gen_ai.evaluation.score.value": 1.0,
                        "gen_ai.evaluation.score.label": "correct",
                        "gen_ai.evaluation.explanation": "2 + 3 is 5",
                    },
                )
                chat.add_event(
                    "gen_ai.evaluation.result",
                    {"gen_ai.evaluation.name": "FM-3.3", "mascope.annotator": "llm:judge"},
                )
        mapped = _mapped(finished())
    assert [(s.agent, s.kind, s.content) for s in mapped.steps] == [
        ("helper", "message", "5"),
        ("Correctness", "verdict", "2 + 3 is 5"),
    ]
    verdict = mapped.steps[1].data or {}
    assert (verdict["passed"], verdict["score"], verdict["label"]) == (True, 1.0, "correct")
