"""OpenTelemetry GenAI export."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mascope.errors import ConfigError, NotFoundError
from mascope.traces import TraceStore, export_runs


def attrs(span: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for a in span["attributes"]:
        ((kind, value),) = a["value"].items()
        out[a["key"]] = int(value) if kind == "intValue" else value
    return out


def test_otel_spans_use_genai_names(store: TraceStore, tmp_path: Path) -> None:
    rid = store.start_run(team="coders", task="write fizzbuzz")
    store.append_step(
        rid,
        agent="coder",
        kind="model_call",
        model="openai:gpt-4o-mini",
        input_tokens=12,
        output_tokens=30,
        latency_s=0.5,
        data={"finish_reason": "stop"},
    )
    store.append_step(
        rid,
        agent="coder",
        kind="tool_call",
        content="run_tests()",
        data={"tool": "run_tests", "call_id": "c1", "arguments": {"path": "."}},
    )
    store.append_step(
        rid,
        agent="coder",
        kind="tool_result",
        content="2 failed",
        data={"tool": "run_tests", "call_id": "c1"},
    )
    store.append_step(rid, agent="reviewer", kind="message", content="looks fine")
    store.add_annotations(
        rid,
        [
            {
                "mode": "FM-3.3",
                "present": True,
                "annotator": "llm:judge",
                "confidence": 0.8,
                "evidence_steps": [3],
                "rationale": "approved failing tests",
            }
        ],
    )
    store.finish_run(rid, status="failed")
    out = tmp_path / "spans.json"
    export_runs(store, [rid], "otel", out)
    doc = json.loads(out.read_text())
    (resource,) = doc["resourceSpans"]
    spans = resource["scopeSpans"][0]["spans"]
    assert [s["name"] for s in spans] == [
        "chat openai:gpt-4o-mini", "execute_tool run_tests", "execute_tool run_tests", "invoke_agent reviewer", "invoke_workflow coders",
    ]  # fmt: skip
    root = spans[-1]
    assert all(s["traceId"] == root["traceId"] and len(s["traceId"]) == 32 for s in spans)
    assert all(s["parentSpanId"] == root["spanId"] for s in spans[:-1])
    chat = attrs(spans[0])
    assert chat["gen_ai.operation.name"] == "chat"
    assert chat["gen_ai.usage.input_tokens"] == 12 and chat["gen_ai.usage.output_tokens"] == 30
    # a step's span covers its latency, but never starts before its run
    assert int(spans[0]["startTimeUnixNano"]) >= int(root["startTimeUnixNano"])
    assert 0 < int(spans[0]["endTimeUnixNano"]) - int(spans[0]["startTimeUnixNano"]) <= 5e8
    tool = attrs(spans[1])
    assert tool["gen_ai.tool.name"] == "run_tests" and tool["gen_ai.tool.call.id"] == "c1"
    (event,) = root["events"]
    assert event["name"] == "gen_ai.evaluation.result"
    ev = {a["key"]: next(iter(a["value"].values())) for a in event["attributes"]}
    assert (
        ev["gen_ai.evaluation.name"] == "FM-3.3"
        and ev["gen_ai.evaluation.score.label"] == "present"
    )
    assert root["status"]["code"] == 2


def test_export_checks_ids_before_writing(store: TraceStore, tmp_path: Path) -> None:
    rid = store.start_run(task="t")
    out = tmp_path / "x.jsonl"
    with pytest.raises(NotFoundError):
        export_runs(store, [rid, "MISSING"], "jsonl", out)
    assert not out.exists() and list(tmp_path.glob(".x.jsonl*")) == []
    with pytest.raises(ConfigError, match="unknown export format"):
        export_runs(store, [rid], "csv", out)


def test_export_never_replaces_the_store_a_database_or_a_non_file(tmp_path: Path) -> None:
    import os
    import sqlite3

    db = tmp_path / "s.db"
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.commit()
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    (tmp_path / "link.db").symlink_to(db)
    with TraceStore(db) as store:
        rid = store.start_run(team="t", task="x")
        store.append_step(rid, agent="a", content="hi")
        checkpoints = tmp_path / "s.checkpoints.db"
        sqlite3.connect(checkpoints).execute("CREATE TABLE c (x)").connection.commit()
        for out in (db, tmp_path / "s.db-wal", tmp_path / "link.db", checkpoints, other, fifo):
            before = out.stat().st_mode, (out.read_bytes() if out.is_file() else b"")
            with pytest.raises(ConfigError) as info:
                export_runs(store, [rid], "jsonl", out)
            assert str(out) in str(info.value) and "\n" not in str(info.value)
            assert (out.stat().st_mode, out.read_bytes() if out.is_file() else b"") == before
        assert [r.id for r in store.list_runs()] == [rid]
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
