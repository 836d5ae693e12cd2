"""Sending runs' GenAI spans to any OTLP/HTTP endpoint with the SDK's OTLP exporter.

`mascope runs export --endpoint URL`: the spans `_otel_export` builds, sent as the
OpenTelemetry SDK sends them (protobuf over HTTP, its retries and timeout). A
send that fails is one `EndpointError` naming the endpoint and why.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from mascope.errors import ConfigError, EndpointError
from mascope.traces import TraceStore

from ._otel_export import spans_by_run

DEFAULT_SEND_TIMEOUT_S = 10.0
_MAX_SPANS_PER_REQUEST = 512
"""Spans per OTLP request (a run's root span always goes last, and ends the run)."""


def traces_url(endpoint: str) -> str:
    """The OTLP/HTTP traces URL of an endpoint: a base URL (`http://host:4318`) gets the
    standard `/v1/traces`; a URL with a path is used as it is."""
    try:
        parts = urlsplit(endpoint.strip())
        _ = parts.port  # a port that is no number, or out of range, raises here
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        ok = False
    if not ok or any(c.isspace() for c in endpoint.strip()):
        raise ConfigError(
            f"--endpoint {endpoint!r} is not an http(s) URL; "
            "give the receiver's address, e.g. http://127.0.0.1:4318"
        )
    if parts.path in ("", "/"):
        parts = parts._replace(path="/v1/traces")
    return urlunsplit(parts)


@dataclass
class SendReport:
    """What `send_otel` sent."""

    endpoint: str
    runs: int = 0
    spans: int = 0


def _watched_session() -> Any:
    """A `requests` session for the exporter that remembers why its last request failed
    (the exporter itself only logs it)."""
    import requests

    class Watched(requests.Session):
        failure: str | None = None

        def request(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
            try:
                response = super().request(*args, **kwargs)
            except requests.RequestException as exc:
                self.failure = _describe(exc)
                raise
            if response.status_code >= 400:
                said = ""
                try:
                    body = response.json()
                    said = str(body.get("message") or "") if isinstance(body, dict) else ""
                except ValueError:
                    pass
                reason = f"HTTP {response.status_code} {response.reason or ''}".strip()
                self.failure = f"{reason} ({' '.join(said.split())[:200]})" if said else reason
            return response

    return Watched()


def _describe(exc: BaseException) -> str:
    text = str(exc)
    for needle, reason in (
        ("Connection refused", "connection refused"),
        ("Name or service not known", "unknown host"),
        ("nodename nor servname", "unknown host"),
        ("timed out", "timed out"),
    ):
        if needle in text:
            return reason
    return f"{type(exc).__name__}: {' '.join(text.split())[:200]}"


def send_otel(
    store: TraceStore,
    run_ids: Sequence[str],
    endpoint: str,
    *,
    timeout_s: float = DEFAULT_SEND_TIMEOUT_S,
) -> SendReport:
    """Send runs' spans to an OTLP/HTTP endpoint with the SDK's OTLP exporter.

    Headers come from the exporter's standard environment variables
    (`OTEL_EXPORTER_OTLP_HEADERS`, e.g. `Authorization=Bearer TOKEN`). A run is sent
    in requests of at most 512 spans, its root span last; the first request that fails
    stops the export with an `EndpointError` naming the endpoint.
    """
    url = traces_url(endpoint)
    ids = [store.resolve_run_id(r) for r in run_ids]  # fail before sending anything
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace.export import SpanExportResult
    except ImportError:
        raise ConfigError(
            "sending to an OTLP endpoint needs opentelemetry-exporter-otlp-proto-http; "
            "install it with: pip install 'mascope[otel]'"
        ) from None
    report = SendReport(endpoint=url)
    session = _watched_session()
    exporter = OTLPSpanExporter(endpoint=url, timeout=timeout_s, session=session)
    quiet = logging.getLogger("opentelemetry.exporter")
    # Its warnings would print (through logging's last-resort handler when nothing else
    # handles them); the reason goes in our one line. The session keeps that reason.
    swallow = logging.NullHandler()
    propagate = quiet.propagate
    quiet.addHandler(swallow)
    quiet.propagate = False
    try:
        for spans in spans_by_run(store, ids):
            for at in range(0, len(spans), _MAX_SPANS_PER_REQUEST):
                batch = spans[at : at + _MAX_SPANS_PER_REQUEST]
                if exporter.export(batch) is not SpanExportResult.SUCCESS:
                    sent = (
                        f"; {report.runs} of {len(ids)} runs were sent before"
                        if report.runs
                        else ""
                    )
                    raise EndpointError(
                        f"cannot send spans to {url}: {session.failure or 'the exporter gave up'}{sent}; "
                        "check that an OTLP/HTTP receiver (mascope serve, a collector) listens there"
                    )
                report.spans += len(batch)
            report.runs += 1
    finally:
        quiet.removeHandler(swallow)
        quiet.propagate = propagate
        exporter.shutdown()  # type: ignore[no-untyped-call]
    return report


__all__ = ["DEFAULT_SEND_TIMEOUT_S", "SendReport", "send_otel", "traces_url"]
