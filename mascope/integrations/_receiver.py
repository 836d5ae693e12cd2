"""`mascope serve`: an OTLP/HTTP trace receiver that records spans as they arrive.

Spans are grouped into runs by trace id. A trace's steps are written as its
spans arrive (so a run shows in `mascope tui` while the app still runs);
when its root span arrives the whole trace is mapped once more (late
knowledge, such as the agent span that names the chat spans under it,
arrives last) and the run is finished. A trace that goes quiet for the idle
timeout is finished as `interrupted`, marked incomplete. Every write is a
short transaction of its own, so readers of the store never wait long.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import ipaddress
import json
import socket
import threading
import time
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from mascope._safeload import IMPORT_LIMITS, Limits, loads_json
from mascope.errors import ConfigError
from mascope.traces import RunBase, RunBundle, TraceStore, new_id

from ._otel_map import StepDraft, TraceIndex, map_trace, span_steps
from ._otlp_import import run_bundle
from ._spans import SpanFormatError, SpanRecord, parse_json_request, parse_protobuf

DEFAULT_PORT = 4318
"""The OTLP/HTTP port every OpenTelemetry exporter tries by default."""
DEFAULT_MAX_BODY = 16 * 1024 * 1024
"""Bytes of a request body, before and after decompression."""
DEFAULT_IDLE_TIMEOUT_S = 300.0
_CLOSED_KEPT = 1000
"""Finished traces remembered, so a late span joins its run instead of starting another."""


class BodyTooLarge(Exception):
    """A request body over the receiver's limit (HTTP 413)."""


@dataclass
class _Trace:
    run_id: str
    index: TraceIndex
    written: list[bytes] = field(default_factory=list)
    """A digest of what each stored step of the run was written from, in order (the
    content itself is in the store; a finished trace is kept for its late spans)."""
    last_seen: float = field(default_factory=time.monotonic)
    described: tuple[str, str] = ("", "")
    rooted: bool = False
    """Its root span has arrived: later spans are late additions to a finished run."""


class Receiver:
    """Records OTLP spans into a store; the HTTP server calls `ingest`."""

    def __init__(self, store: TraceStore, *, idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S):
        self.store = store
        self.idle_timeout_s = idle_timeout_s
        self._live: dict[str, _Trace] = {}
        self._closed: OrderedDict[str, _Trace] = OrderedDict()
        self._lock = threading.Lock()

    def ingest(self, spans: list[SpanRecord]) -> None:
        """Record spans (one request's worth); runs whose root span ended are finished."""
        by_trace: dict[str, list[SpanRecord]] = {}
        for s in spans:
            by_trace.setdefault(s.trace_id, []).append(s)
        with self._lock:
            for trace_id, group in by_trace.items():
                self._ingest_trace(trace_id, group)

    def _ingest_trace(self, trace_id: str, spans: list[SpanRecord]) -> None:
        trace = self._live.get(trace_id)
        if trace is None and trace_id in self._closed:  # a late span of a finished run
            trace = self._closed.pop(trace_id)
            self.store.reopen_run(trace.run_id)
            self._live[trace_id] = trace
        if trace is None and any(not s.parent_id for s in spans):
            # A whole trace in one request (the usual case with a batching exporter):
            # one transaction, as an import writes it.
            mapped = map_trace(spans, complete=True)
            bundle = run_bundle(mapped)
            written, _ = self.store.write_bundles([bundle])
            if written:
                done = _Trace(run_id=bundle.run.id, index=TraceIndex(spans), rooted=True)
                done.written = [_digest(d) for d in mapped.steps]
                self._remember(trace_id, done)
                return
        started = trace is None
        if trace is None:
            trace = self._start(trace_id, spans)  # described from this batch already
        trace.last_seen = time.monotonic()
        for span in sorted(spans, key=lambda s: (s.end_ns, s.start_ns)):
            trace.index.add(span)
            trace.rooted = trace.rooted or not span.parent_id
        if trace.rooted:
            self._finish(trace_id, complete=True)
            return
        # Provisional steps for what arrived; the finish maps the whole trace again.
        for span in sorted(spans, key=lambda s: (s.end_ns, s.start_ns)):
            index = trace.index
            for draft in span_steps(span, index.agent_of(span), leaf=index.is_leaf(span)):
                self._append(trace, draft)
        if not started and not trace.described[1]:
            # Only this batch is mapped (the whole trace each time would cost O(n) per batch);
            # the finish describes the run from the whole trace anyway.
            self._describe(trace, map_trace(spans, complete=False))

    def _start(self, trace_id: str, spans: list[SpanRecord]) -> _Trace:
        mapped = map_trace(spans, complete=False)
        run_id = new_id()
        run = RunBase(
            id=run_id,
            team=mapped.team,
            task=mapped.task,
            status="running",
            started_at=mapped.started_at,
            source="otlp",
            source_key=f"otlp:{trace_id}",
            metadata_=mapped.metadata,
        )
        written, _ = self.store.write_bundles([RunBundle(run=run)])
        if not written:  # this trace was imported or received before (another process)
            run_id = new_id()
            run = run.model_copy(update={"id": run_id, "source_key": None})
            self.store.write_bundles([RunBundle(run=run)])
        self.store.reopen_run(run_id)  # owned and heartbeaten by this process while live
        trace = _Trace(run_id=run_id, index=TraceIndex(), described=(mapped.team, mapped.task))
        self._live[trace_id] = trace
        return trace

    def _append(self, trace: _Trace, draft: StepDraft) -> None:
        self.store.append_step(trace.run_id, **draft.as_kwargs())
        trace.written.append(_digest(draft))

    def _describe(self, trace: _Trace, mapped: Any) -> None:
        now = (mapped.team or trace.described[0], mapped.task or trace.described[1])
        if now != trace.described:
            self.store.describe_run(trace.run_id, team=now[0], task=now[1])
            trace.described = now

    def _finish(self, trace_id: str, *, complete: bool) -> None:
        trace = self._live[trace_id]
        mapped = map_trace(list(trace.index.spans.values()), complete=complete)
        final = [_digest(d) for d in mapped.steps]
        same = 0
        while same < min(len(final), len(trace.written)) and final[same] == trace.written[same]:
            same += 1
        if same < len(trace.written):  # the whole trace reads differently: rewrite from there
            self.store.truncate_steps(trace.run_id, same)
            del trace.written[same:]
        for draft in mapped.steps[same:]:
            self._append(trace, draft)
        self._describe(trace, mapped)
        self.store.finish_run(
            trace.run_id,
            status=mapped.status,
            final_answer=mapped.final_answer,
            termination_reason=mapped.termination_reason,
            metadata=mapped.metadata,
        )
        del self._live[trace_id]  # only once finished: a failed finish is retried by the sweep
        self._remember(trace_id, trace)

    def _remember(self, trace_id: str, trace: _Trace) -> None:
        self._closed[trace_id] = trace
        while len(self._closed) > _CLOSED_KEPT:
            self._closed.popitem(last=False)

    def close_idle(self, *, now: float | None = None) -> list[str]:
        """Finish, as incomplete, the runs whose trace has been quiet for the idle timeout."""
        moment = time.monotonic() if now is None else now
        with self._lock:
            quiet = [
                tid for tid, t in self._live.items() if moment - t.last_seen >= self.idle_timeout_s
            ]
            runs = [self._live[tid].run_id for tid in quiet]
            for tid in quiet:
                self._finish(tid, complete=False)
        return runs

    def close_all(self) -> list[str]:
        """Finish every live run as incomplete (the receiver is stopping)."""
        return self.close_idle(now=float("inf"))


def _digest(draft: StepDraft) -> bytes:
    """What a step is written from, in 16 bytes: enough to tell whether a re-mapped step differs."""
    text = json.dumps(draft.as_kwargs(), sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


# -- HTTP ------------------------------------------------------------------------------------

_BODY_LIMITS = Limits(max_bytes=IMPORT_LIMITS.max_bytes, max_depth=200, max_nodes=5_000_000)


def decode_body(
    body: bytes, *, encoding: str, content_type: str, max_body: int
) -> list[SpanRecord]:
    """The spans of one OTLP/HTTP request body (`SpanFormatError`, `BodyTooLarge` when not)."""
    encoding = encoding.strip().lower()
    if encoding == "gzip":
        body = _inflate(body, zlib.MAX_WBITS | 16, max_body)
    elif encoding == "deflate":
        body = _inflate(body, zlib.MAX_WBITS, max_body)
    elif encoding not in ("", "identity"):
        raise SpanFormatError(f"unsupported Content-Encoding {encoding!r}; send gzip or none")
    kind = content_type.split(";")[0].strip().lower()
    if kind == "application/x-protobuf":
        return parse_protobuf(body)
    if kind == "application/json":
        try:
            data = loads_json(body.decode("utf-8"), source="request body", limits=_BODY_LIMITS)
        except UnicodeDecodeError:
            raise SpanFormatError("request body is not UTF-8 JSON") from None
        except ValueError as exc:
            raise SpanFormatError(f"request body is not valid JSON ({exc})") from None
        except ConfigError as exc:
            raise SpanFormatError(str(exc)) from None
        return parse_json_request(data)
    raise SpanFormatError(
        f"unsupported Content-Type {content_type!r}; send application/x-protobuf or application/json"
    )


def _inflate(body: bytes, wbits: int, max_body: int) -> bytes:
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(body, max_body + 1)
    except zlib.error as exc:
        raise SpanFormatError(f"body is not valid compressed data ({exc})") from None
    if len(out) > max_body or inflater.unconsumed_tail:
        raise BodyTooLarge(f"decompressed body is over the {max_body:,}-byte limit")
    if not inflater.eof:
        raise SpanFormatError("compressed body is truncated")
    return out


class _Handler(BaseHTTPRequestHandler):
    server: OtlpServer
    protocol_version = "HTTP/1.1"
    timeout = 60
    """Seconds a client may take to send its request (a stalled one frees its thread)."""

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the CLI reports
        pass

    def do_POST(self) -> None:
        srv = self.server
        if self.path.split("?")[0] != "/v1/traces":
            self._reply(
                HTTPStatus.NOT_FOUND,
                f"no such endpoint {self.path[:100]!r}; send traces to /v1/traces",
            )
            return
        if srv.token is not None and self.headers.get("Authorization") != f"Bearer {srv.token}":
            self._reply(HTTPStatus.UNAUTHORIZED, "missing or wrong bearer token")
            return
        length_text = self.headers.get("Content-Length")
        if length_text is None or not length_text.strip().isdigit():
            self._reply(HTTPStatus.LENGTH_REQUIRED, "send a Content-Length", close=True)
            return
        length = int(length_text)
        if length > srv.max_body:
            self._reply(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"body of {length:,} bytes is over the {srv.max_body:,}-byte limit",
                close=True,
            )
            return
        body = self.rfile.read(length)
        try:
            spans = decode_body(
                body,
                encoding=self.headers.get("Content-Encoding", ""),
                content_type=self.headers.get("Content-Type", ""),
                max_body=srv.max_body,
            )
        except BodyTooLarge as exc:
            self._reply(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, str(exc))
            return
        except SpanFormatError as exc:
            self._reply(HTTPStatus.BAD_REQUEST, str(exc))
            return
        try:
            srv.receiver.ingest(spans)
        except Exception as exc:  # the store refused (locked too long, gone): the client retries
            reason = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
            self._reply(HTTPStatus.SERVICE_UNAVAILABLE, f"could not record the spans: {reason}")
            return
        srv.received_spans += len(spans)
        json_reply = self.headers.get("Content-Type", "").startswith("application/json")
        self._send(
            HTTPStatus.OK,
            b"{}" if json_reply else b"",
            "application/json" if json_reply else "application/x-protobuf",
        )

    def do_GET(self) -> None:
        self._reply(HTTPStatus.METHOD_NOT_ALLOWED, "POST OTLP traces to /v1/traces")

    def _reply(self, status: HTTPStatus, reason: str, *, close: bool = False) -> None:
        body = json.dumps({"code": 3 if status == HTTPStatus.BAD_REQUEST else 2, "message": reason})
        self._send(status, body.encode(), "application/json", close=close)

    def _send(
        self, status: HTTPStatus, body: bytes, content_type: str, *, close: bool = False
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)


class OtlpServer(ThreadingHTTPServer):
    """The HTTP server of `mascope serve` (threads per request; ingestion is serialised)."""

    daemon_threads = True

    def __init__(
        self,
        receiver: Receiver,
        *,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        token: str | None = None,
        max_body: int = DEFAULT_MAX_BODY,
    ):
        if not is_loopback(host) and not token:
            raise ConfigError(
                f"--host {host} accepts spans from other machines; pass --token SECRET "
                "(clients then send 'Authorization: Bearer SECRET'), or use 127.0.0.1"
            )
        self.receiver = receiver
        self.token = token or None
        self.max_body = max_body
        self.received_spans = 0
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            super().__init__((host, port), _Handler)
        except OSError as exc:
            why = (
                "address already in use; stop the other server or choose another --port"
                if exc.errno == errno.EADDRINUSE
                else exc.strerror or str(exc)
            )
            raise ConfigError(f"cannot listen on {host}:{port}: {why}") from None
        self._stop = threading.Event()
        self._sweeper = threading.Thread(target=self._sweep, name="mascope-serve-idle", daemon=True)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up or stalled is its own problem: no traceback on the console."""

    @property
    def url(self) -> str:
        host, port = str(self.server_address[0]), int(self.server_address[1])
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}"

    def serve(self) -> None:
        """Serve until `shutdown`; then finish the live runs as incomplete."""
        self._sweeper.start()
        try:
            self.serve_forever(poll_interval=0.2)
        finally:
            self._stop.set()
            self.receiver.close_all()

    def _sweep(self) -> None:
        every = max(0.05, min(5.0, self.receiver.idle_timeout_s / 4))
        while not self._stop.wait(every):
            # A store that is busy (or any surprise) must not end the sweeping: the next
            # sweep tries again.
            with contextlib.suppress(Exception):
                self.receiver.close_idle()


def is_loopback(host: str) -> bool:
    """Whether `host` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


__all__ = [
    "DEFAULT_IDLE_TIMEOUT_S",
    "DEFAULT_MAX_BODY",
    "DEFAULT_PORT",
    "OtlpServer",
    "Receiver",
    "decode_body",
    "is_loopback",
]
