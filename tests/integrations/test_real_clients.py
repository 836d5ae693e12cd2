"""Real frameworks with their own OpenTelemetry instrumentation, exporting to `mascope serve`.

The model is a scripted OpenAI-compatible endpoint on loopback (`FaultServer`);
the spans are whatever the real instrumentation emits, sent by the SDK's
standard OTLP/HTTP exporter to a real receiver.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from mascope.integrations import OtlpServer
from mascope.traces import TraceStore

from .clients import (
    AUTOGEN_STEPS,
    HANDOFF_STEPS,
    LANGGRAPH_STEPS,
    Program,
    autogen_round_robin,
    langgraph_two_nodes,
    openai_agents_handoff,
)


def _exported(program: Program, server: OtlpServer, *, service: str) -> str:
    """Run a real program whose spans go to `mascope serve` by the standard OTLP/HTTP exporter."""
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{server.url}/v1/traces", timeout=10))
    )
    try:
        return program(provider)
    finally:
        provider.shutdown()


def test_openai_agents_sdk_handoff_and_tool_arrive_as_a_run(
    served: tuple[OtlpServer, Path],
) -> None:
    server, db = served
    assert _exported(openai_agents_handoff, server, service="maths-desk") == "2 + 3 = 5"

    with TraceStore(db) as store:
        (run,) = store.list_runs(limit=5)
        steps = store.steps(run.id)
        assert run.source == "otlp" and run.status == "unknown"
        assert run.task == "What is 2 + 3?" and run.final_answer == "2 + 3 = 5"
        assert run.team == "maths-desk"
        assert run.metadata_["otel"]["framework"] == "openai-agents"
        # what arrives over the wire maps as the same program mapped in-process
        assert [(s.agent, s.kind, s.content) for s in steps] == HANDOFF_STEPS
        assert steps[4].data["arguments"] == {"a": 2, "b": 3} and steps[5].content == "5"
        assert steps[6].content == "2 + 3 = 5" and steps[6].model == "fault-model"
        assert [m.role for m in store.step_inputs(run.id, 6)][:2] == ["system", "user"]
        assert run.input_tokens == 33 and run.output_tokens == 9
        asyncio.run(_diagnose_and_open(store, run.id))


async def _diagnose_and_open(
    store: TraceStore, run_id: str, *, blame: tuple[str, int] = ("Math agent", 6)
) -> None:
    """A received run is judged, attributed by a log-reading method and shown like a native one."""
    from mascope.diagnosis import JudgeConfig, aattribute, ajudge, apply_rules
    from mascope.models import ScriptedModel
    from mascope.taxonomy import MAST
    from mascope.tui import TraceApp
    from tests.tui.conftest import screen_text

    agent, step = blame
    apply_rules(store, run_id)  # the rule detectors run on it (whatever they find)
    verdict = json.dumps({
        "summary": "the math agent never checked its sum", "task_completed": True,
        "modes": {m: {"present": m == "FM-3.2", "evidence_steps": [step] if m == "FM-3.2" else [], "rationale": "no check"} for m in MAST.mode_ids},
    })  # fmt: skip
    judged = await ajudge(
        store, run_id, config=JudgeConfig(model="scripted"), model=ScriptedModel([verdict])
    )
    assert judged.present == ["FM-3.2"]
    said = json.dumps({"agent": agent, "step": step, "reason": "answered without checking"})
    result = await aattribute(
        store, run_id, method="all-at-once", model=ScriptedModel([said]), with_ground_truth=False
    )
    assert (result.agent, result.step) == (agent, step)
    app = TraceApp(store, run_id=run_id, poll_interval=0)
    async with app.run_test(size=(130, 40)) as pilot:
        await pilot.pause()
        text = screen_text(app)
        assert agent in text and "FM-3.2" in text


def test_langgraph_graph_with_openinference_langchain_arrives_as_a_run(
    served: tuple[OtlpServer, Path],
) -> None:
    server, db = served
    answer = _exported(langgraph_two_nodes, server, service="essay-team")
    assert answer == "Essay: Rome, 753 BC."

    with TraceStore(db) as store:
        (run,) = store.list_runs(limit=5)
        steps = store.steps(run.id)
        assert run.status == "unknown" and run.team == "essay-team"
        assert run.metadata_["otel"]["framework"] == "langgraph"
        assert [(s.agent, s.kind, s.content) for s in steps] == LANGGRAPH_STEPS
        assert run.task == "When was Rome founded?"
        assert run.final_answer == "Essay: Rome, 753 BC."
        said = [s for s in steps if s.kind == "message"]
        assert all(s.model == "fault-model" and s.input_tokens == 11 for s in said)
        assert [m.content for m in store.step_inputs(run.id, said[0].index)] == [
            "Known: Rome was founded in 753 BC.",
            "When was Rome founded?",
        ]


def test_autogen_team_with_openinference_arrives_as_a_run(
    served: tuple[OtlpServer, Path],
) -> None:
    server, db = served
    assert _exported(autogen_round_robin, server, service="adders") == "APPROVED: 5"

    with TraceStore(db) as store:
        (run,) = store.list_runs(limit=5)
        steps = store.steps(run.id)
        assert run.status == "unknown" and run.team == "adders"
        assert run.metadata_["otel"]["framework"] == "autogen"
        assert [(s.agent, s.kind, s.content) for s in steps] == AUTOGEN_STEPS
        assert (run.task, run.final_answer) == ("What is 2 + 3?", "APPROVED: 5")
        assert run.input_tokens == 33 and run.output_tokens == 9
        asyncio.run(_diagnose_and_open(store, run.id, blame=("solver", 3)))
