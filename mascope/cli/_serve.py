"""`mascope serve`: receive OpenTelemetry traces over OTLP/HTTP and record them as runs."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from ._common import DbOpt, err, removed_if_failed, user_errors


@user_errors
def serve(
    host: Annotated[
        str,
        typer.Option(help="Address to listen on; anything but loopback needs --token."),
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(help="Port (4318 is OTLP/HTTP's own).", min=0, max=65535)
    ] = 4318,
    token: Annotated[
        str | None,
        typer.Option(
            help="Require 'Authorization: Bearer TOKEN' on every request "
            "(default $MASCOPE_SERVE_TOKEN).",
            show_default=False,
        ),
    ] = None,
    idle_timeout: Annotated[
        float,
        typer.Option(
            help="Seconds a trace may stay quiet before its run is closed as incomplete.", min=0.1
        ),
    ] = 300.0,
    max_body: Annotated[
        int,
        typer.Option(
            help="Largest request body in bytes, before and after gzip (larger: HTTP 413).",
            min=1024,
        ),
    ] = 16 * 1024 * 1024,
    db: DbOpt = None,
) -> None:
    """Receive OpenTelemetry traces (OTLP/HTTP at /v1/traces) and record them as runs, live."""
    from mascope.integrations import OtlpServer, Receiver

    from ._runs import open_store

    token = token or os.environ.get("MASCOPE_SERVE_TOKEN") or None
    with removed_if_failed(db):  # a server that never listened leaves no new store behind
        store = open_store(db, create=True, write=True)
        try:
            server = OtlpServer(
                Receiver(store, idle_timeout_s=idle_timeout),
                host=host,
                port=port,
                token=token,
                max_body=max_body,
            )
        except BaseException:
            store.close()
            raise
    try:
        err.print(
            f"receiving OTLP traces at {server.url}/v1/traces into {store.where}; "
            f"point your exporter at OTEL_EXPORTER_OTLP_ENDPOINT={server.url} (Ctrl-C stops)",
            soft_wrap=True,
        )
        try:
            server.serve()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
        n = server.received_spans
        err.print(f"stopped; received {n:,} span{'s' if n != 1 else ''}")
    finally:
        store.close()
