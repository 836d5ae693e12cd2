"""Real HTTP servers on loopback for the openai backend's tests.

* `FaultServer`: a tiny OpenAI-compatible chat endpoint that plays a script
  of faults (429 with Retry-After, 5xx, stalls, malformed JSON, 401) before
  answering, and counts the requests it got.
* `start_llama_server`: llama-cpp-python's own OpenAI-compatible server
  serving the embedded SmolLM2.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


@dataclass
class Fault:
    """What the server does with one request."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None
    stall: float = 0.0
    """Seconds to wait before answering (longer than the client's timeout: a stall)."""
    answer: str = "ok"
    cut_after: int | None = None
    """For a streamed request: send this many pieces of the answer, then drop the connection."""


def ok(answer: str = "ok") -> Fault:
    return Fault(answer=answer)


USAGE = {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14}


def completion(answer: str, *, tool_call: dict[str, Any] | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": answer}
    if tool_call:
        message = {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {
                        "name": tool_call["name"],
                        "arguments": json.dumps(tool_call["arguments"]),
                    },
                }
            ],
        }
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": "fault-model",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": USAGE,
    }


def words(text: str) -> list[str]:
    """`text` in pieces of one word each, with the spaces before it."""
    return re.findall(r"\s*\S+|\s+$", text)


def stream_chunk(delta: dict[str, Any], *, finish_reason: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": "fault-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }


class FaultServer:
    """Plays `script` one request at a time; after the script, answers `ok`."""

    def __init__(self, script: list[Fault] | None = None):
        self.script: list[Fault] = list(script or [])
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        """Each request's headers, names in lower case."""
        self.times: list[float] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.default: Fault = ok()
        """What to play once the script is used up."""
        self._release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real servers do
            disable_nagle_algorithm = True  # else headers and body wait on delayed ACKs (40 ms)

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                with lock:
                    server.requests.append(body)
                    server.headers.append({k.lower(): v for k, v in self.headers.items()})
                    server.times.append(time.monotonic())
                    fault = server.script.pop(0) if server.script else server.default
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    if fault.stall:
                        server._release.wait(fault.stall)
                finally:
                    with lock:
                        server.in_flight -= 1
                if body.get("stream") and fault.status == 200 and fault.body is None:
                    self._stream(
                        fault, usage=bool((body.get("stream_options") or {}).get("include_usage"))
                    )
                    return
                payload = fault.body
                if payload is None:
                    if fault.status == 200:
                        payload = json.dumps(completion(fault.answer))
                    else:
                        payload = json.dumps({"error": {"message": f"injected {fault.status}"}})
                data = payload.encode()
                try:
                    self.send_response(fault.status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    for k, v in fault.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def _stream(self, fault: Fault, *, usage: bool) -> None:
                """Server-sent events, a word of the answer per chunk, as OpenAI streams."""
                events = [
                    stream_chunk({"role": "assistant", "content": w}) for w in words(fault.answer)
                ]
                events.append(stream_chunk({}, finish_reason="stop"))
                if usage:
                    events.append({**stream_chunk({}), "choices": [], "usage": USAGE})
                lines = [f"data: {json.dumps(e)}\n\n".encode() for e in events] + [
                    b"data: [DONE]\n\n"
                ]
                sent = lines if fault.cut_after is None else lines[: fault.cut_after]
                try:
                    self.send_response(200)
                    self.send_header("content-type", "text/event-stream")
                    self.send_header("content-length", str(sum(map(len, lines))))
                    self.end_headers()
                    for line in sent:
                        self.wfile.write(line)
                        self.wfile.flush()
                    if fault.cut_after is not None:  # the body is cut short: a dropped stream
                        self.close_connection = True
                        self.connection.shutdown(socket.SHUT_RDWR)
                except (BrokenPipeError, ConnectionResetError, OSError):
                    pass

        lock = threading.Lock()
        ThreadingHTTPServer.request_queue_size = 256
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> FaultServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    @property
    def gaps(self) -> list[float]:
        """Seconds between consecutive requests."""
        return [b - a for a, b in zip(self.times, self.times[1:], strict=False)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LlamaServer:
    url: str
    model: str
    process: subprocess.Popen[bytes]


def start_llama_server(gguf: str, *, alias: str = "smollm2", timeout: float = 120) -> LlamaServer:
    """Start `python -m llama_cpp.server` on a free loopback port and wait until it answers."""
    port = free_port()
    cmd = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", gguf, "--model_alias", alias,
        "--host", "127.0.0.1", "--port", str(port),
        "--n_ctx", "2048", "--n_threads", str(os.cpu_count() or 1),
    ]  # fmt: skip
    log = open(os.devnull, "wb")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"llama_cpp.server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=1) as r:
                if r.status == 200:
                    return LlamaServer(url=url, model=alias, process=proc)
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("llama_cpp.server did not come up in time")


def stop(server: LlamaServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


def serve_forever_main() -> None:
    """`python -m tests.models.servers --latency S --answer-file F`: a slow server in its own
    process (benchmarks), printing its URL on the first line."""
    import argparse
    import sys

    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--answer-file", required=True)
    args = parser.parse_args()
    answer = Path(args.answer_file).read_text()
    server = FaultServer()
    server.default = Fault(answer=answer, stall=args.latency)
    with server:
        print(server.url, flush=True)
        sys.stdin.read()  # until the parent closes our stdin


if __name__ == "__main__":
    serve_forever_main()
