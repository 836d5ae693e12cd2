"""Where configuration comes from: flags beat environment variables beat defaults.

Every setting has one environment variable. The CLI passes its flags as
overrides to `Settings.load`; library users can do the same.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from mascope.errors import ConfigError

__all__ = ["Settings"]

DEFAULT_DB = "mascope.db"
DEFAULT_MODEL = "local"


@dataclass(frozen=True)
class Settings:
    """mascope's configuration; see the README for the variables."""

    db: str = DEFAULT_DB
    """Trace store: a path or SQLAlchemy URL (`MASCOPE_DB`)."""
    model: str = DEFAULT_MODEL
    """Default model string for agents and `mascope chat` (`MASCOPE_MODEL`)."""
    openai_base_url: str | None = None
    """Endpoint for `openai:` models without `@URL` (`OPENAI_BASE_URL`)."""
    openai_api_key: str | None = None
    """Key for `openai:` models (`OPENAI_API_KEY`)."""
    max_retries: int = 4
    """Retries of a transient model error before giving up (`MASCOPE_MAX_RETRIES`)."""
    timeout: float = 120.0
    """Seconds one model request may take before it is retried (`MASCOPE_TIMEOUT`)."""
    local_n_ctx: int = 8192
    """Context window of the embedded model, in tokens (`MASCOPE_LOCAL_CTX`)."""
    local_threads: int | None = None
    """CPU threads for the embedded model; default all cores (`MASCOPE_LOCAL_THREADS`)."""
    prices_file: str | None = None
    """JSON or YAML file of model prices overriding the built-in table (`MASCOPE_PRICES`)."""

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read settings from `env` (default: the process environment), then apply
        the overrides whose value is not None."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for name, (var, kind) in _ENV.items():
            raw = env.get(var)
            if raw is None or raw.strip() == "":
                continue
            values[name] = _convert(var, raw.strip(), kind)
        settings = cls(**values)
        known = {f.name for f in fields(cls)}
        unknown = set(overrides) - known
        if unknown:
            raise TypeError(f"unknown settings: {sorted(unknown)}")
        return replace(settings, **{k: v for k, v in overrides.items() if v is not None})


_ENV: dict[str, tuple[str, type]] = {
    "db": ("MASCOPE_DB", str),
    "model": ("MASCOPE_MODEL", str),
    "openai_base_url": ("OPENAI_BASE_URL", str),
    "openai_api_key": ("OPENAI_API_KEY", str),
    "max_retries": ("MASCOPE_MAX_RETRIES", int),
    "timeout": ("MASCOPE_TIMEOUT", float),
    "local_n_ctx": ("MASCOPE_LOCAL_CTX", int),
    "local_threads": ("MASCOPE_LOCAL_THREADS", int),
    "prices_file": ("MASCOPE_PRICES", str),
}


def _convert(var: str, raw: str, kind: type) -> Any:
    if kind is int:
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{var} must be a whole number, got {raw!r}") from None
        if value < 0:
            raise ConfigError(f"{var} must not be negative, got {raw!r}")
        return value
    if kind is float:
        try:
            number = float(raw)
        except ValueError:
            raise ConfigError(f"{var} must be a number of seconds, got {raw!r}") from None
        if number <= 0:
            raise ConfigError(f"{var} must be greater than 0, got {raw!r}")
        return number
    return raw
