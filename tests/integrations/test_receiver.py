"""`mascope serve`: OTLP/HTTP over real sockets, with the SDK's own OTLP exporter as the client."""

from __future__ import annotations

import gzip
import http.client
import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from typer.testing import CliRunner

from mascope.cli import app
from mascope.integrations import OtlpServer, Receiver
from mascope.traces import TraceStore

from .spans import agent_span, chat_span, otlp_json, otlp_protobuf, recording


def _sdk_tracer(
    url: str, compression: Compression = Compression.NoCompression
) -> tuple[Any, TracerProvider]:
    provider = TracerProvider(resource=Resource.create({"service.name": "travel-team"}))
    exporter = OTLPSpanExporter(endpoint=f"{url}/v1/traces", compression=compression, timeout=10)
    provider.add_span_processor(SimpleSpanProcessor(exporter))  # exports as each span ends
    return provider.get_tracer("my.agents"), provider


@pytest.mark.parametrize("compression", [Compression.NoCompression, Compression.Gzip])
def test_sdk_exporter_to_serve_records_live_then_finishes_at_root_end(
    served: tuple[OtlpServer, Path], compression: Compression
) -> None:
    server, db = served
    tracer, provider = _sdk_tracer(server.url, compression)
    reader = TraceStore(db)  # another reader of the store, as `mascope tui` would be
    try:
        with agent_span(tracer, "planner"):
            with chat_span(
                tracer,
                "chat gpt-4o",
                model="gpt-4o",
                said="Plan a trip to Rome",
                answer="Day 1: Colosseum",
            ):
                pass
            # The chat span has been received: the run is visible while the agent still runs.
            (live,) = reader.list_runs(limit=5)
            assert live.status == "running" and live.source == "otlp"
            assert [s.content for s in reader.steps(live.id)] == ["Day 1: Colosseum"]
            with tracer.start_as_current_span("execute_tool book_hotel") as tool:
                tool.set_attribute("gen_ai.operation.name", "execute_tool")
                tool.set_attribute("gen_ai.tool.name", "book_hotel")
                tool.set_attribute("gen_ai.tool.call.arguments", '{"city": "Rome"}')
                tool.set_attribute("gen_ai.tool.call.result", "booked")
        run = reader.get_run(live.id)
        assert run.status == "unknown" and run.termination_reason == "root span ended"
        assert run.task == "Plan a trip to Rome" and run.team == "travel-team"
        steps = reader.steps(run.id)
        assert [(s.agent, s.kind) for s in steps] == [
            ("planner", "message"),
            ("planner", "tool_call"),
            ("planner", "tool_result"),
        ]
        assert steps[0].model == "gpt-4o"
        assert run.metadata_["otel"]["complete"] is True
    finally:
        provider.shutdown()
        reader.close()


def _post(server: OtlpServer, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    host, port = server.server_address[:2]
    conn = http.client.HTTPConnection(str(host), int(port), timeout=10)
    try:
        conn.request("POST", "/v1/traces", body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def _spans() -> Any:
    with recording() as (tracer, finished):
        with tracer.start_as_current_span("root") as root:
            root.set_attribute("input.value", "hello")
            root.set_attribute("openinference.span.kind", "CHAIN")
            with tracer.start_as_current_span("llm") as llm:
                llm.set_attribute("openinference.span.kind", "LLM")
                llm.set_attribute("llm.output_messages.0.message.content", "hi there")
        return finished()


@pytest.mark.parametrize("gzipped", [False, True])
def test_json_bodies_are_recorded(served: tuple[OtlpServer, Path], gzipped: bool) -> None:
    server, db = served
    body = json.dumps(otlp_json(_spans())).encode()
    headers = {"Content-Type": "application/json"}
    if gzipped:
        body, headers["Content-Encoding"] = gzip.compress(body), "gzip"
    status, text = _post(server, body, headers)
    assert (status, text) == (200, "{}")
    with TraceStore(db) as reader:
        (run,) = reader.list_runs(limit=5)
        assert run.task == "hello" and run.final_answer == "hi there"
        assert [s.content for s in reader.steps(run.id)] == ["hi there"]


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (b"\xff\xff\xff not protobuf", "application/x-protobuf", "not an OTLP protobuf"),
        (b'{"resourceSpans": [', "application/json", "not valid JSON"),
        (
            b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz", "spanId": "0102030405060708"}]}]}]}',
            "application/json",
            "traceId: expected 32 hex digits",
        ),
        (b"hello", "text/plain", "unsupported Content-Type"),
    ],
)
def test_malformed_bodies_get_400_with_a_reason_and_nothing_is_stored(
    served: tuple[OtlpServer, Path], body: bytes, content_type: str, reason: str
) -> None:
    server, db = served
    status, text = _post(server, body, {"Content-Type": content_type})
    assert status == 400
    assert reason in json.loads(text)["message"]
    with TraceStore(db) as reader:
        assert reader.count_runs() == 0


def test_oversized_bodies_get_413_before_and_after_gzip(served: tuple[OtlpServer, Path]) -> None:
    server, db = served
    status, text = _post(
        server, b"x" * (server.max_body + 1), {"Content-Type": "application/x-protobuf"}
    )
    assert status == 413 and "limit" in text
    bomb = gzip.compress(b"\0" * (server.max_body * 4))  # small on the wire, large inflated
    assert len(bomb) < server.max_body
    status, _ = _post(
        server, bomb, {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"}
    )
    assert status == 413
    with TraceStore(db) as reader:
        assert reader.count_runs() == 0


def test_a_trace_that_stops_midway_is_closed_as_incomplete(tmp_path: Path) -> None:
    with recording() as (tracer, finished):
        with agent_span(tracer, "a"), chat_span(tracer, answer="partial"):
            pass
        child_only = [s for s in finished() if s.parent is not None]  # the root never arrives
    from mascope.integrations import parse_protobuf

    with TraceStore(tmp_path / "m.db") as store:
        receiver = Receiver(store, idle_timeout_s=30)
        receiver.ingest(parse_protobuf(otlp_protobuf(child_only)))
        assert receiver.close_idle(now=time.monotonic()) == []  # not quiet long enough yet
        (closed,) = receiver.close_idle(now=time.monotonic() + 60)
        run = store.get_run(closed)
        assert run.status == "interrupted"
        assert "idle timeout" in (run.termination_reason or "")
        assert run.metadata_["otel"]["complete"] is False
        assert [s.content for s in store.steps(closed)] == ["partial"]


def test_token_is_required_when_set(tmp_path: Path) -> None:
    with TraceStore(tmp_path / "m.db") as store:
        server = OtlpServer(Receiver(store), port=0, token="s3cret")
        thread = threading.Thread(target=server.serve, daemon=True)
        thread.start()
        try:
            body = otlp_protobuf(_spans())
            status, _ = _post(server, body, {"Content-Type": "application/x-protobuf"})
            assert status == 401
            status, _ = _post(
                server,
                body,
                {"Content-Type": "application/x-protobuf", "Authorization": "Bearer s3cret"},
            )
            assert status == 200
        finally:
            server.shutdown()
            thread.join(timeout=10)
            server.server_close()


def test_cli_port_in_use_and_remote_host_without_token_exit_2(tmp_path: Path) -> None:
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        port = busy.getsockname()[1]
        result = CliRunner().invoke(
            app, ["serve", "--port", str(port), "--db", str(tmp_path / "m.db")]
        )
        assert result.exit_code == 2
        assert "address already in use" in result.output and "Traceback" not in result.output
    finally:
        busy.close()
    result = CliRunner().invoke(
        app, ["serve", "--host", "0.0.0.0", "--port", "0", "--db", str(tmp_path / "m.db")]
    )
    assert result.exit_code == 2 and "--token" in result.output


def test_cli_port_in_use_leaves_no_store_behind(tmp_path: Path) -> None:
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        db = tmp_path / "new.db"
        result = CliRunner().invoke(
            app, ["serve", "--port", str(busy.getsockname()[1]), "--db", str(db)]
        )
        assert result.exit_code == 2
        assert not db.exists()
    finally:
        busy.close()


def test_a_late_span_joins_its_finished_run_which_stays_finished(tmp_path: Path) -> None:
    from mascope.integrations import parse_protobuf

    with recording() as (tracer, finished):
        with agent_span(tracer, "a"), chat_span(tracer, answer="late"):
            pass
        spans = finished()
    child = [s for s in spans if s.parent is not None]
    root = [s for s in spans if s.parent is None]
    with TraceStore(tmp_path / "m.db") as store:
        receiver = Receiver(store, idle_timeout_s=30)
        receiver.ingest(parse_protobuf(otlp_protobuf(root)))  # the root first: finished at once
        (run,) = store.list_runs(limit=5)
        assert run.status == "unknown" and store.count_steps(run.id) == 1
        receiver.ingest(parse_protobuf(otlp_protobuf(child)))
        assert receiver.close_idle(now=time.monotonic() + 60) == []
        again = store.get_run(run.id)
        assert again.status == "unknown"
        assert [(s.agent, s.content) for s in store.steps(run.id)] == [("a", "late")]


def test_a_client_that_stalls_mid_body_does_not_hold_the_receiver(
    served: tuple[OtlpServer, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from mascope.integrations import _receiver

    monkeypatch.setattr(_receiver._Handler, "timeout", 0.5)
    server, db = served
    host, port = server.server_address[:2]
    stalled = socket.create_connection((str(host), int(port)))
    try:
        stalled.sendall(
            b"POST /v1/traces HTTP/1.1\r\nContent-Type: application/x-protobuf\r\nContent-Length: 1000\r\n\r\nabc"
        )
        body = otlp_protobuf(_spans())  # another client is served meanwhile
        status, _ = _post(server, body, {"Content-Type": "application/x-protobuf"})
        assert status == 200
        stalled.settimeout(10)
        assert stalled.recv(100) == b""  # the stalled connection is dropped, not answered
    finally:
        stalled.close()
    with TraceStore(db) as reader:
        assert reader.count_runs() == 1


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_live_then_finished_run_on_both_backends(
    tmp_path: Path, request: pytest.FixtureRequest, backend: str
) -> None:
    from mascope.integrations import parse_protobuf

    target = (
        str(tmp_path / "m.db")
        if backend == "sqlite"
        else str(request.getfixturevalue("postgres_url"))
    )
    with recording() as (tracer, finished):
        with agent_span(tracer, "a"):
            for text in ("one", "two"):
                with chat_span(tracer, said="count", answer=text):
                    pass
        spans = finished()
    with TraceStore(target) as store:
        receiver = Receiver(store)
        for span in spans:  # one span per request, as a SimpleSpanProcessor sends them
            receiver.ingest(parse_protobuf(otlp_protobuf([span])))
        (run,) = store.list_runs(limit=5)
        assert (run.status, run.task, run.team) == ("unknown", "count", "demo-app")
        assert [(s.agent, s.content) for s in store.steps(run.id)] == [("a", "one"), ("a", "two")]


def test_serve_as_a_process_records_and_closes_open_traces_on_ctrl_c(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys

    from mascope.integrations import parse_protobuf  # noqa: F401  (the extra is installed)
    from tests.models.servers import free_port

    db, port = tmp_path / "m.db", free_port()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mascope.cli", "serve", "--port", str(port), "--db", str(db)],
        stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:  # wait until it listens
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        child_only = [s for s in _spans() if s.parent is not None]  # the app stops mid-trace
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("POST", "/v1/traces", body=otlp_protobuf(child_only), headers={"Content-Type": "application/x-protobuf"})  # fmt: skip
        assert conn.getresponse().status == 200
        conn.close()
        with TraceStore(db) as reader:
            (run,) = reader.list_runs(limit=5)
            assert run.status == "running"  # live, and not taken for a dead process's run
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    assert (
        "receiving OTLP traces at http://127.0.0.1:" in stderr
        and "stopped; received 1 span" in stderr
    )
    with TraceStore(db) as reader:
        (run,) = reader.list_runs(limit=5)
        assert run.status == "interrupted" and run.metadata_["otel"]["complete"] is False


def test_judging_and_listing_the_store_work_while_it_ingests(
    served: tuple[OtlpServer, Path], tmp_path: Path
) -> None:
    from ..diagnosis.test_batch import GOOD

    server, db = served
    with TraceStore(db) as store:  # a run already there, to judge while spans arrive
        rid = store.start_run(team="t", task="earlier")
        store.append_step(rid, agent="a", content="an answer")
        store.finish_run(rid, status="failed")
    tracer, provider = _sdk_tracer(server.url)
    judging_done = threading.Event()
    traces: list[int] = []

    def stream() -> None:  # traces one after another until the judging is over
        while not judging_done.is_set() or len(traces) < 5:
            i = len(traces)
            with agent_span(tracer, f"agent{i}"):
                for k in range(2):
                    with chat_span(tracer, said=f"task {i}", answer=f"reply {i}.{k}"):
                        pass
            traces.append(i)

    sender = threading.Thread(target=stream)
    sender.start()
    script = tmp_path / "judge.json"
    script.write_text(json.dumps([GOOD] * 3))
    try:
        for _ in range(3):  # each while the receiver is writing
            judged = CliRunner().invoke(
                app, ["judge", rid, "-m", f"scripted:{script}", "--db", str(db)]
            )
            assert judged.exit_code == 0, judged.output
            listed = CliRunner().invoke(app, ["runs", "list", "--db", str(db), "--json"])
            assert listed.exit_code == 0, listed.output
    finally:
        judging_done.set()
        sender.join(timeout=120)
        provider.shutdown()
    with TraceStore(db) as store:
        assert store.count_runs() == len(traces) + 1  # every trace arrived meanwhile
        assert sum(a.present for a in store.annotations(rid) if a.annotator.startswith("llm:")) >= 1
