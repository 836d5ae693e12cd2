"""`mascope runs export --format otel`: GenAI spans built with the SDK, read back by the receiver.

Runs of real teams (scripted models) are exported to a file and, separately, sent
with `--endpoint` to a real `mascope serve`; the store must give back the same runs
and steps. The exported spans are read with the real OpenTelemetry SDK and their
attribute names checked against `opentelemetry.semconv`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.semconv.attributes import error_attributes
from opentelemetry.trace import SpanKind, StatusCode
from typer.testing import CliRunner

from mascope import Agent, Team
from mascope.agents import Rubric, TurnContext
from mascope.cli import app
from mascope.integrations import OtlpServer, import_otlp, run_spans
from mascope.integrations import _otel_map as names
from mascope.models import ScriptedModel, ScriptedReply, ToolCall
from mascope.traces import Step, TraceStore

SECRET = "tok-3b1f9c0e7d2a4f6b8c1d"
"""A value the exporting process holds as a secret (set after the runs were stored)."""


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def lookup(city: str) -> str:
    """Look up a city (fails for Atlantis)."""
    if city == "Atlantis":
        raise LookupError("no such city: Atlantis")
    return f"{city}: found (key {SECRET})"


def delete_everything(path: str) -> str:
    """A tool nobody here may use."""
    raise AssertionError("must never run")


def _call(call_id: str, name: str, **arguments: object) -> ScriptedReply:
    return ScriptedReply(
        content="let me check" if name == "lookup" else None,
        tool_calls=[ToolCall(id=call_id, name=name, arguments=dict(arguments))],
        finish_reason="tool_calls",
    )


def _tools_run(db: Path) -> str:
    """A researcher with tools (a call, a refused call, a failing tool), then a writer."""
    model = ScriptedModel(
        [
            _call("c1", "add", a=2, b=3),
            _call("c2", "delete_everything", path="/"),
            _call("c3", "lookup", city="Atlantis"),
            _call("c4", "lookup", city="Paris"),
            "Paris, and 2 + 3 = 5.",
        ]
    )
    researcher = Agent(
        "researcher", role="researcher", tools=[add, lookup], model=model, instructions="Be exact."
    )
    writer = Agent("writer", fn=lambda ctx: f"Report: {ctx.last_output}")
    janitor = Agent("janitor", tools=[delete_everything], fn=lambda ctx: "unused")
    team = Team("travel", [researcher, writer, janitor], stages=["researcher", "writer"], store=db)
    return team.run(f"Where is the capital of France? ({SECRET})").run_id


def _verified_run(db: Path) -> str:
    """A solver whose first answer the (model-graded) verifier rejects and whose second
    it passes."""
    solver = Agent("solver", model=ScriptedModel(["ANSWER: 6", "ANSWER: 5"]))
    grader = ScriptedModel(
        [
            '{"passed": false, "score": 0.2, "feedback": "2 + 3 is not 6; recount"}',
            '{"passed": true, "score": 0.9, "feedback": "correct"}',
        ],
        name="grader",
    )
    team = Team(
        "math",
        [solver],
        stages=[{"agent": "solver", "verifier": "check", "max_rounds": 3}],
        verifiers={"check": Rubric("the sum must be right", model=grader, name="check")},
        store=db,
    )
    return team.run("What is 2 + 3?").run_id


def _crash(ctx: TurnContext) -> str:
    raise RuntimeError("disk full while planning")


def _failed_run(db: Path) -> str:
    """A planner answers, then an agent crashes: the run ends in error."""
    team = Team(
        "crashy",
        [Agent("planner", fn=lambda ctx: "plan: do it"), Agent("doer", fn=_crash)],
        stages=["planner", "doer"],
        store=db,
    )
    return team.run("do the thing").run_id


@pytest.fixture
def stored(tmp_path: Path) -> tuple[Path, list[str]]:
    """A store holding the three runs."""
    db = tmp_path / "teams.db"
    ids = [_tools_run(db), _verified_run(db), _failed_run(db)]
    return db, ids


def _steps(store: TraceStore, run_id: str) -> list[tuple[Any, ...]]:
    """What a step is to a user: who, what kind, what it said, its tool call, verdict, error."""
    out = []
    for s in store.steps(run_id):
        data = s.data or {}
        tool = (data.get("tool"), data.get("call_id"), data.get("arguments"))
        out.append(
            (
                s.agent,
                s.kind,
                s.content,
                tool if s.kind in ("tool_call", "tool_result", "refusal") else None,
                data.get("passed") if s.kind == "verdict" else None,
                s.error,
                s.model,
                s.input_tokens,
                s.output_tokens,
            )
        )
    return out


def _inputs(store: TraceStore, run_id: str, steps: list[Step]) -> list[list[tuple[Any, ...]]]:
    return [
        [
            (m.role, m.content or "", m.tool_calls, m.tool_call_id)
            for m in store.step_inputs(run_id, s.index)
        ]
        for s in steps
    ]


def _run_fields(store: TraceStore, run_id: str) -> tuple[Any, ...]:
    r = store.get_run(run_id)
    return (
        r.team,
        r.task,
        r.status,
        r.final_answer,
        r.termination_reason,
        r.input_tokens,
        r.output_tokens,
        r.step_count,
    )


def _assert_same_runs(db: Path, ids: list[str], other: TraceStore) -> None:
    with TraceStore(db) as store:
        back = {r.task: r.id for r in other.list_runs(limit=50)}
        assert len(back) == len(ids)
        for rid in ids:
            mine = store.get_run(rid)
            theirs = back[store.redact.text(mine.task)]
            assert _run_fields(other, theirs) == _run_fields(store, rid)
            assert _steps(other, theirs) == _steps(store, rid)
            assert _inputs(other, theirs, other.steps(theirs)) == _inputs(
                store, rid, store.steps(rid)
            )


def test_export_to_a_file_reads_back_as_the_same_runs_and_steps(
    stored: tuple[Path, list[str]], tmp_path: Path
) -> None:
    db, ids = stored
    with TraceStore(db) as store:
        kinds = [s.kind for rid in ids for s in store.steps(rid)]
        # the runs hold what the export has to carry
        for kind in ("model_call", "tool_call", "tool_result", "refusal", "verdict", "error"):
            assert kind in kinds
    out = tmp_path / "spans.otel.jsonl"
    result = CliRunner().invoke(
        app, ["runs", "export", *ids, "--format", "otel", "--out", str(out), "--db", str(db)]
    )
    assert result.exit_code == 0, result.output
    assert len(out.read_text().splitlines()) == 3  # one OTLP request per run
    with TraceStore(tmp_path / "back.db") as other:
        assert import_otlp(other, [out]).runs == 3
        _assert_same_runs(db, ids, other)
        assert import_otlp(other, [out]).skipped == 3  # the same trace ids again


def test_export_to_an_endpoint_reaches_serve_as_the_same_runs_and_steps(
    stored: tuple[Path, list[str]], served: tuple[OtlpServer, Path]
) -> None:
    db, ids = stored
    server, received = served
    result = CliRunner().invoke(
        app, ["runs", "export", "--all", "--endpoint", server.url, "--db", str(db)]
    )
    assert result.exit_code == 0, result.output
    assert "sent 3 runs" in result.stderr and f"{server.url}/v1/traces" in result.stderr
    with TraceStore(received) as other:
        _assert_same_runs(db, ids, other)


def test_a_failed_send_is_one_line_naming_the_endpoint_and_writes_nothing(
    stored: tuple[Path, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    db, ids = stored
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.chdir(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    url = f"http://127.0.0.1:{port}"
    result = CliRunner().invoke(
        app,
        ["runs", "export", ids[0], "--endpoint", url, "--timeout", "0.5", "--db", str(db)],
    )
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert f"{url}/v1/traces" in line and "connection refused" in line
    assert "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_a_receiver_that_refuses_is_reported_with_its_status(
    stored: tuple[Path, list[str]], served: tuple[OtlpServer, Path]
) -> None:
    db, ids = stored
    server, _ = served
    server.token = "right-token"  # the receiver now wants a bearer token we do not send
    result = CliRunner().invoke(
        app, ["runs", "export", ids[1], "--endpoint", server.url, "--db", str(db)]
    )
    assert result.exit_code == 2
    assert "HTTP 401" in result.stderr and server.url in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "jsonl", "--endpoint", "http://127.0.0.1:4318"], "use --format otel"),
        (["--endpoint", "ftp://x"], "is not an http(s) URL"),
        (["--endpoint", "http://[::1"], "is not an http(s) URL"),
        (["--endpoint", "http://127.0.0.1:99999"], "is not an http(s) URL"),
        (["--endpoint", "http://exa mple.com"], "is not an http(s) URL"),
        (["--endpoint", "127.0.0.1:4318"], "is not an http(s) URL"),
        (["--endpoint", "http://127.0.0.1:4318", "--out", "x.json"], "not both"),
        (["--format", "otle"], "did you mean 'otel'"),
    ],
)
def test_bad_export_flags_are_one_line_and_exit_2(
    stored: tuple[Path, list[str]], tmp_path: Path, args: list[str], message: str
) -> None:
    db, ids = stored
    result = CliRunner().invoke(app, ["runs", "export", ids[0], *args, "--db", str(db)])
    assert result.exit_code == 2 and message in result.stderr, result.output
    assert not (tmp_path / "x.json").exists()


def test_otel_export_refuses_to_replace_the_store(stored: tuple[Path, list[str]]) -> None:
    db, ids = stored
    before = db.read_bytes()
    result = CliRunner().invoke(
        app, ["runs", "export", ids[0], "--format", "otel", "--out", str(db), "--db", str(db)]
    )
    assert result.exit_code == 2 and "trace store's own file" in result.stderr
    assert db.read_bytes() == before


# -- the spans themselves, read with the SDK ----------------------------------------------


def _by_id(spans: list[ReadableSpan]) -> dict[int, ReadableSpan]:
    return {s.context.span_id: s for s in spans}


def _parent(span: ReadableSpan, spans: list[ReadableSpan]) -> ReadableSpan | None:
    return _by_id(spans).get(span.parent.span_id) if span.parent else None


def _op(span: ReadableSpan) -> Any:
    return (span.attributes or {}).get(gen_ai.GEN_AI_OPERATION_NAME)


def test_spans_are_a_nested_genai_tree(stored: tuple[Path, list[str]]) -> None:
    db, ids = stored
    with TraceStore(db) as store:
        spans = run_spans(store, ids[0])
    root = spans[-1]
    assert root.parent is None and _op(root) == "invoke_workflow"
    assert root.name == "invoke_workflow travel"
    assert {s.context.trace_id for s in spans} == {root.context.trace_id}
    agents = [s for s in spans if _parent(s, spans) is root]
    assert [s.name for s in sorted(agents, key=lambda s: s.start_time or 0)] == [
        "invoke_agent researcher",
        "invoke_agent writer",
    ]
    assert all(_op(s) == "invoke_agent" for s in agents)
    researcher = agents[0] if agents[0].name.endswith("researcher") else agents[1]
    chats = [s for s in spans if _op(s) == "chat"]
    tools = [s for s in spans if _op(s) == "execute_tool"]
    assert len(chats) == 5 and len(tools) == 4  # one span per tool call, with its result
    for span in chats + tools:
        parent = _parent(span, spans)
        assert parent is researcher  # nested under their agent's turn, not the root
    assert all(s.kind is SpanKind.CLIENT for s in chats)
    calls = {(s.attributes or {})[gen_ai.GEN_AI_TOOL_CALL_ID]: s.attributes or {} for s in tools}
    assert calls["c1"][gen_ai.GEN_AI_TOOL_NAME] == "add"
    assert json.loads(str(calls["c1"][gen_ai.GEN_AI_TOOL_CALL_ARGUMENTS])) == {"a": 2, "b": 3}
    assert calls["c1"][gen_ai.GEN_AI_TOOL_CALL_RESULT] == "5"
    assert calls["c2"][names.STEP_KIND] == "refusal"
    # a span starts no later than it ends, and inside its parent
    for span in spans:
        parent = _parent(span, spans)
        assert span.start_time is not None and span.end_time is not None
        assert span.start_time <= span.end_time
        if parent is not None:
            assert parent.start_time is not None and parent.end_time is not None
            assert parent.start_time <= span.start_time and span.end_time <= parent.end_time


def test_message_content_is_in_the_genai_message_attributes(
    stored: tuple[Path, list[str]],
) -> None:
    db, ids = stored
    with TraceStore(db) as store:
        spans = run_spans(store, ids[0])
    chats = [s for s in spans if _op(s) == "chat"]
    first = chats[0].attributes or {}
    system = json.loads(str(first[gen_ai.GEN_AI_SYSTEM_INSTRUCTIONS]))
    assert system[0]["type"] == "text" and "Be exact." in system[0]["content"]
    sent = json.loads(str(first[gen_ai.GEN_AI_INPUT_MESSAGES]))
    assert sent[0]["role"] == "user" and sent[0]["parts"][0]["type"] == "text"
    assert "capital of France" in sent[0]["parts"][0]["content"]
    said = json.loads(str(first[gen_ai.GEN_AI_OUTPUT_MESSAGES]))
    assert said[0]["role"] == "assistant"
    assert said[0]["parts"] == [
        {"type": "tool_call", "id": "c1", "name": "add", "arguments": {"a": 2, "b": 3}}
    ]
    # the last call was sent the tool's answer back, as a tool_call_response part
    last = chats[-1].attributes or {}
    responses = [
        p
        for m in json.loads(str(last[gen_ai.GEN_AI_INPUT_MESSAGES]))
        for p in m["parts"]
        if p["type"] == "tool_call_response"
    ]
    assert [r["id"] for r in responses] == ["c1", "c2", "c3", "c4"]
    final = json.loads(str(last[gen_ai.GEN_AI_OUTPUT_MESSAGES]))
    assert final[0]["parts"] == [{"type": "text", "content": "Paris, and 2 + 3 = 5."}]
    assert last[gen_ai.GEN_AI_REQUEST_MODEL] == "scripted"
    assert last[gen_ai.GEN_AI_PROVIDER_NAME] == "scripted"
    assert last[gen_ai.GEN_AI_AGENT_NAME] == "researcher"
    assert isinstance(last[gen_ai.GEN_AI_USAGE_INPUT_TOKENS], int)
    # no custom attribute carries output text any more
    assert not any(
        k.startswith("mascope.") and "content" in k for s in spans for k in s.attributes or {}
    )
    root = spans[-1].attributes or {}
    assert json.loads(str(root[gen_ai.GEN_AI_OUTPUT_MESSAGES]))[0]["parts"][0]["content"] == (
        "Report: Paris, and 2 + 3 = 5."
    )


def test_verdicts_are_evaluation_events_on_the_judged_span(
    stored: tuple[Path, list[str]],
) -> None:
    db, ids = stored
    with TraceStore(db) as store:
        spans = run_spans(store, ids[1])
    root = spans[-1]
    assert not root.events  # not on the run's span
    assert not any("check" in s.name for s in spans)  # the verifier is no agent
    judged = [s for s in spans if s.events]
    assert [(s.attributes or {})[names.STEP_KIND] for s in judged] == ["message", "message"]
    outcomes = []
    for span in judged:
        (event,) = span.events
        assert event.name == "gen_ai.evaluation.result"
        a = event.attributes or {}
        assert a[gen_ai.GEN_AI_EVALUATION_NAME] == "check"
        answer = json.loads(str((span.attributes or {})[gen_ai.GEN_AI_OUTPUT_MESSAGES]))
        outcomes.append(
            (
                answer[0]["parts"][0]["content"],
                a[gen_ai.GEN_AI_EVALUATION_SCORE_LABEL],
                a[gen_ai.GEN_AI_EVALUATION_SCORE_VALUE],
            )
        )
        assert str(a[gen_ai.GEN_AI_EVALUATION_EXPLANATION]).startswith(
            "FAILED" if a[gen_ai.GEN_AI_EVALUATION_SCORE_LABEL] == "fail" else "PASSED"
        )
    assert outcomes == [("ANSWER: 6", "fail", 0.2), ("ANSWER: 5", "pass", 0.9)]
    # the grader's own model call is on its verdict
    assert all(
        (s.events[0].attributes or {})[gen_ai.GEN_AI_REQUEST_MODEL] == "grader" for s in judged
    )


def test_failures_carry_error_type_and_an_error_status(stored: tuple[Path, list[str]]) -> None:
    db, ids = stored
    with TraceStore(db) as store:
        crashed = run_spans(store, ids[2])
        tools = run_spans(store, ids[0])
    root = crashed[-1]
    assert root.status.status_code is StatusCode.ERROR
    assert (root.attributes or {})[error_attributes.ERROR_TYPE] == "RuntimeError"
    failed = [s for s in crashed if s.status.status_code is StatusCode.ERROR and s is not root]
    assert [(s.attributes or {})[error_attributes.ERROR_TYPE] for s in failed] == ["RuntimeError"]
    assert "disk full" in (failed[0].status.description or "")
    tool_failures = [s for s in tools if s.status.status_code is StatusCode.ERROR]
    assert [(s.attributes or {})[gen_ai.GEN_AI_TOOL_CALL_ID] for s in tool_failures] == ["c3"]
    assert (tool_failures[0].attributes or {})[error_attributes.ERROR_TYPE] == "LookupError"
    ok = [s for s in tools if s not in tool_failures]
    assert all(s.status.status_code is not StatusCode.ERROR for s in ok)
    assert all(error_attributes.ERROR_TYPE not in (s.attributes or {}) for s in ok)


def test_attribute_names_are_the_conventions_own() -> None:
    """Every gen_ai name mascope writes and reads is the one `opentelemetry.semconv` defines."""
    defined = {v for k, v in vars(gen_ai).items() if k.startswith("GEN_AI_")}
    ours = {
        getattr(names, n)
        for n in names.__all__
        if isinstance(getattr(names, n), str) and getattr(names, n).startswith("gen_ai.")
    }
    assert ours - {names.EVALUATION_EVENT} <= defined, ours - defined
    assert names.ERROR_TYPE == error_attributes.ERROR_TYPE
    ops = {v.value for v in gen_ai.GenAiOperationNameValues}
    assert {
        names.OP_CHAT,
        names.OP_INVOKE_AGENT,
        names.OP_EXECUTE_TOOL,
        names.OP_INVOKE_WORKFLOW,
    } <= ops


def test_secrets_are_redacted_on_the_way_out(
    stored: tuple[Path, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A secret the exporting process knows never leaves, though the store holds it."""
    db, ids = stored
    with TraceStore(db) as store:  # stored before the secret was known
        assert any(SECRET in s.content for s in store.steps(ids[0]))
    monkeypatch.setenv("TRAVEL_API_TOKEN", SECRET)
    out = tmp_path / "spans.jsonl"
    result = CliRunner().invoke(
        app, ["runs", "export", *ids, "--format", "otel", "--out", str(out), "--db", str(db)]
    )
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert SECRET not in text and "[REDACTED]" in text
    with TraceStore(db) as store:
        spans = run_spans(store, ids[0])
    assert SECRET not in json.dumps([json.loads(s.to_json()) for s in spans])


def test_labels_and_attributions_sit_on_the_step_they_name(
    store: TraceStore, tmp_path: Path
) -> None:
    """Diagnosis labels are evaluations too: on the named step's span, else the run's;
    read back, they are not mistaken for verifier steps."""
    rid = store.start_run(team="coders", task="write fizzbuzz")
    store.append_step(rid, agent="coder", content="def fizzbuzz(): ...")
    store.append_step(rid, agent="reviewer", content="looks fine")
    store.add_annotations(
        rid,
        [
            {"mode": "FM-3.3", "present": True, "annotator": "llm:judge", "confidence": 0.8,
             "step_index": 1, "evidence_steps": [1], "rationale": "approved failing code"},
            {"mode": "FM-1.5", "present": False, "annotator": "rule:step-limit"},
        ],
    )  # fmt: skip
    store.add_attribution(
        rid, {"method": "all_at_once", "agent": "reviewer", "step_index": 1, "reason": "r"}
    )
    store.finish_run(rid, status="failed", termination_reason="end")
    spans = run_spans(store, rid)
    root = spans[-1]
    reviewer = next(s for s in spans if s.name == "invoke_agent reviewer")
    assert [e.name for e in reviewer.events] == ["gen_ai.evaluation.result", "mascope.attribution"]
    label = reviewer.events[0].attributes or {}
    assert label[gen_ai.GEN_AI_EVALUATION_NAME] == "FM-3.3"
    assert label[gen_ai.GEN_AI_EVALUATION_SCORE_LABEL] == "present"
    assert label[names.ANNOTATOR] == "llm:judge"
    ((run_label),) = [e.attributes or {} for e in root.events]
    assert run_label[gen_ai.GEN_AI_EVALUATION_NAME] == "FM-1.5"
    assert (root.attributes or {})[error_attributes.ERROR_TYPE] == "end"
    out = tmp_path / "spans.jsonl"
    from mascope.integrations import export_otel

    export_otel(store, [rid], out)
    with TraceStore(tmp_path / "back.db") as other:
        import_otlp(other, [out])
        (run,) = other.list_runs(limit=5)
        assert [(s.agent, s.kind, s.content) for s in other.steps(run.id)] == [
            ("coder", "message", "def fizzbuzz(): ..."),
            ("reviewer", "message", "looks fine"),
        ]


def test_steps_stored_at_one_moment_keep_their_order(tmp_path: Path) -> None:
    """Imported runs often stamp every step with one time; the order must survive."""
    from datetime import UTC, datetime, timedelta

    from mascope.integrations import export_otel
    from mascope.traces import RunBase, RunBundle, StepBase, new_id

    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    said = [("alice", "first"), ("bob", "second"), ("alice", "third"), ("carol", "fourth")]
    bundle = RunBundle(
        run=RunBase(
            id=new_id(), team="t", task="talk", status="failed", started_at=moment - timedelta(1)
        ),
        steps=[
            # later steps took longer: by their start times they would come first
            StepBase(index=i, agent=agent, content=text, created_at=moment, latency_s=i + 0.5)
            for i, (agent, text) in enumerate(said)
        ],
    )
    out = tmp_path / "spans.jsonl"
    with TraceStore(tmp_path / "a.db") as store:
        store.write_bundles([bundle])
        export_otel(store, [bundle.run.id], out)
    with TraceStore(tmp_path / "b.db") as other:
        import_otlp(other, [out])
        (run,) = other.list_runs(limit=5)
        assert [(s.agent, s.content) for s in other.steps(run.id)] == said


def test_a_disabled_sdk_is_said_not_exported_as_nothing(
    stored: tuple[Path, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db, ids = stored
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    out = tmp_path / "spans.jsonl"
    result = CliRunner().invoke(
        app, ["runs", "export", ids[0], "--format", "otel", "--out", str(out), "--db", str(db)]
    )
    assert result.exit_code == 2 and "OTEL_SDK_DISABLED" in result.stderr
    assert not out.exists()


def test_the_same_runs_export_the_same_file(stored: tuple[Path, list[str]], tmp_path: Path) -> None:
    """Exported by two processes, which the SDK would give two instance ids."""
    import os
    import subprocess
    import sys

    from mascope.integrations import export_otel

    db, ids = stored
    with TraceStore(db) as store:
        export_otel(store, ids, tmp_path / "a.jsonl")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    cmd = [sys.executable, "-m", "mascope.cli", "runs", "export", *ids, "--format", "otel",
           "--out", str(tmp_path / "b.jsonl"), "--db", str(db)]  # fmt: skip
    subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=120)
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()


def test_a_run_without_steps_comes_back_without_steps(store: TraceStore, tmp_path: Path) -> None:
    from mascope.integrations import export_otel

    ended = store.start_run(team="t", task="never started")
    store.finish_run(ended, status="error", termination_reason="error")
    still = store.start_run(team="t", task="still going")
    out = tmp_path / "spans.jsonl"
    export_otel(store, [ended, still], out)
    with TraceStore(tmp_path / "back.db") as other:
        import_otlp(other, [out])
        back = {r.task: r for r in other.list_runs(limit=5)}
        assert other.steps(back["never started"].id) == []
        assert other.steps(back["still going"].id) == []
        assert (back["never started"].status, back["never started"].termination_reason) == (
            "error",
            "error",
        )
        assert (back["still going"].status, back["still going"].termination_reason) == (
            "running",
            None,
        )


def test_secret_named_values_are_masked_in_the_json_attributes(store: TraceStore) -> None:
    """A secret-named argument that is no string is not masked in the store (the field-name
    rule masks strings); in the JSON of `gen_ai.tool.call.arguments` the text rules see it."""
    rid = store.start_run(team="t", task="connect")
    call = {"tool": "connect", "call_id": "c1", "arguments": {"db_password": 12345678}}
    store.append_step(rid, agent="a", kind="tool_call", content="connect(...)", data=call)
    store.finish_run(rid, status="succeeded")
    (tool,) = [s for s in run_spans(store, rid) if _op(s) == "execute_tool"]
    arguments = str((tool.attributes or {})[gen_ai.GEN_AI_TOOL_CALL_ARGUMENTS])
    assert "12345678" not in arguments and "db_password" in arguments
