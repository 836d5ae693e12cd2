"""The openai backend's retries, against a fault-injecting server on loopback."""

from __future__ import annotations

import time

import pytest

from mascope.errors import AuthenticationError, EndpointError, ModelNotFoundError
from mascope.models import OpenAIModel, RetryEvent, RetryPolicy

from .servers import Fault, FaultServer, free_port, ok

FAST = RetryPolicy(max_retries=3, initial_wait=0.05, jitter=0.0, max_wait=2.0, timeout=5.0)


def model_for(server: FaultServer, policy: RetryPolicy = FAST) -> OpenAIModel:
    return OpenAIModel("fault-model", base_url=server.url, retry=policy)


def test_429_waits_as_long_as_retry_after_says() -> None:
    with FaultServer([Fault(429, headers={"Retry-After": "1"}), ok("done")]) as server:
        seen: list[RetryEvent] = []
        reply = model_for(server).chat("hi", on_retry=seen.append)
    assert reply.text == "done"
    assert len(server.requests) == 2
    assert [e.kind for e in reply.retries] == ["rate_limit"]
    event = reply.retries[0]
    assert event.status_code == 429 and event.retry_after == 1.0 and event.wait_seconds == 1.0
    assert seen == reply.retries  # the caller saw the retry as it happened
    assert server.gaps[0] >= 0.95


def test_retry_after_ms_is_honoured_and_capped() -> None:
    policy = RetryPolicy(max_retries=2, initial_wait=0.05, jitter=0.0, max_wait=0.3, timeout=5)
    script = [
        Fault(429, headers={"retry-after-ms": "200"}),
        Fault(429, headers={"Retry-After": "60"}),
        ok(),
    ]
    with FaultServer(script) as server:
        reply = model_for(server, policy).chat("hi")
    assert [e.wait_seconds for e in reply.retries] == [0.2, 0.3]


def test_5xx_backs_off_exponentially() -> None:
    with FaultServer([Fault(500), Fault(503), ok("fine")]) as server:
        reply = model_for(server).chat("hi")
    assert reply.text == "fine"
    assert len(server.requests) == 3
    assert [(e.kind, e.status_code) for e in reply.retries] == [
        ("server_error", 500),
        ("server_error", 503),
    ]
    assert [e.wait_seconds for e in reply.retries] == [0.05, 0.1]
    assert server.gaps[0] >= 0.045 and server.gaps[1] >= 0.095


def test_jitter_stays_within_its_bound() -> None:
    policy = RetryPolicy(initial_wait=1.0, jitter=0.25, max_wait=100)
    waits = [policy.backoff(3, None) for _ in range(200)]
    assert all(4.0 <= w <= 5.0 for w in waits)
    assert len(set(waits)) > 1


def test_stalled_response_times_out_and_is_retried() -> None:
    # The timeout leaves the retried request time to be answered on a busy machine.
    policy = RetryPolicy(max_retries=2, initial_wait=0.05, jitter=0.0, timeout=1.5)
    with FaultServer([Fault(stall=8.0), ok("after stall")]) as server:
        started = time.monotonic()
        reply = model_for(server, policy).chat("hi")
        elapsed = time.monotonic() - started
    assert reply.text == "after stall"
    assert [e.kind for e in reply.retries] == ["timeout"]
    assert 1.5 <= elapsed < 7.0  # not the whole stall


def test_malformed_json_is_retried() -> None:
    with FaultServer([Fault(200, body="{not json"), ok("parsed")]) as server:
        reply = model_for(server).chat("hi")
    assert reply.text == "parsed"
    assert [e.kind for e in reply.retries] == ["bad_response"]
    assert len(server.requests) == 2


def test_gives_up_after_max_retries_with_a_clear_message() -> None:
    with FaultServer([Fault(500)] * 10) as server:
        with pytest.raises(
            EndpointError, match=r"kept failing after 4 attempts \(HTTP 500"
        ) as info:
            model_for(server).chat("hi")
    assert len(server.requests) == 4  # 1 try + max_retries=3
    assert info.value.attempts == 4


def test_401_fails_at_once_naming_the_key() -> None:
    with FaultServer([Fault(401)]) as server:
        with pytest.raises(AuthenticationError, match="OPENAI_API_KEY"):
            model_for(server).chat("hi")
    assert len(server.requests) == 1


def test_400_fails_at_once() -> None:
    with FaultServer([Fault(400)]) as server:
        with pytest.raises(EndpointError, match="rejected the request"):
            model_for(server).chat("hi")
    assert len(server.requests) == 1


def test_404_names_the_model() -> None:
    with FaultServer([Fault(404)]) as server:
        with pytest.raises(ModelNotFoundError, match="fault-model"):
            model_for(server).chat("hi")


def test_connection_refused_is_retried_then_reported() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    policy = RetryPolicy(max_retries=2, initial_wait=0.01, jitter=0.0)
    seen: list[RetryEvent] = []
    with pytest.raises(
        EndpointError, match=r"cannot connect to .* after 3 attempts.*server running"
    ):
        OpenAIModel("x", base_url=url, retry=policy).chat("hi", on_retry=seen.append)
    assert [e.kind for e in seen] == ["connection", "connection"]


async def test_async_call_reports_retries_too() -> None:
    with FaultServer([Fault(502), ok("async ok")]) as server:
        reply = await model_for(server).achat("hi")
    assert reply.text == "async ok"
    assert reply.retries[0].status_code == 502
    assert reply.usage.input_tokens == 11 and reply.usage.output_tokens == 3


def test_connections_left_open_are_closed_with_their_loop_without_a_warning() -> None:
    import subprocess
    import sys
    from pathlib import Path

    # A user who runs calls in asyncio.run (or the sync twins) and never closes the
    # model must not get "Unclosed client session" on stderr at exit.
    program = """
import asyncio, gc, sys, warnings
warnings.simplefilter("always")
from mascope.models import OpenAIModel
m = OpenAIModel("m", base_url=sys.argv[1])
print(m.chat("hi").text)
async def main():
    return (await m.achat("again")).text
print(asyncio.run(main()))
del m
gc.collect()
"""
    with FaultServer() as server:
        server.default = ok("fine")
        done = subprocess.run(
            [sys.executable, "-c", program, server.url],
            capture_output=True, text=True, timeout=60, cwd=Path(__file__).resolve().parents[2],
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["fine", "fine"]
    assert "Unclosed" not in done.stderr, done.stderr


def test_the_key_and_organisation_travel_as_headers_and_the_body_as_json(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_ORG_ID", "org-123")
    monkeypatch.delenv("OPENAI_PROJECT_ID", raising=False)
    with FaultServer([ok("fine")]) as server:
        model = OpenAIModel("fault-model", base_url=server.url, api_key="sk-test-key", retry=FAST)
        reply = model.chat("hi", temperature=0.0, max_tokens=7)
    assert reply.text == "fine"
    (headers,) = server.headers
    assert headers["authorization"] == "Bearer sk-test-key"
    assert headers["openai-organization"] == "org-123" and "openai-project" not in headers
    assert headers["content-type"] == "application/json"
    (body,) = server.requests
    assert body["model"] == "fault-model" and body["max_tokens"] == 7
    assert body["messages"] == [{"role": "user", "content": "hi"}]


def test_an_error_body_that_is_not_json_is_reported_as_its_text() -> None:
    with FaultServer([Fault(400, body="<html>bad gateway config</html>")]) as server:
        with pytest.raises(EndpointError, match=r"HTTP 400: <html>bad gateway config</html>"):
            model_for(server).chat("hi")
