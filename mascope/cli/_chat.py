"""`mascope chat`: one question to one model."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from mascope.errors import ConfigError
from mascope.settings import Settings

from ._common import MAX_COUNT, err, user_errors

ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        help="Model string: local, local:/path.gguf, openai:NAME or openai:NAME@URL. "
        "Default: $MASCOPE_MODEL or local.",
    ),
]


@user_errors
def chat(
    prompt: Annotated[
        str | None, typer.Argument(help="What to ask. Read from stdin when omitted or '-'.")
    ] = None,
    model: ModelOpt = None,
    system: Annotated[str | None, typer.Option("--system", "-s", help="A system prompt.")] = None,
    schema: Annotated[
        Path | None,
        typer.Option("--schema", help="A JSON schema file; the answer is validated against it."),
    ] = None,
    max_tokens: Annotated[
        int | None, typer.Option(help="Most tokens to generate.", min=1, max=MAX_COUNT)
    ] = None,
    temperature: Annotated[float | None, typer.Option(help="Sampling temperature.", min=0)] = None,
    seed: Annotated[
        int | None, typer.Option(help="Sampling seed, where the backend has one.")
    ] = None,
    api_key: Annotated[
        str | None, typer.Option(help="API key for openai: models (default $OPENAI_API_KEY).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object instead of text.")
    ] = False,
) -> None:
    """Ask a model one question and print the answer."""
    from mascope.models import ChatModel, RetryEvent, get_model

    text = _read_prompt(prompt)
    settings = Settings.load(model=model, openai_api_key=api_key)
    llm: ChatModel = get_model(settings.model, settings=settings)
    output = _load_schema(schema) if schema else None
    messages: list[dict[str, Any]] = []
    if system:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": text})

    def show_retry(event: RetryEvent) -> None:
        why = f"HTTP {event.status_code}" if event.status_code else event.kind
        err.print(f"[yellow]retry {event.attempt}[/] ({why}): waiting {event.wait_seconds:.1f}s")

    status = err.status(f"asking {llm.model_id}...") if err.is_terminal and not as_json else None
    if status:
        status.start()
    try:
        reply = llm.chat(
            messages,
            output=output,
            max_tokens=max_tokens,
            temperature=temperature,
            seed=seed,
            on_retry=show_retry,
        )
    finally:
        if status:
            status.stop()

    if as_json:
        payload = {
            "model": llm.model_id,
            "answer": reply.text,
            "parsed": reply.parsed,
            "finish_reason": reply.finish_reason,
            "usage": {
                "input_tokens": reply.usage.input_tokens,
                "output_tokens": reply.usage.output_tokens,
                "total_tokens": reply.usage.total_tokens,
            },
            "latency_s": round(reply.latency_s, 4),
            "cost_usd": reply.cost_usd,
            "retries": [e.model_dump() for e in reply.retries],
            "repairs": reply.repairs,
        }
        print(json.dumps(payload, ensure_ascii=False))
        return
    if reply.parsed is not None:
        print(json.dumps(reply.parsed, ensure_ascii=False, indent=2))
    else:
        print(reply.text)
    cost = "" if reply.cost_usd is None else f", ${reply.cost_usd:.6f}"
    err.print(
        f"[dim]{llm.model_id}: {reply.usage.input_tokens} in / {reply.usage.output_tokens} out "
        f"tokens, {reply.latency_s:.2f}s{cost}[/]"
    )


def _read_prompt(prompt: str | None) -> str:
    if prompt is None or prompt == "-":
        if sys.stdin is None or sys.stdin.isatty():
            raise ConfigError(
                'no prompt: pass one, e.g. mascope chat "Say hello", or pipe it on stdin'
            )
        prompt = sys.stdin.read()
    if not prompt.strip():
        raise ConfigError("the prompt is empty; pass some text to ask")
    return prompt


def _load_schema(path: Path) -> dict[str, Any]:
    from mascope._safeload import loads_json, read_text

    text = read_text(path, what="schema file")
    try:
        data = loads_json(text, source=f"schema file {path}")
    except json.JSONDecodeError as exc:
        raise ConfigError(f"schema file {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"schema file {path} must hold a JSON object (a JSON schema)")
    return data
