"""Test-session rules: no network beyond loopback."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mascope.traces import TraceStore

from . import postgres
from .models.servers import LlamaServer, start_llama_server, stop

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _allowed(sock: socket.socket, address: Any) -> bool:
    if sock.family == socket.AF_UNIX:
        return True
    host = address[0] if isinstance(address, tuple) else address
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _guarded_connect(self: socket.socket, address: Any) -> None:
    if not _allowed(self, address):
        raise ConnectionRefusedError(f"tests may not reach the network (tried {address!r})")
    _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    if not _allowed(self, address):
        raise ConnectionRefusedError(f"tests may not reach the network (tried {address!r})")
    return _real_connect_ex(self, address)


@pytest.fixture(autouse=True, scope="session")
def _no_network() -> Iterator[None]:
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
    yield
    socket.socket.connect = _real_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _real_connect_ex  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see none of the developer's mascope/OpenAI settings."""
    for var in (
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "MASCOPE_MODEL",
        "MASCOPE_DB",
        "MASCOPE_MAX_RETRIES",
        "MASCOPE_TIMEOUT",
        "MASCOPE_PRICES",
        "MASCOPE_LOCAL_CTX",
        "MASCOPE_LOCAL_THREADS",
    ):
        monkeypatch.delenv(var, raising=False)


def datasets_dir() -> Path:
    """../shared/datasets beside the checkout (or $MASCOPE_DATASETS)."""
    import os

    root = os.environ.get("MASCOPE_DATASETS")
    path = (
        Path(root) if root else Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
    )
    if not path.is_dir():
        pytest.fail(
            f"benchmark data not found at {path}: put ../shared beside the checkout or set MASCOPE_DATASETS"
        )
    return path


@pytest.fixture
def datasets() -> Path:
    return datasets_dir()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[TraceStore]:
    """A fresh trace store in a temporary SQLite file."""
    with TraceStore(tmp_path / "mascope.db") as s:
        yield s


@pytest.fixture(scope="session")
def llama_server() -> Iterator[LlamaServer]:
    """llama-cpp-python's OpenAI-compatible server serving the embedded SmolLM2 on loopback."""
    from mascope.models import embedded_model_path

    server = start_llama_server(str(embedded_model_path()))
    try:
        yield server
    finally:
        stop(server)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[postgres.PostgresServer]:
    """A real PostgreSQL server in a temporary directory, for the whole session."""
    import os

    bin_dir = postgres.find_bin()
    if bin_dir is None:
        if os.environ.get("CI"):
            pytest.fail(
                "PostgreSQL's initdb/pg_ctl are missing: .ci/run installs the postgresql package"
            )
        pytest.skip("PostgreSQL binaries not installed (set MASCOPE_PG_BIN or install postgresql)")
    server = postgres.start(bin_dir)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: postgres.PostgresServer) -> Iterator[str]:
    """The URL of a fresh, empty PostgreSQL database on the session's server (dropped after)."""
    url = postgres_server.database()
    yield url
    postgres_server.drop(url)
