"""The set-up snippets of docs/integrations.md run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "integrations.md"


def test_framework_setup_snippets_run(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("openinference.instrumentation.langchain")
    pytest.importorskip("openinference.instrumentation.openai_agents")
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert len(blocks) == 2
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    namespace: dict[str, object] = {"__name__": "doc"}
    try:
        for code in blocks:  # the second block uses the first one's provider
            exec(compile(code, str(DOC), "exec"), namespace)
        assert namespace["provider"] is not None
    finally:
        from openinference.instrumentation.langchain import LangChainInstrumentor
        from openinference.instrumentation.openai_agents import OpenAIAgentsInstrumentor

        LangChainInstrumentor().uninstrument()
        OpenAIAgentsInstrumentor().uninstrument()
        provider = namespace.get("provider")
        if provider is not None:
            provider.shutdown()  # type: ignore[attr-defined]
