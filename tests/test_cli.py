"""`mascope chat`, through Typer's runner and as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mascope.cli import app

from .models.servers import Fault, FaultServer, free_port

runner = CliRunner()


def script(tmp_path: Path, *replies: str) -> str:
    path = tmp_path / "script.json"
    path.write_text(json.dumps(list(replies)))
    return f"scripted:{path}"


def test_chat_prints_the_answer(tmp_path: Path) -> None:
    result = runner.invoke(app, ["chat", "-m", script(tmp_path, "Hello there."), "Say hello"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "Hello there."


def test_chat_json(tmp_path: Path) -> None:
    result = runner.invoke(app, ["chat", "--json", "-m", script(tmp_path, "42"), "What?"])
    assert result.exit_code == 0
    payload = json.loads(result.stdout)
    assert payload["answer"] == "42"
    assert payload["usage"]["total_tokens"] > 0
    assert payload["retries"] == [] and payload["cost_usd"] == 0.0


def test_chat_reads_the_prompt_from_stdin(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("- {content: got it, expect: piped question}\n")
    result = runner.invoke(app, ["chat", "-m", f"scripted:{path}"], input="a piped question\n")
    assert result.exit_code == 0, result.output
    assert "got it" in result.stdout


def test_chat_with_schema_prints_validated_json(tmp_path: Path) -> None:
    schema = tmp_path / "schema.json"
    schema.write_text(
        json.dumps({"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]})
    )
    model = script(tmp_path, "no number here", '{"n": 7}')
    result = runner.invoke(app, ["chat", "--json", "--schema", str(schema), "-m", model, "count"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["parsed"] == {"n": 7} and payload["repairs"] == 1


def assert_one_line_error(result: object, *needles: str) -> None:
    assert getattr(result, "exit_code") == 2  # noqa: B009
    stderr: str = getattr(result, "stderr")  # noqa: B009
    lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.mark.parametrize(
    ("model", "needles"),
    [
        ("foo:bar", ["unknown model backend 'foo'"]),
        ("gpt-4o", ["did you mean 'openai:gpt-4o'"]),
        ("openai:gpt-4o-mini", ["OPENAI_API_KEY is not set"]),
        ("local:/no/such/model.gguf", ["/no/such/model.gguf does not exist"]),
    ],
)
def test_bad_models_are_one_line_errors(model: str, needles: list[str]) -> None:
    assert_one_line_error(runner.invoke(app, ["chat", "-m", model, "hi"]), *needles)


def test_refused_connection_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MASCOPE_MAX_RETRIES", "0")
    url = f"http://127.0.0.1:{free_port()}/v1"
    result = runner.invoke(app, ["chat", "-m", f"openai:m@{url}", "hi"])
    assert_one_line_error(result, "cannot connect to", "server running")


def test_401_is_a_one_line_error() -> None:
    with FaultServer([Fault(401)]) as server:
        result = runner.invoke(
            app, ["chat", "-m", f"openai:m@{server.url}", "--api-key", "sk-bad", "hi"]
        )
    assert_one_line_error(result, "refused the API key (HTTP 401", "OPENAI_API_KEY")


def test_unsatisfiable_schema_is_a_one_line_error(tmp_path: Path) -> None:
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({"type": "object", "required": ["n"]}))
    model = script(tmp_path, "nope", "still nope")
    result = runner.invoke(app, ["chat", "--schema", str(schema), "-m", model, "count"])
    assert_one_line_error(result, "even after one repair")


def test_bad_schema_file_and_empty_prompt(tmp_path: Path) -> None:
    bad = tmp_path / "schema.json"
    bad.write_text("{nope")
    assert_one_line_error(
        runner.invoke(app, ["chat", "--schema", str(bad), "-m", script(tmp_path, "x"), "q"]),
        "is not valid JSON",
    )
    assert_one_line_error(runner.invoke(app, ["chat", "-m", script(tmp_path, "x"), "  "]), "empty")


def test_bad_environment_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MASCOPE_TIMEOUT", "later")
    assert_one_line_error(runner.invoke(app, ["chat", "hi"]), "MASCOPE_TIMEOUT")


@pytest.mark.slow
def test_real_subprocess_with_the_embedded_model() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mascope.cli",
            "chat",
            "--model",
            "local",
            "--max-tokens",
            "24",
            "Say hi",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()
    assert "local:" in done.stderr and "tokens" in done.stderr


def test_real_subprocess_bad_input_exits_2_without_traceback() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mascope.cli", "chat", "--model", "nonsense:x", "hi"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error:")
    assert done.stdout == ""
