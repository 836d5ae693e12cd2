"""The set-up snippets of docs/integrations.md run as written."""

from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "integrations.md"


def _setup_blocks() -> list[str]:
    """The Python blocks of the doc's "Set-up per framework" section, in order."""
    text = DOC.read_text()
    start = text.index("## Set-up per framework")
    end = text.index("\n## ", start + 1)
    return re.findall(r"```python\n(.*?)```", text[start:end], re.S)


def _instrumentors(code: str) -> list[tuple[str, str]]:
    """The instrumentors a block imports: (module, class name)."""
    return re.findall(r"from (\S+instrumentation\.\S+) import (\w+Instrumentor)", code)


def test_framework_setup_snippets_run(monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = _setup_blocks()
    assert len(blocks) == 4  # LangGraph, OpenAI Agents SDK, openai client, AutoGen
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    namespace: dict[str, object] = {"__name__": "doc"}
    ran: list[tuple[str, str]] = []
    try:
        for code in blocks:  # later blocks use the first one's provider
            modules = _instrumentors(code)
            if not all(importlib.util.find_spec(m) for m, _ in modules):
                continue  # AutoGen is not in the dev extra (docs/integrations.md says why)
            exec(compile(code, str(DOC), "exec"), namespace)
            ran += modules
        assert namespace["provider"] is not None
        assert len(ran) >= 3
    finally:
        for module, name in ran:
            getattr(importlib.import_module(module), name)().uninstrument()
        provider = namespace.get("provider")
        if provider is not None:
            provider.shutdown()  # type: ignore[attr-defined]
