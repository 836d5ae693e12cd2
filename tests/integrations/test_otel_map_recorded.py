"""The mapping, per convention, on spans that real instrumentations produced.

Each program in `clients.py` runs once per module against a scripted endpoint
with its real instrumentation; its spans are kept in memory by the SDK, turned
into `SpanRecord`s with the SDK's own OTLP encoder (`from_sdk_spans`) and
mapped. Nothing here is a hand-written span: what is asserted is the step list
a user sees for what the program did.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest

from mascope.integrations import (
    MappedRun,
    from_sdk_spans,
    map_trace,
    parse_protobuf,
    read_otlp_file,
)

from .clients import (
    AUTOGEN_STEPS,
    HANDOFF_STEPS,
    LANGGRAPH_STEPS,
    autogen_round_robin,
    langgraph_two_nodes,
    openai_agents_handoff,
    openai_client_genai,
    record,
)

RECORDED = Path(__file__).parent / "recorded"


def _mapped(program, service: str, *, answer: str) -> MappedRun:  # type: ignore[no-untyped-def]
    """A program run with its spans kept in memory, its own answer checked, its spans mapped."""
    said, spans = record(program, service=service)
    assert said == answer
    return map_trace(from_sdk_spans(spans))


def _steps(run: MappedRun) -> list[tuple[str, str, str]]:
    return [(s.agent, s.kind, s.content) for s in run.steps]


# -- OpenInference: OpenAI Agents SDK ------------------------------------------------


@pytest.fixture(scope="module")
def agents_run() -> MappedRun:
    return _mapped(openai_agents_handoff, "maths-desk", answer="2 + 3 = 5")


def test_openai_agents_turns_handoff_and_tool_become_steps(agents_run: MappedRun) -> None:
    assert _steps(agents_run) == HANDOFF_STEPS


def test_openai_agents_handoff_names_both_agents(agents_run: MappedRun) -> None:
    handoff = [s for s in agents_run.steps if s.data and "handoff" in s.data]
    assert [s.kind for s in handoff] == ["tool_call", "tool_result"]
    assert all(s.data["handoff"] == {"from": "Triage", "to": "Math agent"} for s in handoff)  # type: ignore[index]
    assert "arguments" not in handoff[0].data  # type: ignore[operator]  # the agent is no argument


def test_openai_agents_model_tokens_inputs_and_tool_arguments(agents_run: MappedRun) -> None:
    steps = agents_run.steps
    messages = [s for s in steps if s.kind == "message"]
    assert [(s.model, s.input_tokens, s.output_tokens) for s in messages] == [("fault-model", 11, 3)] * 3  # fmt: skip
    assert all(s.model is None for s in steps if s.kind != "message")
    assert all(s.latency_s is not None and s.latency_s >= 0 for s in messages)
    assert steps[4].data is not None and steps[4].data["arguments"] == {"a": 2, "b": 3}
    assert messages[0].data is not None and messages[0].data["tool_calls"][0]["name"] == "transfer_to_math_agent"  # fmt: skip
    sent = messages[-1].inputs or []
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "tool", "assistant", "tool"]
    assert sent[0]["content"] == "You add numbers." and sent[-1] == {
        "role": "tool",
        "content": "5",
        "tool_call_id": "call_add",
    }


def test_openai_agents_run_task_answer_framework_and_unmapped(agents_run: MappedRun) -> None:
    run = agents_run
    assert (run.team, run.task, run.final_answer) == ("maths-desk", "What is 2 + 3?", "2 + 3 = 5")
    otel = run.metadata["otel"]
    assert otel["framework"] == "openai-agents" and otel["conventions"] == ["openinference"]
    assert otel["complete"] and otel["failed_spans"] == 0
    # what no rule reads is kept, on the run and on the step
    assert otel["unmapped_attributes"]["tool.description"] == "Add two numbers."
    add_call = run.steps[4]
    assert add_call.data is not None
    assert add_call.data["attributes"]["tool.description"] == "Add two numbers."


# -- the same OpenAI Agents SDK program, traced by the official GenAI instrumentation ---------


@pytest.fixture(scope="module")
def agents_genai_run() -> MappedRun:
    return _mapped(partial(openai_agents_handoff, genai=True), "maths-desk", answer="2 + 3 = 5")


def test_openai_agents_gives_the_same_steps_under_either_instrumentation(
    agents_run: MappedRun, agents_genai_run: MappedRun
) -> None:
    """Agents named by their `invoke_agent` spans (not the `gen_ai.agent.name` default the
    instrumentation puts on every chat span), the `agent_handoff` span as the handoff, and
    no steps from its structural `unknown` spans."""
    for run in (agents_run, agents_genai_run):
        assert [(s.agent, s.kind) for s in run.steps] == [(a, k) for a, k, _ in HANDOFF_STEPS]
        steps = run.steps
        # The GenAI instrumentation writes a tool-calling reply's text its own way (steps 0, 3).
        assert [steps[i].content for i in (1, 2, 4, 5, 6)] == [
            HANDOFF_STEPS[i][2] for i in (1, 2, 4, 5, 6)
        ]
        assert steps[1].data is not None
        assert steps[1].data["handoff"] == {"from": "Triage", "to": "Math agent"}
        said = [s for s in steps if s.kind == "message"]
        assert all((s.model, s.input_tokens, s.output_tokens) == ("fault-model", 11, 3) for s in said)  # fmt: skip
        assert (run.task, run.final_answer) == ("What is 2 + 3?", "2 + 3 = 5")
        assert run.metadata["otel"]["framework"] == "openai-agents"
    assert agents_genai_run.metadata["otel"]["conventions"] == ["gen_ai"]
    sent = agents_genai_run.steps[-1].inputs or []
    assert [m["role"] for m in sent][:2] == ["system", "user"]
    assert sent[-1]["role"] == "tool" and sent[-1]["content"] == "5"


# -- OpenInference: LangGraph with the LangChain instrumentation ----------------------------


@pytest.fixture(scope="module")
def langgraph_run() -> MappedRun:
    return _mapped(langgraph_two_nodes, "essay-team", answer="Essay: Rome, 753 BC.")


def test_langgraph_nodes_are_agents_and_tool_and_model_calls_are_steps(
    langgraph_run: MappedRun,
) -> None:
    assert _steps(langgraph_run) == LANGGRAPH_STEPS


def test_langgraph_model_tokens_and_inputs(langgraph_run: MappedRun) -> None:
    researcher, writer = (s for s in langgraph_run.steps if s.kind == "message")
    assert (researcher.model, researcher.input_tokens, researcher.output_tokens) == ("fault-model", 11, 3)  # fmt: skip
    assert (writer.model, writer.input_tokens, writer.output_tokens) == ("fault-model", 11, 3)
    assert researcher.inputs == [
        {"role": "system", "content": "Known: Rome was founded in 753 BC."},
        {"role": "user", "content": "When was Rome founded?"},
    ]
    assert writer.inputs == [
        {"role": "user", "content": "When was Rome founded?"},
        {"role": "assistant", "content": "Rome was founded in 753 BC."},
    ]


def test_langgraph_run_reads_the_graph_state_not_its_json(langgraph_run: MappedRun) -> None:
    run = langgraph_run
    assert (run.team, run.task, run.final_answer) == (
        "essay-team",
        "When was Rome founded?",
        "Essay: Rome, 753 BC.",
    )
    otel = run.metadata["otel"]
    assert otel["framework"] == "langgraph" and otel["conventions"] == ["openinference"]
    assert otel["unmapped_attributes"]["tool.description"] == "The year a city was founded."


# -- OpenInference: AutoGen AgentChat ---------------------------------------------------


@pytest.fixture(scope="module")
def autogen_run() -> MappedRun:
    """Live when AutoGen is installed; else the spans recorded from the same program once
    (`python -m tests.integrations.clients autogen_round_robin FILE autogen-team`): AutoGen
    pins protobuf 5, which the dev environment does not take (docs/integrations.md)."""
    try:
        return _mapped(autogen_round_robin, "autogen-team", answer="APPROVED: 5")
    except pytest.skip.Exception:
        return map_trace(read_otlp_file(RECORDED / "autogen_round_robin.jsonl"))


def test_autogen_agents_are_named_by_their_graph_node_not_the_method(
    autogen_run: MappedRun,
) -> None:
    assert _steps(autogen_run) == AUTOGEN_STEPS


def test_autogen_model_tokens_and_the_tool_result_it_was_sent(autogen_run: MappedRun) -> None:
    said = [s for s in autogen_run.steps if s.kind == "message"]
    assert [(s.model, s.input_tokens, s.output_tokens) for s in said] == [("fault-model", 11, 3)] * 3  # fmt: skip
    reflected = said[1].inputs or []
    assert [m["role"] for m in reflected] == ["developer", "user", "assistant", "function"]
    assert reflected[-1]["content"] == "5" and reflected[-1]["tool_call_id"] == "call_add"
    run = autogen_run
    assert (run.team, run.task, run.final_answer) == ("autogen-team", "What is 2 + 3?", "APPROVED: 5")  # fmt: skip
    otel = run.metadata["otel"]
    assert otel["framework"] == "autogen" and otel["conventions"] == ["openinference"]
    assert otel["unmapped_attributes"]["participant_names"] == ["solver", "checker"]


# -- OpenTelemetry GenAI conventions: the openai client with opentelemetry-instrumentation-openai-v2


@pytest.fixture(scope="module")
def genai_run() -> MappedRun:
    return _mapped(openai_client_genai, "adder-app", answer="5")


def test_genai_chat_spans_under_the_apps_agent_span_become_its_steps(genai_run: MappedRun) -> None:
    assert _steps(genai_run) == [
        ("adder", "message", '[tool call] add({"a": 2, "b": 3})'),
        ("adder", "tool_call", 'add({"a": 2, "b": 3})'),
        ("adder", "tool_result", "5"),
        ("adder", "message", "5"),
    ]


def test_genai_model_tokens_provider_and_messages_sent(genai_run: MappedRun) -> None:
    first, second = (s for s in genai_run.steps if s.kind == "message")
    for step in (first, second):
        assert (step.model, step.input_tokens, step.output_tokens) == ("fault-model", 11, 3)
        assert step.data is not None and step.data["provider"] == "openai"
    assert first.data is not None and first.data["tool_calls"] == [
        {"id": "call_add", "name": "add", "arguments": {"a": 2, "b": 3}}
    ]
    assert first.inputs == [
        {"role": "system", "content": "You add numbers."},
        {"role": "user", "content": "What is 2 + 3?"},
    ]
    assert second.inputs is not None
    assert [m["role"] for m in second.inputs] == ["system", "user", "assistant", "tool"]
    assert second.inputs[-1] == {"role": "tool", "content": "5", "tool_call_id": "call_add"}
    call = genai_run.steps[1]
    assert call.data is not None and (call.data["call_id"], call.data["arguments"]) == ("call_add", {"a": 2, "b": 3})  # fmt: skip


def test_genai_run_task_answer_framework_and_unmapped(genai_run: MappedRun) -> None:
    run = genai_run
    assert (run.team, run.task, run.final_answer) == ("adder-app", "What is 2 + 3?", "5")
    otel = run.metadata["otel"]
    assert otel["framework"] == "opentelemetry-genai" and otel["conventions"] == ["gen_ai"]
    assert otel["unmapped_attributes"]["gen_ai.response.id"] == "chatcmpl-test"


def test_genai_without_message_content_still_gives_every_step() -> None:
    """The instrumentation's default records no messages: the steps stay, without text."""
    run = _mapped(partial(openai_client_genai, content=False), "adder-app", answer="5")
    assert [(s.agent, s.kind) for s in run.steps] == [
        ("adder", "message"),
        ("adder", "tool_call"),
        ("adder", "tool_result"),
        ("adder", "message"),
    ]
    said = [s for s in run.steps if s.kind == "message"]
    assert all(s.content == "" and s.inputs is None for s in said)
    assert all((s.model, s.input_tokens, s.output_tokens) == ("fault-model", 11, 3) for s in said)
    assert run.task == "" and run.final_answer is None  # nothing said them


def test_spans_read_in_process_are_what_the_exporter_would_send() -> None:
    from .spans import agent_span, chat_span, otlp_protobuf, recording

    with recording() as (tracer, finished):
        with agent_span(tracer, "writer"), chat_span(tracer, said="hi", answer="hello"):
            pass
        spans = finished()
    assert from_sdk_spans(spans) == parse_protobuf(otlp_protobuf(spans))
    assert [s.name for s in from_sdk_spans(spans)] == ["chat", "invoke_agent writer"]
