from __future__ import annotations

from collections.abc import Iterator

import pytest

from mascope.models import embedded_model_path

from .servers import LlamaServer, start_llama_server, stop


@pytest.fixture(scope="session")
def llama_server() -> Iterator[LlamaServer]:
    """llama-cpp-python's OpenAI-compatible server serving the embedded SmolLM2."""
    server = start_llama_server(str(embedded_model_path()))
    try:
        yield server
    finally:
        stop(server)
