"""`mascope serve` ingest: spans/s and steps/s from the OpenTelemetry SDK's own OTLP/HTTP
exporter on loopback, beside `runs import jsonl` of the same runs; the latency from a
span's end to its step being readable in the store; the receiver's memory while it
ingests 100,000 spans.

For the rate and the latency, the load generator (the SDK with a BatchSpanProcessor, as
apps use it) and the receiver run in one process, sharing the machine's cores. For the
memory, the receiver is the real `mascope serve` in a process of its own, so its resident
set is the receiver's alone (read from /proc, Linux only).

    .venv/bin/python benchmarks/bench_otel_ingest.py [--spans 20000] [--memory-spans 100000] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _report import machine, write_section
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

from mascope.integrations import OtlpServer, Receiver
from mascope.traces import TraceStore, export_runs, import_paths

SPANS_PER_TRACE = 10
"""An agent span, 6 chat spans and 3 tool spans (12 steps: a tool span is a call and a result)."""


def _trace(tracer, i: int) -> None:  # type: ignore[no-untyped-def]
    """One agent turn: 1 agent span, 6 chat spans, 3 tool spans (12 steps: a tool is 2)."""
    with tracer.start_as_current_span("invoke_agent worker") as agent:
        agent.set_attribute("gen_ai.operation.name", "invoke_agent")
        agent.set_attribute("gen_ai.agent.name", f"worker{i % 3}")
        for k in range(6):
            with tracer.start_as_current_span("chat m") as chat:
                chat.set_attribute("gen_ai.operation.name", "chat")
                chat.set_attribute("gen_ai.request.model", "m")
                chat.set_attribute("gen_ai.input.messages", json.dumps([{"role": "user", "parts": [{"type": "text", "content": f"task {i} turn {k}"}]}]))  # fmt: skip
                chat.set_attribute("gen_ai.output.messages", json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": f"answer {i}.{k} " * 8}]}]))  # fmt: skip
                chat.set_attribute("gen_ai.usage.input_tokens", 40)
                chat.set_attribute("gen_ai.usage.output_tokens", 20)
            if k % 2:
                with tracer.start_as_current_span("execute_tool lookup") as tool:
                    tool.set_attribute("gen_ai.operation.name", "execute_tool")
                    tool.set_attribute("gen_ai.tool.name", "lookup")
                    tool.set_attribute("gen_ai.tool.call.arguments", json.dumps({"q": i}))
                    tool.set_attribute("gen_ai.tool.call.result", f"result {i}")


def _serve(db: Path) -> tuple[OtlpServer, threading.Thread, TraceStore]:
    store = TraceStore(db)
    server = OtlpServer(Receiver(store, idle_timeout_s=3600), port=0, max_body=64 * 1024 * 1024)
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    return server, thread, store


def _stop(server: OtlpServer, thread: threading.Thread, store: TraceStore) -> None:
    server.shutdown()
    thread.join()
    server.server_close()
    store.close()


def ingest_rate(spans: int, tmp: Path) -> dict[str, float]:
    traces = max(1, spans // SPANS_PER_TRACE)
    db = tmp / "serve.db"
    server, thread, store = _serve(db)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    provider = TracerProvider(resource=Resource.create({"service.name": "bench"}))
    provider.add_span_processor(
        BatchSpanProcessor(
            OTLPSpanExporter(endpoint=f"{server.url}/v1/traces"), max_queue_size=1_000_000
        )
    )
    tracer = provider.get_tracer("bench")
    began = time.perf_counter()
    for i in range(traces):
        _trace(tracer, i)
    provider.force_flush()
    with TraceStore(db) as reader:
        while reader.count_runs(status="unknown") < traces:
            time.sleep(0.05)
        took = time.perf_counter() - began
        steps = sum(reader.count_steps(r) for r in reader.all_run_ids())
    provider.shutdown()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    _stop(server, thread, store)
    # The baseline: the same runs through `runs import jsonl`.
    dump = tmp / "runs.jsonl"
    with TraceStore(db) as src:
        export_runs(src, src.all_run_ids(), "jsonl", dump)
    began = time.perf_counter()
    with TraceStore(tmp / "import.db") as dst:
        import_paths(dst, "jsonl", [dump])
    baseline = time.perf_counter() - began
    return {
        "traces": traces,
        "spans": traces * SPANS_PER_TRACE,
        "steps": steps,
        "seconds": took,
        "spans_s": traces * SPANS_PER_TRACE / took,
        "steps_s": steps / took,
        "import_steps_s": steps / baseline,
        "rss_mb": peak / 1024,
        "rss_growth_mb": (peak - rss_before) / 1024,
    }


def latency(samples: int, tmp: Path) -> dict[str, float]:
    """Span end -> its step readable by another connection, one span exported at a time."""
    db = tmp / "latency.db"
    server, thread, store = _serve(db)
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{server.url}/v1/traces")))  # fmt: skip
    tracer = provider.get_tracer("bench")
    waits = []
    with TraceStore(db) as reader, tracer.start_as_current_span("invoke_agent a") as agent:
        agent.set_attribute("gen_ai.operation.name", "invoke_agent")
        agent.set_attribute("gen_ai.agent.name", "a")
        run_id = None
        for k in range(samples):
            chat = tracer.start_span("chat")
            chat.set_attribute("gen_ai.operation.name", "chat")
            chat.set_attribute("gen_ai.output.messages", json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": f"turn {k}"}]}]))  # fmt: skip
            ended = time.perf_counter()
            chat.end()  # exports it (SimpleSpanProcessor), as a live app's span would be
            while True:
                if run_id is None:
                    ids = reader.all_run_ids()
                    run_id = ids[0] if ids else None
                if run_id is not None and reader.count_steps(run_id) > k:
                    break
                time.sleep(0.0005)
            waits.append(time.perf_counter() - ended)
    provider.shutdown()
    _stop(server, thread, store)
    waits.sort()
    return {
        "median_ms": statistics.median(waits) * 1000,
        "p99_ms": waits[min(len(waits) - 1, int(len(waits) * 0.99))] * 1000,
    }


def _status_kb(pid: int, field: str) -> int:
    """A memory figure of a process from /proc/PID/status (VmRSS, VmHWM), in kB."""
    text = Path(f"/proc/{pid}/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.M)
    return int(match[1]) if match else 0


def _start_serve(db: Path) -> tuple[subprocess.Popen[str], str]:
    """`mascope serve` in its own process on a free port; its process and URL."""
    cmd = [sys.executable, "-m", "mascope.cli", "serve", "--db", str(db), "--port", "0",
           "--idle-timeout", "3600", "--max-body", str(64 * 1024 * 1024)]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    line = proc.stderr.readline()  # "receiving OTLP traces at http://127.0.0.1:PORT/v1/traces ..."
    match = re.search(r"(http://\S+)/v1/traces", line)
    if match is None:
        proc.kill()
        raise SystemExit(f"mascope serve did not start: {line}{proc.stderr.read()}")
    threading.Thread(target=proc.stderr.read, daemon=True).start()  # never let it block
    return proc, match[1]


def receiver_memory(spans: int, tmp: Path) -> dict[str, float]:
    """The `mascope serve` process's resident memory while `spans` spans arrive from the
    SDK's OTLP exporter: idle, at each quarter of the traces recorded, peak, and after."""
    traces = max(1, spans // SPANS_PER_TRACE)
    db = tmp / "memory.db"
    proc, url = _start_serve(db)
    try:
        time.sleep(1.0)  # settled after start-up
        idle = _status_kb(proc.pid, "VmRSS")
        provider = TracerProvider(resource=Resource.create({"service.name": "bench"}))
        provider.add_span_processor(
            BatchSpanProcessor(
                OTLPSpanExporter(endpoint=f"{url}/v1/traces"), max_queue_size=1_000_000
            )
        )
        tracer = provider.get_tracer("bench")
        quarters: dict[int, float] = {}
        finished = threading.Event()

        def sample() -> None:  # while the spans arrive, not after
            with TraceStore(db) as reader:
                while True:
                    done = reader.count_runs(status="unknown")
                    rss = _status_kb(proc.pid, "VmRSS") / 1024
                    for q in (1, 2, 3, 4):
                        if done >= traces * q // 4 and q not in quarters:
                            quarters[q] = rss
                    if done >= traces:
                        finished.set()
                        return
                    time.sleep(0.2)

        sampler = threading.Thread(target=sample, daemon=True)
        began = time.perf_counter()
        sampler.start()
        for i in range(traces):
            _trace(tracer, i)
        provider.force_flush()
        finished.wait()
        took = time.perf_counter() - began
        provider.shutdown()
        time.sleep(1.0)
        after = _status_kb(proc.pid, "VmRSS")
        peak = _status_kb(proc.pid, "VmHWM")
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C: the server closes cleanly
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    return {
        "spans": traces * SPANS_PER_TRACE,
        "traces": traces,
        "seconds": took,
        "spans_s": traces * SPANS_PER_TRACE / took,
        "idle_mb": idle / 1024,
        "peak_mb": peak / 1024,
        "growth_mb": (peak - idle) / 1024,
        "after_mb": after / 1024,
        **{f"q{q}_mb": v for q, v in quarters.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--spans", type=int, default=20_000)
    parser.add_argument("--latency-samples", type=int, default=300)
    parser.add_argument(
        "--memory-spans", type=int, default=100_000, help="0 skips the memory measurement"
    )
    parser.add_argument("--write", type=Path)
    parser.add_argument("--note", default="", help="what else ran on the machine, for the record")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rate = ingest_rate(args.spans, Path(tmp))
        lat = latency(args.latency_samples, Path(tmp))
        mem = receiver_memory(args.memory_spans, Path(tmp)) if args.memory_spans else None
    body = f"""Receiver ingest (`mascope serve`, SQLite store), from the OpenTelemetry SDK's
BatchSpanProcessor + OTLP/HTTP exporter on loopback, both in one process on {machine()}.
Traces of 10 spans (an agent, 6 chats, 3 tools: 12 steps); the machine was shared with
other work, so read the numbers as a floor. Run with
`.venv/bin/python benchmarks/bench_otel_ingest.py --spans {args.spans} --memory-spans {args.memory_spans} --write docs/benchmarks.md`.

| measure | value |
|---|---|
| spans received | {rate["spans"]:,.0f} in {rate["traces"]:,.0f} traces |
| ingest, spans/s | {rate["spans_s"]:,.0f} |
| ingest, steps/s | {rate["steps_s"]:,.0f} |
| `runs import jsonl` of the same runs, steps/s (baseline) | {rate["import_steps_s"]:,.0f} |
| span end -> step readable, median ({args.latency_samples} spans, one per request) | {lat["median_ms"]:.1f} ms |
| span end -> step readable, p99 | {lat["p99_ms"]:.1f} ms |
| peak RSS of the process (generator + receiver) | {rate["rss_mb"]:,.0f} MB (+{rate["rss_growth_mb"]:,.0f} MB while ingesting) |
"""
    if mem is not None:
        body += f"""
Memory of the receiver alone: `mascope serve` (SQLite store) in its own process, fed
{mem["spans"]:,.0f} spans ({mem["traces"]:,.0f} traces of the same shape) by the SDK's
BatchSpanProcessor + OTLP/HTTP exporter in another process, resident set read from
/proc while it ingested ({mem["spans_s"]:,.0f} spans/s this way, {mem["seconds"]:,.0f} s).

| `mascope serve` resident memory | MB |
|---|---|
| idle, after start-up | {mem["idle_mb"]:,.0f} |
| after 25% / 50% / 75% / 100% of the traces recorded | {" / ".join(f"{mem.get(f'q{q}_mb', 0):,.0f}" for q in (1, 2, 3, 4))} |
| peak (VmHWM) | {mem["peak_mb"]:,.0f} |
| growth, peak minus idle | +{mem["growth_mb"]:,.0f} |
| after the last trace, exporter shut down | {mem["after_mb"]:,.0f} |
"""
    if args.note:
        body += f"\n{args.note}\n"
    print(body)
    if args.write:
        write_section(args.write, "otel-ingest", body)


if __name__ == "__main__":
    main()
