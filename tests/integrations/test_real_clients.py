"""Real frameworks with their own OpenTelemetry instrumentation, exporting to `mascope serve`.

The model is a scripted OpenAI-compatible endpoint on loopback (`FaultServer`);
the spans are whatever the real instrumentation emits, sent by the SDK's
standard OTLP/HTTP exporter to a real receiver.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from mascope.integrations import OtlpServer, Receiver
from mascope.traces import TraceStore
from tests.models.servers import Fault, FaultServer, completion


def _tool_call(name: str, arguments: dict[str, object], call_id: str) -> Fault:
    body = completion("", tool_call={"name": name, "arguments": arguments})
    body["choices"][0]["message"]["tool_calls"][0]["id"] = call_id
    body["choices"][0]["finish_reason"] = "tool_calls"
    return Fault(body=json.dumps(body))


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[OtlpServer, Path]]:
    db = tmp_path / "mascope.db"
    store = TraceStore(db)
    server = OtlpServer(Receiver(store, idle_timeout_s=3600), port=0)
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        yield server, db
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        store.close()


def test_openai_agents_sdk_handoff_and_tool_arrive_as_a_run(
    served: tuple[OtlpServer, Path],
) -> None:
    agents = pytest.importorskip("agents")
    instrumentation = pytest.importorskip("openinference.instrumentation.openai_agents")
    from openai import AsyncOpenAI

    server, db = served
    provider = TracerProvider(resource=Resource.create({"service.name": "maths-desk"}))
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{server.url}/v1/traces", timeout=10))
    )
    agents.set_trace_processors([])  # nothing goes to OpenAI's own trace backend
    instrumentor = instrumentation.OpenAIAgentsInstrumentor()
    instrumentor.instrument(tracer_provider=provider)

    @agents.function_tool
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    script = [
        _tool_call("transfer_to_math_agent", {}, "call_h"),
        _tool_call("add", {"a": 2, "b": 3}, "call_add"),
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
        assert result.final_output == "2 + 3 = 5"
    finally:
        instrumentor.uninstrument()
        provider.shutdown()

    with TraceStore(db) as store:
        (run,) = store.list_runs(limit=5)
        steps = store.steps(run.id)
        assert run.source == "otlp" and run.status == "unknown"
        assert run.task == "What is 2 + 3?" and run.final_answer == "2 + 3 = 5"
        assert run.team == "maths-desk"
        assert run.metadata_["otel"]["framework"] == "openai-agents"
        seen = [(s.agent, s.kind) for s in steps]
        assert seen == [
            ("Triage", "message"),
            ("Triage", "tool_call"),
            ("Triage", "tool_result"),
            ("Math agent", "message"),
            ("Math agent", "tool_call"),
            ("Math agent", "tool_result"),
            ("Math agent", "message"),
        ]
        assert "transfer_to_math_agent" in steps[0].content
        assert steps[4].data["arguments"] == {"a": 2, "b": 3} and steps[5].content == "5"
        assert steps[6].content == "2 + 3 = 5" and steps[6].model == "fault-model"
        assert [m.role for m in store.step_inputs(run.id, 6)][:2] == ["system", "user"]
        assert run.input_tokens == 33 and run.output_tokens == 9
        asyncio.run(_diagnose_and_open(store, run.id))


async def _diagnose_and_open(store: TraceStore, run_id: str) -> None:
    """A received run is judged, attributed by a log-reading method and shown like a native one."""
    from mascope.diagnosis import JudgeConfig, aattribute, ajudge_run, apply_rules
    from mascope.models import ScriptedModel
    from mascope.taxonomy import MAST
    from mascope.tui import TraceApp
    from tests.tui.conftest import screen_text

    apply_rules(store, run_id)  # the rule detectors run on it (whatever they find)
    verdict = json.dumps({
        "summary": "the math agent never checked its sum", "task_completed": True,
        "modes": {m: {"present": m == "FM-3.2", "evidence_steps": [6] if m == "FM-3.2" else [], "rationale": "no check"} for m in MAST.mode_ids},
    })  # fmt: skip
    judged = await ajudge_run(
        store, run_id, JudgeConfig(model="scripted"), model=ScriptedModel([verdict])
    )
    assert judged.present == ["FM-3.2"]
    blame = json.dumps({"agent": "Math agent", "step": 6, "reason": "answered without checking"})
    result = await aattribute(
        store, run_id, method="all-at-once", model=ScriptedModel([blame]), with_ground_truth=False
    )
    assert (result.agent, result.step) == ("Math agent", 6)
    app = TraceApp(store, run_id=run_id, poll_interval=0)
    async with app.run_test(size=(130, 40)) as pilot:
        await pilot.pause()
        text = screen_text(app)
        assert "Math agent" in text and "FM-3.2" in text


def test_langgraph_graph_with_openinference_langchain_arrives_as_a_run(
    served: tuple[OtlpServer, Path],
) -> None:
    instrumentation = pytest.importorskip("openinference.instrumentation.langchain")
    from typing import Any, TypedDict

    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
    from langchain_core.outputs import ChatGeneration, ChatResult
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
            reply = client.chat.completions.create(
                model=self.model_name,
                messages=[
                    {"role": roles.get(m.type, "user"), "content": str(m.content)} for m in messages
                ],  # type: ignore[misc]
            )
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

    server, db = served
    provider = TracerProvider(resource=Resource.create({"service.name": "essay-team"}))
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{server.url}/v1/traces", timeout=10))
    )
    instrumentor = instrumentation.LangChainInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        with FaultServer([Fault(answer="Rome was founded in 753 BC."), Fault(answer="Essay: Rome, 753 BC.")]) as model_server:  # fmt: skip
            llm = EndpointChat(base_url=model_server.url)

            def researcher(state: State) -> State:
                return {"messages": [*state["messages"], llm.invoke(state["messages"])]}

            def writer(state: State) -> State:
                return {"messages": [*state["messages"], llm.invoke(state["messages"])]}

            graph = StateGraph(State)
            graph.add_node("researcher", researcher)
            graph.add_node("writer", writer)
            graph.add_edge(START, "researcher")
            graph.add_edge("researcher", "writer")
            graph.add_edge("writer", END)
            out = graph.compile().invoke({"messages": [HumanMessage("When was Rome founded?")]})
        assert out["messages"][-1].content == "Essay: Rome, 753 BC."
    finally:
        instrumentor.uninstrument()
        provider.shutdown()

    with TraceStore(db) as store:
        (run,) = store.list_runs(limit=5)
        steps = store.steps(run.id)
        assert run.status == "unknown" and run.team == "essay-team"
        assert run.metadata_["otel"]["framework"] == "langgraph"
        messages = [(s.agent, s.content) for s in steps if s.kind == "message"]
        assert messages == [
            ("researcher", "Rome was founded in 753 BC."),
            ("writer", "Essay: Rome, 753 BC."),
        ]
        assert run.task == "When was Rome founded?"
        assert run.final_answer == "Essay: Rome, 753 BC."
        assert all(s.model == "fault-model" and s.input_tokens == 11 for s in steps)
        assert [m.content for m in store.step_inputs(run.id, 0)] == ["When was Rome founded?"]
