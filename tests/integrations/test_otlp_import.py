"""`mascope runs import otlp`: collector file-exporter JSON into runs, all or nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mascope.cli import app
from mascope.errors import ImportFormatError
from mascope.integrations import import_otlp
from mascope.traces import TraceStore

from .spans import agent_span, chat_span, otlp_json, recording


def _two_traces() -> list[str]:
    """Two traces (one per line, as the collector's file exporter writes them)."""
    lines = []
    for question in ("What is 2 + 3?", "Capital of France?"):
        with recording("shop-bot") as (tracer, finished):
            with agent_span(tracer, "helper"):
                with chat_span(
                    tracer,
                    "chat m",
                    model="m",
                    said=question,
                    answer="answer sk-proj-abcdefghijklmnopqrstuvwxyz0123456789",
                ) as chat:
                    chat.set_attribute("gen_ai.usage.input_tokens", 4)
                    chat.set_attribute("gen_ai.usage.output_tokens", 2)
            lines.append(json.dumps(otlp_json(finished())))
    return lines


def _write(tmp_path: Path, lines: list[str], name: str = "traces.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def test_import_groups_spans_into_runs_by_trace_and_is_idempotent(
    store: TraceStore, tmp_path: Path
) -> None:
    path = _write(tmp_path, _two_traces())
    report = import_otlp(store, [path])
    assert (report.runs, report.skipped) == (2, 0)
    runs = store.list_runs(limit=10)
    assert sorted(r.task for r in runs) == ["Capital of France?", "What is 2 + 3?"]
    for run in runs:
        assert run.source == "otlp" and run.team == "shop-bot"
        steps = store.steps(run.id)
        assert [(s.agent, s.kind, s.model) for s in steps] == [("helper", "message", "m")]
        assert "sk-proj-abcdef" not in steps[0].content  # secrets are masked by the store
        assert [m.role for m in store.step_inputs(run.id, 0)] == ["user"]
        assert (run.input_tokens, run.output_tokens) == (4, 2)
        assert run.metadata_["otel"]["trace_id"]
    again = import_otlp(store, [path])
    assert (again.runs, again.skipped) == (0, 2)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json at all\n", "line 1: not valid JSON"),
        (
            '{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "xyz", "spanId": "0102030405060708", "name": "a"}]}]}]}\n',
            "traceId: expected 32 hex digits",
        ),
        (
            '{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "0102030405060708090a0b0c0d0e0f10", "name": "a"}]}]}]}\n',
            "spanId: missing",
        ),
        ('{"resourceSpans": "nope"}\n', "not OTLP JSON"),
        ("{}\n", "holds no spans"),
        ("[1, 2]\n", "expected a JSON object with resourceSpans"),
    ],
)
def test_bad_files_are_refused_in_one_line_and_nothing_is_written(
    store: TraceStore, tmp_path: Path, content: str, message: str
) -> None:
    good = _write(tmp_path, _two_traces(), "a.jsonl")
    bad = tmp_path / "b.jsonl"
    bad.write_text(content)
    with pytest.raises(ImportFormatError) as info:
        import_otlp(store, [good, bad])
    assert message in str(info.value) and str(bad) in str(info.value)
    assert "\n" not in str(info.value)
    assert store.count_runs() == 0


def test_cli_imports_otlp_and_refuses_bad_file_with_exit_2(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    path = _write(tmp_path, _two_traces())
    result = CliRunner().invoke(app, ["runs", "import", "otlp", str(path), "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert "imported 2 runs" in result.output
    bad = tmp_path / "bad.json"
    bad.write_text('{"resourceSpans": [')
    other = tmp_path / "other.db"
    result = CliRunner().invoke(app, ["runs", "import", "otlp", str(bad), "--db", str(other)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert not other.exists()


def test_mascope_own_otel_export_reads_back_as_the_same_steps(
    store: TraceStore, tmp_path: Path
) -> None:
    from mascope.integrations import export_otel

    rid = store.start_run(team="calc", task="What is 2 + 3?")
    store.append_step(rid, agent="solver", content="I will add them.")
    store.append_step(
        rid,
        agent="solver",
        kind="tool_call",
        content="add(2, 3)",
        data={"tool": "add", "arguments": {"a": 2, "b": 3}},
    )
    store.append_step(rid, agent="solver", kind="tool_result", content="5", data={"tool": "add"})
    store.append_step(rid, agent="checker", kind="verdict", content="PASS")
    store.finish_run(
        rid, status="succeeded", final_answer="5", termination_reason="verifier passed"
    )
    out = tmp_path / "spans.json"
    export_otel(store, [rid], out)
    with TraceStore(tmp_path / "other.db") as other:
        assert import_otlp(other, [out]).runs == 1
        (run,) = other.list_runs(limit=5)
        assert (run.team, run.task, run.status, run.final_answer) == (
            "calc",
            "What is 2 + 3?",
            "succeeded",
            "5",
        )
        assert [(s.agent, s.kind, s.content) for s in other.steps(run.id)] == [
            ("solver", "message", "I will add them."),
            ("solver", "tool_call", 'add({"a": 2, "b": 3})'),
            ("solver", "tool_result", "5"),
            ("checker", "verdict", "PASS"),
        ]


def test_a_trace_split_across_two_files_is_one_run(store: TraceStore, tmp_path: Path) -> None:
    with recording("split") as (tracer, finished):
        with agent_span(tracer, "a"):
            for text in ("first", "second"):
                with chat_span(tracer, answer=text):
                    pass
        spans = list(finished())
    one = _write(tmp_path, [json.dumps(otlp_json(spans[:1]))], "1.jsonl")  # a rotated file
    two = _write(tmp_path, [json.dumps(otlp_json(spans[1:]))], "2.jsonl")
    report = import_otlp(store, [one, two])
    assert report.runs == 1
    (run,) = store.list_runs(limit=5)
    assert [(s.agent, s.content) for s in store.steps(run.id)] == [("a", "first"), ("a", "second")]
