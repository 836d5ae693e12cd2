"""Real agent programs, instrumented by their real OpenTelemetry instrumentations.

Each function runs one program against a scripted OpenAI-compatible endpoint on
loopback (`FaultServer`), with its instrumentation sending spans to the given
`TracerProvider`, and returns the program's own final answer. The end-to-end
tests give a provider that exports over OTLP/HTTP to `mascope serve`; the
mapping tests give one that keeps the spans in memory. Each skips when its
framework or instrumentation is not installed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.models.servers import Fault, FaultServer, completion

Program = Callable[[TracerProvider], str]


def tool_call(name: str, arguments: dict[str, object], call_id: str) -> Fault:
    """A scripted reply asking for one tool call."""
    body = completion("", tool_call={"name": name, "arguments": arguments})
    body["choices"][0]["message"]["tool_calls"][0]["id"] = call_id
    body["choices"][0]["finish_reason"] = "tool_calls"
    return Fault(body=json.dumps(body))


HANDOFF_STEPS = [
    ("Triage", "message", "[tool call] transfer_to_math_agent()"),
    ("Triage", "tool_call", "handoff to Math agent"),
    ("Triage", "tool_result", "Math agent"),
    ("Math agent", "message", '[tool call] add({"a": 2, "b": 3})'),
    ("Math agent", "tool_call", 'add({"a": 2, "b": 3})'),
    ("Math agent", "tool_result", "5"),
    ("Math agent", "message", "2 + 3 = 5"),
]
"""The steps `openai_agents_handoff` gives under OpenInference: (agent, kind, content)."""


def openai_agents_handoff(provider: TracerProvider, *, genai: bool = False) -> str:
    """OpenAI Agents SDK: triage hands off to a maths agent, which calls an `add` tool and
    answers. Every reply has 11 prompt and 3 completion tokens. Traced by the OpenInference
    instrumentation, or with `genai` by the official GenAI one
    (`opentelemetry-instrumentation-openai-agents-v2`, message content on)."""
    agents = pytest.importorskip("agents")
    module = (
        "opentelemetry.instrumentation.openai_agents"
        if genai
        else "openinference.instrumentation.openai_agents"
    )
    instrumentation = pytest.importorskip(module)
    from openai import AsyncOpenAI

    agents.set_trace_processors([])  # nothing goes to OpenAI's own trace backend
    instrumentor = instrumentation.OpenAIAgentsInstrumentor()
    if genai:
        instrumentor.instrument(tracer_provider=provider, capture_message_content="span_only")
    else:
        instrumentor.instrument(tracer_provider=provider)

    @agents.function_tool  # type: ignore[untyped-decorator]
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    script = [
        tool_call("transfer_to_math_agent", {}, "call_h"),
        tool_call("add", {"a": 2, "b": 3}, "call_add"),
        Fault(answer="2 + 3 = 5"),
    ]
    try:
        with FaultServer(script) as model_server:
            client = AsyncOpenAI(base_url=model_server.url, api_key="test", max_retries=0)
            model = agents.OpenAIChatCompletionsModel(model="fault-model", openai_client=client)
            math = agents.Agent(
                name="Math agent", instructions="You add numbers.", tools=[add], model=model
            )
            triage = agents.Agent(
                name="Triage", instructions="Hand maths over.", handoffs=[math], model=model
            )
            result = asyncio.run(agents.Runner.run(triage, "What is 2 + 3?"))
    finally:
        instrumentor.uninstrument()
    return str(result.final_output)


LANGGRAPH_STEPS = [
    ("researcher", "tool_call", "founding_year(Rome)"),
    ("researcher", "tool_result", "753 BC"),
    ("researcher", "message", "Rome was founded in 753 BC."),
    ("writer", "message", "Essay: Rome, 753 BC."),
]
"""The steps `langgraph_two_nodes` gives: (agent, kind, content)."""


def langgraph_two_nodes(provider: TracerProvider) -> str:
    """A LangGraph graph (OpenInference LangChain instrumentation): a researcher node that
    looks a fact up with a LangChain tool and asks the model, then a writer node that asks
    the model. Every reply has 11 prompt and 3 completion tokens."""
    instrumentation = pytest.importorskip("openinference.instrumentation.langchain")
    from typing import TypedDict

    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
    from langchain_core.outputs import ChatGeneration, ChatResult
    from langchain_core.tools import tool
    from langgraph.graph import END, START, StateGraph
    from openai import OpenAI

    class EndpointChat(BaseChatModel):
        """A LangChain chat model over any OpenAI-compatible endpoint (the scripted one here)."""

        base_url: str
        model_name: str = "fault-model"

        @property
        def _llm_type(self) -> str:
            return "openai-compatible"

        def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any) -> ChatResult:  # fmt: skip
            client = OpenAI(base_url=self.base_url, api_key="test", max_retries=0)
            roles = {"human": "user", "ai": "assistant", "system": "system"}
            sent: list[Any] = [
                {"role": roles.get(m.type, "user"), "content": str(m.content)} for m in messages
            ]
            reply = client.chat.completions.create(model=self.model_name, messages=sent)
            text = reply.choices[0].message.content or ""
            usage = reply.usage
            message = AIMessage(
                content=text,
                usage_metadata={
                    "input_tokens": usage.prompt_tokens if usage else 0,
                    "output_tokens": usage.completion_tokens if usage else 0,
                    "total_tokens": usage.total_tokens if usage else 0,
                },
            )
            return ChatResult(generations=[ChatGeneration(message=message)])

    # The functional form: annotations in a function body are strings here, which
    # LangGraph cannot resolve.
    State = TypedDict("State", {"messages": list[BaseMessage]})  # noqa: UP013

    @tool
    def founding_year(city: str) -> str:
        """The year a city was founded."""
        return "753 BC" if city == "Rome" else "unknown"

    instrumentor = instrumentation.LangChainInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        with FaultServer([Fault(answer="Rome was founded in 753 BC."), Fault(answer="Essay: Rome, 753 BC.")]) as model_server:  # fmt: skip
            llm = EndpointChat(base_url=model_server.url)

            def researcher(state: State) -> State:
                year = founding_year.invoke({"city": "Rome"})
                known = SystemMessage(f"Known: Rome was founded in {year}.")
                return {"messages": [*state["messages"], llm.invoke([known, *state["messages"]])]}

            def writer(state: State) -> State:
                return {"messages": [*state["messages"], llm.invoke(state["messages"])]}

            graph = StateGraph(State)
            graph.add_node("researcher", researcher)
            graph.add_node("writer", writer)
            graph.add_edge(START, "researcher")
            graph.add_edge("researcher", "writer")
            graph.add_edge("writer", END)
            out = graph.compile().invoke({"messages": [HumanMessage("When was Rome founded?")]})
    finally:
        instrumentor.uninstrument()
    return str(out["messages"][-1].content)


def openai_client_genai(provider: TracerProvider, *, content: bool = True) -> str:
    """The plain `openai` client with the OpenTelemetry GenAI instrumentation
    (`opentelemetry-instrumentation-openai-v2`, message content on spans unless
    `content` is false, its default), inside an app's own `invoke_agent` span: a tool
    call, the tool run by the app, the answer."""
    instrumentation = pytest.importorskip("opentelemetry.instrumentation.openai_v2")
    from openai import OpenAI

    instrumentor = instrumentation.OpenAIInstrumentor()
    # Message content on the spans, in the current conventions (read when instrumenting
    # and at each call).
    with _environ(
        OTEL_SEMCONV_STABILITY_OPT_IN="gen_ai_latest_experimental",
        OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="SPAN_ONLY" if content else "NO_CONTENT",
    ):
        instrumentor.instrument(tracer_provider=provider)
        try:
            return _add_with_a_tool(provider, OpenAI)
        finally:
            instrumentor.uninstrument()


def _add_with_a_tool(provider: TracerProvider, openai_class: Any) -> str:
    """The app: ask, run the tool the model asked for (in an `execute_tool` span), ask again."""
    tracer = provider.get_tracer("adder-app")
    tools = [{"type": "function", "function": {"name": "add", "parameters": {"type": "object"}}}]
    asked = [
        {"role": "system", "content": "You add numbers."},
        {"role": "user", "content": "What is 2 + 3?"},
    ]
    script = [tool_call("add", {"a": 2, "b": 3}, "call_add"), Fault(answer="5")]
    with FaultServer(script) as model_server, tracer.start_as_current_span("invoke_agent adder") as agent:  # fmt: skip
        agent.set_attribute("gen_ai.operation.name", "invoke_agent")
        agent.set_attribute("gen_ai.agent.name", "adder")
        client = openai_class(base_url=model_server.url, api_key="test", max_retries=0)
        first = client.chat.completions.create(model="fault-model", messages=asked, tools=tools)
        call = first.choices[0].message.tool_calls[0]
        with tracer.start_as_current_span("execute_tool add") as tool:
            tool.set_attribute("gen_ai.operation.name", "execute_tool")
            tool.set_attribute("gen_ai.tool.name", "add")
            tool.set_attribute("gen_ai.tool.call.id", call.id)
            tool.set_attribute("gen_ai.tool.call.arguments", call.function.arguments)
            tool.set_attribute("gen_ai.tool.call.result", "5")
        reply = first.choices[0].message.model_dump(exclude_none=True)
        answered = {"role": "tool", "tool_call_id": call.id, "content": "5"}
        second = client.chat.completions.create(
            model="fault-model", messages=[*asked, reply, answered]
        )
    return str(second.choices[0].message.content or "")


AUTOGEN_STEPS = [
    ("solver", "message", '[tool call] add({"a": 2, "b": 3})'),
    ("solver", "tool_call", 'add({"a": 2, "b": 3})'),
    ("solver", "tool_result", "5"),
    ("solver", "message", "2 + 3 = 5"),
    ("checker", "message", "APPROVED: 5"),
]
"""The steps `autogen_round_robin` gives: (agent, kind, content)."""


def autogen_round_robin(provider: TracerProvider) -> str:
    """AutoGen AgentChat (OpenInference instrumentation): a solver with an `add` tool and a
    checker take turns until the checker approves. Every reply has 11 prompt and 3
    completion tokens."""
    instrumentation = pytest.importorskip("openinference.instrumentation.autogen_agentchat")
    from autogen_agentchat.agents import AssistantAgent
    from autogen_agentchat.conditions import TextMentionTermination
    from autogen_agentchat.teams import RoundRobinGroupChat
    from autogen_ext.models.openai import OpenAIChatCompletionClient

    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    instrumentor = instrumentation.AutogenAgentChatInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    script = [
        tool_call("add", {"a": 2, "b": 3}, "call_add"),
        Fault(answer="2 + 3 = 5"),
        Fault(answer="APPROVED: 5"),
    ]
    model_info = {"vision": False, "function_calling": True, "json_output": False, "family": "unknown", "structured_output": False}  # fmt: skip
    try:
        with FaultServer(script) as model_server:
            client = OpenAIChatCompletionClient(
                model="fault-model",
                base_url=model_server.url,
                api_key="test",
                max_retries=0,
                model_info=model_info,
            )
            solver = AssistantAgent(
                "solver",
                model_client=client,
                tools=[add],
                system_message="You add numbers.",
                reflect_on_tool_use=True,
            )
            checker = AssistantAgent("checker", model_client=client, system_message="Check it.")
            team = RoundRobinGroupChat(
                [solver, checker], termination_condition=TextMentionTermination("APPROVED")
            )
            result = asyncio.run(team.run(task="What is 2 + 3?"))
    finally:
        instrumentor.uninstrument()
    return str(getattr(result.messages[-1], "content", ""))


@contextmanager
def _environ(**values: str) -> Iterator[None]:
    """Environment variables set while the instrumentation reads its settings."""
    import os

    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def record(program: Program, *, service: str) -> tuple[str, Sequence[ReadableSpan]]:
    """Run a program with its spans kept in memory: its answer and the finished spans."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    try:
        answer = program(provider)
    finally:
        provider.shutdown()
    return answer, exporter.get_finished_spans()


def save(program: Program, path: str, *, service: str) -> None:
    """Record a program's spans to an OTLP JSON file (the collector's file exporter format),
    for the tests to map where the framework cannot be installed."""
    from pathlib import Path

    from .spans import otlp_json_line

    _, spans = record(program, service=service)
    Path(path).write_text(otlp_json_line(spans) + "\n")


if __name__ == "__main__":
    # python -m tests.integrations.clients autogen_round_robin tests/integrations/recorded/autogen_round_robin.jsonl autogen-team
    import sys

    save(globals()[sys.argv[1]], sys.argv[2], service=sys.argv[3])
