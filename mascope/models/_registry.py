"""Model strings: `backend:name` in, a ready `ChatModel` out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from mascope.errors import ConfigError, did_you_mean
from mascope.settings import Settings

from ._base import ChatModel
from ._pricing import PriceTable
from ._retry import RetryPolicy

Backend = Literal["local", "openai", "scripted"]
BACKENDS: tuple[Backend, ...] = ("local", "openai", "scripted")
EXAMPLES = "local, local:/path/model.gguf, openai:gpt-4o-mini, openai:NAME@http://127.0.0.1:8000/v1"


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model string."""

    backend: Backend
    name: str | None = None
    """Model name (openai), GGUF path (local) or script file (scripted); None for defaults."""
    base_url: str | None = None


def parse_model_string(text: str) -> ModelSpec:
    """Parse `local`, `local:PATH`, `openai:NAME`, `openai:NAME@URL` or `scripted:FILE`."""
    raw = text.strip()
    if not raw:
        raise ConfigError(f"the model string is empty; use one of: {EXAMPLES}")
    backend, sep, rest = raw.partition(":")
    if backend not in BACKENDS:
        if not sep:
            hint = f" (did you mean 'openai:{raw}'?)" if raw[:1] in "go" else ""
            raise ConfigError(
                f"model {raw!r} names no backend{hint}; write backend:name, e.g. {EXAMPLES}"
            )
        raise ConfigError(
            f"unknown model backend {backend!r} in {raw!r}{did_you_mean(backend, BACKENDS)}; "
            f"use one of {', '.join(BACKENDS)}, e.g. {EXAMPLES}"
        )
    if backend == "local":
        if sep and not rest:
            raise ConfigError(
                f"model {raw!r} has an empty path; write local or local:/path/model.gguf"
            )
        return ModelSpec("local", rest or None)
    if backend == "scripted":
        return ModelSpec("scripted", rest or None)
    if not rest:
        raise ConfigError(f"model {raw!r} has no model name; write e.g. openai:gpt-4o-mini")
    name, at, url = rest.partition("@")
    if not name:
        raise ConfigError(f"model {raw!r} has no model name before '@'")
    if at:
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ConfigError(
                f"model {raw!r}: {url!r} is not an http(s) URL; write e.g. "
                "openai:NAME@http://127.0.0.1:8000/v1"
            )
        return ModelSpec("openai", name, url)
    return ModelSpec("openai", name)


def get_model(
    model: str | ChatModel,
    *,
    settings: Settings | None = None,
    api_key: str | None = None,
    base_url: str | None = None,
    retry: RetryPolicy | None = None,
    prices: PriceTable | None = None,
) -> ChatModel:
    """A model from a model string (or the model itself, passed through).

    Settings (environment variables) supply what the string does not: the
    OpenAI base URL and key, retries, timeouts, the local context size and
    a price table.
    """
    if isinstance(model, ChatModel):
        return model
    settings = settings or Settings.load()
    spec = parse_model_string(model)
    retry = retry or RetryPolicy(max_retries=settings.max_retries, timeout=settings.timeout)
    if prices is None and settings.prices_file:
        prices = PriceTable.from_file(settings.prices_file)
    if spec.backend == "local":
        from ._local import LocalModel

        return LocalModel(
            spec.name,
            n_ctx=settings.local_n_ctx,
            n_threads=settings.local_threads,
            retry=retry,
            prices=prices,
        )
    if spec.backend == "scripted":
        from ._scripted import ScriptedModel, load_script

        if spec.name is None:
            raise ConfigError("model 'scripted' needs a script file: scripted:replies.yaml")
        return ScriptedModel(load_script(spec.name), name=str(Path(spec.name)))
    from ._openai import OpenAIModel

    assert spec.name is not None  # parse_model_string guarantees it for openai
    return OpenAIModel(
        spec.name,
        base_url=spec.base_url or base_url or settings.openai_base_url,
        api_key=api_key or settings.openai_api_key,
        retry=retry,
        prices=prices,
    )
